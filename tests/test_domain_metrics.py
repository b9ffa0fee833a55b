"""The indicators of issue 13 on a fixture whose values are worked out by hand below.

Calendar: the official 2026 file (no holiday in March). Office hours 08:30–12:00, 13:30–17:30
Shanghai (UTC+8). Step limits (defaults): filing 1 working hour from the report (or from the on-site
verification), dispatch 1 working hour from filing, check 4 working hours from the handling.
Category limit 2 natural days: deadline = dispatch + 48 h. Times UTC (SH = Shanghai).

  K1 (dept um) rep 03-02 01:00 (09:00 SH); file 01:30 (due 10:00 SH ✓); dispatch 01:40 (due 10:30 SH ✓);
     feedback 03-03 01:00 (due 03-04 01:40 ✓); check 03-03 02:00 (due 14:30 SH ✓) → closed on time
  K2 (dept um) rep 03-02 02:00; file 02:10 ✓; dispatch 02:20 ✓; feedback 03-03 01:00 ✓ (due 03-04 02:20);
     check 03-05 03:00 (due 03-03 06:30 ✗) → handled on time but verified late, closed late
  K3 rep 03-02 01:00; file 05:00 (13:00 SH, due 10:00 ✗); dispatch 08:00 (16:00 SH, due 14:30 ✗);
     feedback 03-05 09:00 (late), check fails 03-05 10:00 (due 03-06 04:00 ✓); feedback 03-06 01:00 (late);
     check 03-06 02:00 (due 06:30 ✓) → closed late
  K4 rep 03-03, rejected.   K5 rep 03-03, marked duplicate of K1 (rejected).   K6 rep 03-04, undecided.
  K7 self-handled 03-04 02:00 (10:00 SH), check 03-04 03:00 (due 15:30 SH ✓)
  K8 rep 03-10 01:00; file 01:05 ✓; dispatch 06:00 (14:00 SH, due 10:05 ✗); open, deadline 03-12 06:00
  K9 rep 03-16 01:00, on-site verification due 03-16 03:00, confirmed 04:00 ✗; file 04:30 (clock from
     12:00 SH, due 14:30 SH ✓); dispatch 04:40 ✓; open, deadline 03-18 04:40

按时立案率 4/5 (K1 K2 K8 K9 of K1 K2 K3 K8 K9); 按时派遣率 3/5 (K1 K2 K9); 按时核查率 4/5 (K1, K3 fail,
K3 pass, K7 of those + K2); 按时核实率 0/1; 按期处置率 3/6 (handled in March: K1 ✓ K2 ✓ K3 ✗ K7 ✓;
due and not handled: K8 K9); 按期结案率 2/6 (K1 K7); 有效上报率 6/8 (filed K1 K2 K3 K7 K8 K9 of those
+ rejected K4 K5; K6 undecided). By department: um has K1 K2: 按期处置率 2/2, 按时核查率 1/2.
"""
from __future__ import annotations

import datetime as dt

import pytest

from gridmap.assign.service import import_calendar_csv
from gridmap.db import transaction
from gridmap.incidents.categories import DEFAULT_PATH
from gridmap.incidents.lifecycle import apply_action
from gridmap.incidents.metrics import compute_metrics, definitions
from gridmap.incidents.models import Case, CasePhoto
from gridmap.web.metrics_api import bp
from tests.casehelpers import (ADMIN, auth, make_case, make_category, make_department, make_token, make_user,
                               make_worker, worker_actor)

UTC = dt.timezone.utc
CELL = "330999001001001"
MARCH = {"date_from": dt.date(2026, 3, 1), "date_to": dt.date(2026, 3, 31)}


