"""On-site verification before filing (核实), filing criteria on the case page, and the calendar
rules of issue 13: a year without calendar data refused (or the fallback with a warning), office
hours and extension length configurable, local times in command output. Real PostGIS and SpatiaLite.
"""
from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import select

from gridmap.accounts.actor import SYSTEM
from gridmap.assign.calendar import CalendarGap, add_limit
from gridmap.assign.service import import_calendar_csv
from gridmap.db import transaction
from gridmap.incidents.categories import DEFAULT_PATH, load_categories
from gridmap.incidents.intake import create_case
from gridmap.incidents.lifecycle import CalendarRefused, apply_action
from gridmap.incidents.models import Case, CaseEvent
from tests.casehelpers import ADMIN, CELL, T0, auth, make_category, make_token, make_user, make_worker
from tests.test_pages import login, wire

P = (122.01, 30.035)  # in CELL
def _jpeg() -> bytes:
    """A real (decodable) JPEG: photos are decoded and re-encoded on upload."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (40, 120, 200)).save(buf, format="JPEG")
    return buf.getvalue()


JPEG = _jpeg()
CN2026 = DEFAULT_PATH.parent / "calendar" / "cn-2026.csv"


@pytest.fixture
def city(app, sessionmaker, loaded_city):
    from gridmap.web import cases_api

    if "cases_api" not in app.blueprints:
        app.register_blueprint(cases_api.bp)
    with transaction(sessionmaker) as s:
        load_categories(s)
        import_calendar_csv(s, CN2026)
        w = make_worker(s, "W1", cell_code=CELL, name="张伟")
        make_user(s, "zw", "worker", worker=w)
        make_user(s, "centre", "city")
        return {"worker": w.id, "zw": auth(make_token(s, "zw")), "centre": auth(make_token(s, "centre"))}


def _report(client, tok, category="hotline.complaint", **extra):
    return client.post("/api/v1/cases", json={"category": category, "description": "楼下餐馆油烟扰民",
                                              "location": {"lon": P[0], "lat": P[1]}, **extra}, headers=tok)


def test_a_hotline_report_waits_for_on_site_verification_then_files_itself(client, city, sessionmaker):
    r = _report(client, city["centre"], source="hotline")
    assert r.status_code == 201, r.get_json()
    cid = r.get_json()["id"]
    with sessionmaker() as s:
        c = s.get(Case, cid)
        assert c.status == "reported" and c.confirm_worker_id == city["worker"]
        assert c.confirm_deadline_at is not None and c.confirm_deadline_at > c.reported_at
        assert c.dispatched_at is None
    url = f"/api/v1/cases/{cid}/actions"
    # the worker must bring a photo from the site
    r = client.post(url, json={"action": "confirm"}, headers=city["zw"])
    assert r.status_code == 400 and "photo" in r.get_json()["error"]
    r = client.post(f"/api/v1/cases/{cid}/photos", data={"photo": (io.BytesIO(JPEG), "现场.jpg")},
                    headers=city["zw"], content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    photo_id = r.get_json()["id"]
    r = client.post(url, json={"action": "confirm", "comment": "现场属实", "data": {"photo_id": photo_id}},
                    headers=city["zw"])
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "dispatched"  # filed and dispatched by the system after verification
    actions = [e["action"] for e in body["history"]]
    assert actions[-3:] == ["confirm", "file", "dispatch"]
    confirm = next(e for e in body["history"] if e["action"] == "confirm")
    assert confirm["on_time"] is True and confirm["actor_worker_id"] == city["worker"]
    # the confirm step is done once
    with sessionmaker() as s:
        assert s.get(Case, cid).confirmed_at is not None


def test_a_report_refuted_on_site_is_rejected_and_the_system_cannot_skip_verification(client, city, sessionmaker):
    r = _report(client, city["centre"], source="hotline")
    cid = r.get_json()["id"]
    with sessionmaker() as s:
        with pytest.raises(Exception, match="waits for on-site verification"):
            apply_action(s, cid, "file", SYSTEM)
        s.rollback()
    r = client.post(f"/api/v1/cases/{cid}/actions", json={"action": "refute", "comment": "现场未发现"},
                    headers=city["zw"])
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"


def test_patrol_reports_and_a_city_without_verification_file_at_once(app, client, city):
    r = _report(client, city["zw"], source="patrol")
    assert r.status_code == 201 and r.get_json()["status"] == "dispatched"
    app.config["GRIDMAP_CONFIRM"] = False
    r = _report(client, city["centre"], source="hotline")
    assert r.status_code == 201 and r.get_json()["status"] == "dispatched"


def test_the_case_page_shows_the_filing_criteria(app, client, city, sessionmaker):
    wire(app)
    cid = _report(client, city["centre"], source="hotline").get_json()["id"]
    login(client, "centre")
    html = client.get(f"/cases/{cid}").get_data(as_text=True)
    assert "立案标准" in html and "诉求明确、属本辖区、现场核实属实的12345工单" in html
    assert "待核实" in html and "张伟" in html


# ------------------------------------------------------------------------------ calendar
def test_a_deadline_into_a_year_without_calendar_is_refused_naming_the_year(client, city, sessionmaker):
    eve = dt.datetime(2026, 12, 31, 2, 0, tzinfo=dt.timezone.utc)  # 10:00 on New Year's Eve, Shanghai
    with sessionmaker() as s:
        with pytest.raises(CalendarGap, match="no working-day calendar for 2027"):
            add_limit(s, eve, 1, "working_days")
        # the same limit within 2026 is fine
        assert add_limit(s, eve, 2, "working_hours") == dt.datetime(2026, 12, 31, 4, 0, tzinfo=dt.timezone.utc)
    with transaction(sessionmaker) as s:
        # 30 working days reach 2027 from New Year's Eve, and from any day of December 2026 (the API's now)
        cat = make_category(s, "test.days", limit=(30, "working_days"))
        c = create_case(s, {"category": cat.code, "description": "跨年", "location": {"lon": P[0], "lat": P[1]}},
                        SYSTEM, source="patrol", now=eve)
        # kept, filed, and not dispatched: the history says why
        assert c.status == "filed"
        note = s.scalar(select(CaseEvent).where(CaseEvent.case_id == c.id, CaseEvent.action == "note"))
        assert "no working-day calendar for 2027" in note.comment
        with pytest.raises(CalendarRefused, match="2027"):
            apply_action(s, c.id, "dispatch", ADMIN, now=eve)
        cid = c.id
    r = client.post(f"/api/v1/cases/{cid}/actions", json={"action": "dispatch"}, headers=city["centre"])
    assert r.status_code == 409 and "no working-day calendar for 20" in r.get_json()["error"]


def test_the_fallback_only_when_the_city_says_so_and_with_a_warning(app, client, city, sessionmaker):
    eve = dt.datetime(2026, 12, 31, 2, 0, tzinfo=dt.timezone.utc)
    with transaction(sessionmaker) as s:
        day = make_category(s, "test.day", limit=(1, "working_days"))
        days = make_category(s, "test.days", limit=(30, "working_days"))
        ids = [create_case(s, {"category": c.code, "description": "跨年", "location": {"lon": P[0], "lat": P[1]}},
                           SYSTEM, source="patrol", now=eve).id for c in (day, days)]
    app.config["GRIDMAP_CALENDAR_FALLBACK"] = True
    with app.app_context(), transaction(sessionmaker) as s:
        c = apply_action(s, ids[0], "dispatch", ADMIN, now=eve)
        # Friday 1 January 2027 counted as a working day (it is a holiday): the warning says so
        assert c.deadline_at == dt.datetime(2027, 1, 1, 9, 30, tzinfo=dt.timezone.utc)
    r = client.post(f"/api/v1/cases/{ids[1]}/actions", json={"action": "dispatch"}, headers=city["centre"])
    assert r.status_code == 200, r.get_json()
    dispatch = r.get_json()["history"][-1]
    assert dispatch["action"] == "dispatch" and "Monday–Friday assumed" in dispatch["data"]["calendar_warning"]


def test_office_hours_and_extension_length_are_configurable(app, sessionmaker, city):
    start = dt.datetime(2026, 3, 3, 3, 0, tzinfo=dt.timezone.utc)  # Tuesday 11:00 Shanghai
    with app.app_context(), sessionmaker() as s:
        assert add_limit(s, start, 2, "working_hours") == dt.datetime(2026, 3, 3, 6, 30, tzinfo=dt.timezone.utc)
        app.config["GRIDMAP_OFFICE_HOURS"] = "09:00-12:00,14:00-18:00"
        assert add_limit(s, start, 2, "working_hours") == dt.datetime(2026, 3, 3, 7, 0, tzinfo=dt.timezone.utc)
        app.config["GRIDMAP_OFFICE_HOURS"] = "12:00-09:00"
        with pytest.raises(ValueError, match="office hours"):
            add_limit(s, start, 2, "working_hours")
        app.config["GRIDMAP_OFFICE_HOURS"] = "08:30-12:00,13:30-17:30"
    with app.app_context(), transaction(sessionmaker) as s:
        cat = make_category(s, "test.nat", limit=(3, "natural_days"))
        w = s.get(__import__("gridmap.assign.models", fromlist=["Worker"]).Worker, city["worker"])
        c = create_case(s, {"category": cat.code, "description": "延期", "location": {"lon": P[0], "lat": P[1]}},
                        SYSTEM, source="patrol", now=T0)
        from tests.casehelpers import worker_actor

        wa = worker_actor(w)
        apply_action(s, c.id, "request_extension", wa, comment="需协调", now=T0)
        apply_action(s, c.id, "approve_extension", ADMIN, now=T0)  # default: the limit once more
        assert c.deadline_at == T0 + dt.timedelta(days=6)
        app.config["GRIDMAP_EXTENSION_LIMIT"] = "1 natural_days"
        apply_action(s, c.id, "request_extension", wa, comment="再协调", now=T0)
        apply_action(s, c.id, "approve_extension", ADMIN, now=T0)
        assert c.deadline_at == T0 + dt.timedelta(days=7)
        apply_action(s, c.id, "request_extension", wa, comment="再协调", now=T0)
        apply_action(s, c.id, "approve_extension", ADMIN, now=T0, data={"extension": "12 urgent_hours"})
        assert c.deadline_at == T0 + dt.timedelta(days=7, hours=12)


def test_cli_lines_are_local_time_without_microseconds(app, sessionmaker, city):
    from gridmap.assign.cli import escalate_cmd

    res = app.test_cli_runner().invoke(escalate_cmd, ["--now", "2026-03-02T09:00:00.123456+08:00"])
    assert res.exit_code == 0, res.output
    assert res.output.rstrip().endswith("at 2026-03-02 09:00:00")
