"""Hazard pages on both backends (Flask test client, logged in through the form): the register's
filters, sorting, counts and downloads; bad filter values as messages; one hazard's page with its
history, inspections and actions as CSRF-protected POST forms; refusals (verify by the rectifier,
extension without a reason) shown as messages that change nothing; scope (404 for out of scope and missing alike); the
compliance page and the centre's hazard card.

The fixture's hazards date from March 2026 and the pages judge "overdue" at the real now (after
April 2026): every hazard of the fixture still waiting for rectification (H2 H4 H5 H6) is overdue."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from gridmap.db import transaction
from gridmap.hazards.models import Hazard, HazardEvent, HazardPhoto
from tests.casehelpers import make_user
from tests.hazardhelpers import build_fixture
from tests.test_pages import PNG, csrf_from, login, wire


@pytest.fixture
def web(app, loaded_city, sessionmaker):
    wire(app)
    ids = build_fixture(sessionmaker)
    with transaction(sessionmaker) as s:
        make_user(s, "city", "city")
        make_user(s, "west", "street", area_code="330999001")
        make_user(s, "east", "street", area_code="330999002")
        from gridmap.assign.models import Worker

        w1 = s.scalar(select(Worker).where(Worker.code == "W001"))
        make_user(s, "w1", "worker", worker=w1)
        make_user(s, "zw", "head", worker=w1, area_code="330999001001")
    return app, ids


def client_for(app, user):
    c = app.test_client()
    r = login(c, user)
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return c


def text(r):
    return r.get_data(as_text=True)


def test_register_filters_count_and_sort(web):
    app, ids = web
    c = client_for(app, "city")
    page = text(c.get("/hazards"))
    assert 'id="hazard-count">7<' in page and "隐患台账" in page
    page = text(c.get("/hazards?area=330999001&overdue=1"))
    assert 'id="hazard-count">4<' in page and ">H2<" in page and ">H5<" in page and ">H1<" not in page
    page = text(c.get("/hazards?area=330999001&overdue=1&type=fire"))
    assert 'id="hazard-count">2<' in page and ">H2<" in page and ">H4<" in page and ">H5<" not in page
    page = text(c.get("/hazards?type=gas&grade=general&status=open"))
    assert 'id="hazard-count">2<' in page and ">H5<" in page and ">H6<" in page
    page = text(c.get("/hazards?grade=major"))
    assert 'id="hazard-count">1<' in page and ">H4<" in page
    page = text(c.get("/hazards?supervised=1"))
    assert 'id="hazard-count">1<' in page
    # sorted by deadline, ascending: H5 (gas, deadline 02-23 → reopened 03-15) … the earliest first
    page = text(c.get("/hazards?sort=deadline&dir=asc"))
    order = [ln.split("data-hazard-id=\"")[1].split('"')[0] for ln in page.splitlines() if "data-hazard-id=" in ln]
    assert order[0] == str(ids["H1"]) and order[-1] == str(ids["H4"])  # 03-09 09:00 (H1 first by id) … 04-09
    # the downloads carry the same filters
    assert "kind=hazards&amp;format=csv&amp;area=330999001&amp;overdue=1" in text(c.get("/hazards?area=330999001&overdue=1"))


def test_unknown_filter_values_give_a_message_on_the_page(web):
    app, _ = web
    c = client_for(app, "city")
    r = c.get("/hazards?type=nuclear&grade=较大&status=lost&from=2026-13-01&sort=colour&area=999")
    assert r.status_code == 200
    page = text(r)
    for needle in ("unknown hazard type", "accident grade", "unknown status", "from must be a date", "unknown sort",
                   "no area with code"):
        assert needle in page, needle
    assert 'id="hazard-count">7<' in page  # the bad filters were dropped, nothing else hidden


def test_scope_of_the_register_and_of_a_hazard(web):
    app, ids = web
    east = client_for(app, "east")
    assert 'id="hazard-count">1<' in text(east.get("/hazards"))
    assert east.get(f"/hazards/{ids['H1']}").status_code == 404  # out of scope: like a missing one
    assert east.get("/hazards/999999").status_code == 404
    assert east.get(f"/hazards/{ids['H7']}").status_code == 200
    w = client_for(app, "w1")
    assert w.get("/hazards").status_code == 403  # workers see their hazards on their own pages
    assert w.get(f"/hazards/{ids['H2']}").status_code == 200
    assert east.get("/hazards/card/330999001001001").status_code == 404


def test_a_hazard_page_shows_history_inspections_and_actions(web):
    app, ids = web
    c = client_for(app, "city")
    page = text(c.get(f"/hazards/{ids['H2']}"))
    assert 'id="hazard-overdue"' in page and "已超期" in page
    assert page.count('class="task-row"') == 5  # 02-22 … 03-22 (the future one is pending)
    assert 'data-state="late"' in page and 'data-state="on_time"' in page and "巡检计划" in page
    for action in ("rectify", "assign", "extend", "supervise"):
        assert f'data-action="{action}"' in page, action
    page = text(c.get(f"/hazards/{ids['H1']}"))
    assert [a for a in ("register", "rectify", "verify", "close") if f'<li data-action="{a}">' in page] == \
        ["register", "rectify", "verify", "close"]
    assert '<details data-action="reopen">' in page and '<details data-action="rectify">' not in page


def post_action(c, hid, **data):
    token = csrf_from(text(c.get(f"/hazards/{hid}")))
    return c.post(f"/hazards/{hid}/action", data={"csrf_token": token, **data}, follow_redirects=True)


def test_actions_are_csrf_protected_posts_and_refusals_change_nothing(web, sessionmaker):
    app, ids = web
    c = client_for(app, "city")
    hid = ids["H2"]
    with sessionmaker() as s:
        version = s.get(Hazard, hid).version
    r = c.post(f"/hazards/{hid}/action", data={"action": "supervise", "comment": "x", "version": version})
    assert r.status_code == 400  # no CSRF token
    r = post_action(c, hid, action="extend", deadline="2026-12-31", reason="", version=version)
    assert "操作未执行" in text(r) and "needs a reason" in text(r)
    with sessionmaker() as s:
        assert s.get(Hazard, hid).version == version and s.get(Hazard, hid).extension_count == 0
    r = post_action(c, hid, action="supervise", comment="请街道限期整改", version=version)
    assert "已完成" in text(r) and 'id="hazard-supervised"' in text(r)
    # a worker rectifies with a photo; then the same person may not verify
    zw = client_for(app, "zw")
    with sessionmaker() as s:
        version = s.get(Hazard, hid).version
    token = csrf_from(text(zw.get(f"/hazards/{hid}")))
    r = zw.post(f"/hazards/{hid}/action", data={"csrf_token": token, "action": "rectify", "comment": "已清理杂物",
                                                "version": str(version), "photo": (io.BytesIO(PNG), "after.png")},
                content_type="multipart/form-data", follow_redirects=True)
    assert "已完成" in text(r), text(r)[:2000]
    with sessionmaker() as s:
        h = s.get(Hazard, hid)
        photo = s.scalar(select(HazardPhoto).where(HazardPhoto.hazard_id == hid))
        assert h.status == "rectified" and photo is not None and photo.content_type == "image/png"
        ev = s.get(HazardEvent, photo.event_id)
        assert ev.action == "rectify"
        version = h.version
    assert zw.get(f"/hazards/{hid}/photos/{photo.id}").data == PNG
    r = post_action(zw, hid, action="verify_pass", version=version)
    assert "核查人不能是整改人" in text(r)
    with sessionmaker() as s:
        assert s.get(Hazard, hid).status == "rectified"
    r = post_action(c, hid, action="verify_pass", version=version)
    assert "已完成" in text(r)
    with sessionmaker() as s:
        assert s.get(Hazard, hid).status == "verified"
    # a photo that is no image is refused before anything changes
    h3 = ids["H6"]
    token = csrf_from(text(zw.get(f"/hazards/{h3}")))
    r = zw.post(f"/hazards/{h3}/action", data={"csrf_token": token, "action": "rectify", "comment": "x",
                                               "photo": (io.BytesIO(b"MZ not an image"), "x.png")},
                content_type="multipart/form-data", follow_redirects=True)
    assert "not a JPEG, PNG or WebP" in text(r)
    with sessionmaker() as s:
        assert s.get(Hazard, h3).status == "open"


def test_selection_downloads_match_the_page(web):
    app, _ = web
    c = client_for(app, "city")
    r = c.get("/api/v1/export?kind=hazards&format=geojson&area=330999001&overdue=1")
    assert r.status_code == 200
    assert sorted(f["properties"]["title"] for f in json.loads(r.data)["features"]) == ["H2", "H4", "H5", "H6"]
    r = c.get("/hazards/export.xlsx?area=330999001&overdue=1")
    assert r.status_code == 200 and r.headers["X-Gridmap-Rows"] == "4"
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(r.data)).active
    titles = [ws.cell(row=i, column=6).value for i in range(1, ws.max_row + 1)]
    assert "H2" in titles and "H5" in titles and "H1" not in titles
    r = c.get("/hazards/export.xlsx")  # no area: the whole scope
    assert r.status_code == 200 and r.headers["X-Gridmap-Rows"] == "7"
    assert "全部辖区" in load_workbook(io.BytesIO(r.data)).active.cell(row=1, column=1).value
    r = client_for(app, "east").get("/hazards/export.xlsx")
    assert r.headers["X-Gridmap-Rows"] == "1"  # the east street's own hazard only
    r = c.get("/hazards/export.xlsx?grade=较大", follow_redirects=True)
    assert "accident grade" in text(r)


def test_compliance_page_and_centre_card(web):
    app, ids = web
    c = client_for(app, "city")
    r = c.get("/hazards/compliance?from=2026-03-01&to=2026-03-31&group=street")
    assert r.status_code == 200
    page = text(r)
    assert "按时巡检率" in page and "按期整改率" in page and 'id="compliance-total"' in page
    r = c.get("/hazards/compliance?group=planet")
    assert "group must be one of" in text(r)
    card = c.get("/hazards/card/330999001001001").get_json()
    assert card["open"] == 4 and card["overdue"] == 4 and card["items"][0]["overdue"] is True
    page = text(c.get("/centre"))
    assert 'id="hazard-layer-config"' in page and 'id="card-hazards"' in page and "hazard-layer.js" in page