def t(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def fixture_cases(sessionmaker, loaded_city):
    with transaction(sessionmaker) as s:
        import_calendar_csv(s, DEFAULT_PATH.parent / "calendar" / "cn-2026.csv")
        cat = make_category(s, "test.litter", limit=(2, "natural_days"))
        um = make_department(s, "um", "城管")
        w1 = make_worker(s, "W1", cell_code=CELL, name="张伟")
        a1 = worker_actor(w1)
        ids = {}

        def mk(name, state, rep, times, **kw):
            c = make_case(s, state, category=cat, worker=w1, cell_code=CELL, at=rep, times=times, **kw)
            ids[name] = c.id
            return c

        mk("K1", "closed", t(2, 1), {"file": t(2, 1, 30), "dispatch": t(2, 1, 40), "accept": t(2, 2),
                                     "feedback": t(3, 1), "verify_pass": t(3, 2)}, assignee_department_id=um.id)
        mk("K2", "closed", t(2, 2), {"file": t(2, 2, 10), "dispatch": t(2, 2, 20), "accept": t(2, 3),
                                     "feedback": t(3, 1), "verify_pass": t(5, 3)}, assignee_department_id=um.id)
        k3 = mk("K3", "in_progress", t(2, 1), {"file": t(2, 5), "dispatch": t(2, 8), "accept": t(2, 9)})
        apply_action(s, k3.id, "feedback", a1, comment="已处理", now=t(5, 9))
        apply_action(s, k3.id, "verify_fail", ADMIN, comment="未处理干净", now=t(5, 10))
        apply_action(s, k3.id, "feedback", a1, comment="已彻底处理", now=t(6, 1))
        apply_action(s, k3.id, "verify_pass", ADMIN, now=t(6, 2))
        mk("K4", "rejected", t(3, 1), {"reject": t(3, 2)})
        k5 = mk("K5", "reported", t(3, 1), {})
        apply_action(s, k5.id, "mark_duplicate", ADMIN, data={"duplicate_of_id": ids["K1"]}, now=t(3, 2))
        mk("K6", "reported", t(4, 1), {})
        mk("K7", "closed", t(4, 1, 50), {"self_handle": t(4, 2), "verify_pass": t(4, 3)}, self_handled=True)
        mk("K8", "dispatched", t(10, 1), {"file": t(10, 1, 5), "dispatch": t(10, 6)})
        k9 = mk("K9", "reported", t(16, 1), {})
        k9.confirm_worker_id, k9.confirm_deadline_at = w1.id, t(16, 3)
        photo = CasePhoto(case_id=k9.id, filename="现场.jpg", content_type="image/jpeg", size=3, sha256="0" * 64,
                          stored_path="x.jpg")
        s.add(photo)
        s.flush()
        apply_action(s, k9.id, "confirm", a1, data={"photo_id": photo.id}, now=t(16, 4))
        apply_action(s, k9.id, "file", ADMIN, now=t(16, 4, 30))
        apply_action(s, k9.id, "dispatch", ADMIN, now=t(16, 4, 40))
        return {"ids": ids, "um": um.id}


def test_handled_on_time_but_verified_late_is_told_apart(sessionmaker, fixture_cases):
    with sessionmaker() as s:
        k2 = s.get(Case, fixture_cases["ids"]["K2"])
        assert k2.handled_on_time is True and k2.closed_on_time is False
        k3 = s.get(Case, fixture_cases["ids"]["K3"])
        assert k3.handled_on_time is False


def test_new_indicators_match_the_hand_computed_values(sessionmaker, fixture_cases):
    with sessionmaker() as s:
        [row] = compute_metrics(s, **MARCH)
    assert (row["timely_filing_count"], row["timely_filing_denominator"]) == (4, 5)
    assert row["timely_filing_rate"] == pytest.approx(4 / 5)
    assert (row["timely_dispatch_count"], row["timely_dispatch_denominator"]) == (3, 5)
    assert row["timely_dispatch_rate"] == pytest.approx(3 / 5)
    assert (row["timely_verify_count"], row["timely_verify_denominator"]) == (4, 5)
    assert row["timely_verify_rate"] == pytest.approx(4 / 5)
    assert (row["timely_confirm_count"], row["timely_confirm_denominator"]) == (0, 1)
    assert row["timely_confirm_rate"] == 0.0
    assert (row["handled_on_time"], row["due_to_handle"]) == (3, 6)
    assert row["on_time_handling_rate"] == pytest.approx(0.5)
    # 按期结案率 stays judged at closure: K2 counts against it, not against handling
    assert (row["closed_on_time"], row["on_time_denominator"]) == (2, 6)
    assert (row["reports_valid"], row["reports_decided"]) == (6, 8)
    assert row["valid_report_rate"] == pytest.approx(0.75)


def test_grouped_by_department(sessionmaker, fixture_cases):
    with sessionmaker() as s:
        rows = {r["group"]["code"]: r for r in compute_metrics(s, group_by="department", **MARCH)}
    um = rows["um"]
    assert um["group"]["name"] == "城管"
    assert (um["handled_on_time"], um["due_to_handle"]) == (2, 2)
    assert (um["timely_verify_count"], um["timely_verify_denominator"]) == (1, 2)
    assert (um["timely_filing_count"], um["timely_filing_denominator"]) == (2, 2)
    rest = rows[None]
    assert (rest["handled_on_time"], rest["due_to_handle"]) == (1, 4)
    assert (rest["timely_dispatch_count"], rest["timely_dispatch_denominator"]) == (1, 3)


def test_api_keys_and_group_department(app, client, sessionmaker, fixture_cases):
    if "metrics_api" not in app.blueprints:
        app.register_blueprint(bp)
    with transaction(sessionmaker) as s:
        make_user(s, "centre", "city")
        tok = auth(make_token(s, "centre"))
    r = client.get("/api/v1/metrics?from=2026-03-01&to=2026-03-31", headers=tok)
    assert r.status_code == 200
    body = r.get_json()
    for key in ("on_time_handling_rate", "timely_filing_rate", "timely_dispatch_rate", "timely_verify_rate",
                "valid_report_rate"):
        assert key in body["rows"][0] and key in body["definitions"], key
        assert "/" in body["definitions"][key]  # the formula with its denominator
    assert body["rows"][0]["on_time_handling_rate"] == pytest.approx(0.5)
    r = client.get("/api/v1/metrics?from=2026-03-01&to=2026-03-31&group=department", headers=tok)
    assert r.status_code == 200 and r.get_json()["group_by"] == "department"
    assert {row["group"]["code"] for row in r.get_json()["rows"]} == {"um", None}
    r = client.get("/api/v1/metrics?group=departments", headers=tok)
    assert r.status_code == 400 and "group" in r.get_json()["error"]
    assert set(definitions()) >= {"timely_confirm_rate", "group_department"}


def test_only_the_system_may_leave_a_step_unjudged(sessionmaker, fixture_cases):
    from gridmap.accounts.actor import SYSTEM
    from gridmap.incidents.models import CaseEvent
    from sqlalchemy import select

    with transaction(sessionmaker) as s:
        k6 = fixture_cases["ids"]["K6"]
        apply_action(s, k6, "file", ADMIN, data={"imported": True}, now=t(4, 5))   # 13:00 SH, due 10:00
        ev = s.scalar(select(CaseEvent).where(CaseEvent.case_id == k6, CaseEvent.action == "file"))
        assert ev.on_time is False  # a supervisor cannot opt out of being judged
        apply_action(s, k6, "dispatch", SYSTEM, data={"imported": True}, now=t(4, 6))
        ev = s.scalar(select(CaseEvent).where(CaseEvent.case_id == k6, CaseEvent.action == "dispatch"))
        assert ev.on_time is None
