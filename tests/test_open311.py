"""Open311 GeoReport v2 facade: services, requests GET/POST round trip, filters, scope, errors."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from gridmap.accounts.actor import SYSTEM
from gridmap.db import transaction
from gridmap.incidents.intake import create_case
from gridmap.incidents.lifecycle import apply_action
from gridmap.incidents.models import Case
from tests.casehelpers import (ADMIN, CELL, OTHER_CELL, auth, make_category, make_token, make_user, make_worker)


@pytest.fixture
def keys(app, sessionmaker, loaded_city):
    from gridmap.web import open311

    if "open311" not in app.blueprints:
        app.register_blueprint(open311.bp)
    # requests are dispatched at the real now with a working-day limit: this city accepts the
    # Monday-Friday fallback rather than loading the calendar of whatever year the suite runs in
    app.config["GRIDMAP_CALENDAR_FALLBACK"] = True
    with transaction(sessionmaker) as s:
        top = make_category(s, "city", name="城市管理事件", limit=(3, "working_days"))
        env = make_category(s, "city.environment", name="市容环境", parent=top, limit=None)
        c = make_category(s, "city.environment.litter", name="暴露垃圾", parent=env, limit=None)
        c.name_en = "Exposed litter"
        old = make_category(s, "city.old", name="旧分类", parent=top)
        old.active = False
        w1 = make_worker(s, "W1", cell_code=CELL, name="张伟")
        make_worker(s, "W3", cell_code=OTHER_CELL, name="王芳")
        make_user(s, "app", "city")
        make_user(s, "zw", "worker", worker=w1)
        return {"app": make_token(s, "app"), "zw": make_token(s, "zw")}


def test_services(client, keys):
    r = client.get("/open311/v2/services.json")
    assert r.status_code == 200
    by_code = {x["service_code"]: x for x in r.json}
    assert set(by_code) == {"city", "city.environment", "city.environment.litter"}  # inactive left out
    litter = by_code["city.environment.litter"]
    assert litter == {"service_code": "city.environment.litter", "service_name": "暴露垃圾",
                      "description": "暴露垃圾 (Exposed litter)", "metadata": False, "type": "realtime",
                      "keywords": "Exposed litter,event,litter", "group": "城市管理事件"}


def test_post_then_get_round_trip_form_encoded(client, keys, sessionmaker):
    r = client.post("/open311/v2/requests.json", data={
        "api_key": keys["app"], "service_code": "city.environment.litter", "lat": "30.035", "long": "122.01",
        "description": "小区门口垃圾堆积", "first_name": "四", "last_name": "李", "phone": "13812341234",
        "email": "li@example.com"})
    assert r.status_code == 201, r.json
    [answer] = r.json
    rid = answer["service_request_id"]
    assert set(answer) >= {"service_request_id", "service_notice"} and "dispatched" in answer["service_notice"]
    with sessionmaker() as s:
        c = s.scalar(select(Case).where(Case.number == rid))
        assert c.source == "open311" and c.reporter_name == "李四" and c.reporter_phone == "13812341234"
        assert c.status == "dispatched" and c.input_crs == "wgs84"
    got = client.get(f"/open311/v2/requests/{rid}.json", headers={"X-Api-Key": keys["app"]})
    assert got.status_code == 200
    [req] = got.json
    assert req["service_request_id"] == rid and req["status"] == "open"
    assert req["service_code"] == "city.environment.litter" and req["description"] == "小区门口垃圾堆积"
    assert (req["lat"], req["long"]) == (30.035, 122.01)
    assert req["requested_datetime"].endswith("Z") and req["updated_datetime"]
    assert req["agency_responsible"] == "西北社区"  # the community of the cell
    # the list, with filters
    q = lambda **kw: client.get("/open311/v2/requests.json", headers={"X-Api-Key": keys["app"]}, query_string=kw)  # noqa
    assert [x["service_request_id"] for x in q().json] == [rid]
    assert [x["service_request_id"] for x in q(service_code="city.environment.litter", status="open").json] == [rid]
    assert q(status="closed").json == []
    assert q(service_code="city").json == []  # exact service codes
    assert [x["service_request_id"] for x in q(service_request_id=rid).json] == [rid]


def test_post_json_with_bearer_and_address_queue(client, keys, sessionmaker):
    r = client.post("/open311/v2/requests.json", headers=auth(keys["app"]),
                    json={"service_code": "city.environment.litter", "address_string": "不存在的路1号",
                          "description": "井边垃圾"})
    assert r.status_code == 201, r.json
    assert "placed by hand" in r.json[0]["service_notice"]
    with sessionmaker() as s:
        c = s.scalar(select(Case).where(Case.number == r.json[0]["service_request_id"]))
        assert c.placement == "queue" and c.address == "不存在的路1号"


@pytest.mark.parametrize("data, status, needle", [
    ({"service_code": "city.environment.litter", "lat": "30.035", "long": "122.01", "description": "x"},
     401, "api_key"),
    ({"api_key": "gm_nope", "service_code": "city.environment.litter", "lat": "30.035", "long": "122.01",
      "description": "x"}, 401, "invalid api_key"),
    ({"service_code": "nope", "lat": "30.035", "long": "122.01", "description": "x"}, 400, "service_code"),
    ({"lat": "30.035", "long": "122.01", "description": "x"}, 400, "service_code is required"),
    ({"service_code": "city.environment.litter", "lat": "30.035", "description": "x"}, 400, "lat and long"),
    ({"service_code": "city.environment.litter", "description": "x"}, 400, "lat and long"),
    ({"service_code": "city.environment.litter", "lat": "31", "long": "121", "description": "x"}, 400,
     "outside every cell"),
    ({"service_code": "city.environment.litter", "lat": "122.01", "long": "30.035", "description": "x"}, 400,
     "swapped"),
    ({"service_code": "city.environment.litter", "lat": "north", "long": "122.01", "description": "x"}, 400,
     "lat: lat must be a number"),
    ({"service_code": "city.environment.litter", "lat": "30.035", "long": "122.01"}, 400, "description"),
])
def test_post_errors_are_georeport_errors(client, keys, sessionmaker, data, status, needle):
    if "api_key" not in data and status != 401:
        data = {**data, "api_key": keys["app"]}
    r = client.post("/open311/v2/requests.json", data=data)
    assert r.status_code == status
    assert isinstance(r.json, list) and r.json[0]["code"] == status and needle in r.json[0]["description"]
    with sessionmaker() as s:
        assert s.scalar(select(func.count(Case.id))) == 0


def test_get_requests_scope_dates_status_and_cap(client, keys, sessionmaker):
    now = dt.datetime.now(dt.timezone.utc)
    with transaction(sessionmaker) as s:
        def mk(lon, lat, when, desc, **kw):
            return create_case(s, {"category": "city.environment.litter", "description": desc,
                                   "location": {"lon": lon, "lat": lat}}, SYSTEM, source="hotline", now=when, **kw)
        mine = mk(122.01, 30.035, now - dt.timedelta(days=1), "mine")
        other = mk(122.05, 30.035, now - dt.timedelta(days=2), "other")
        old = mk(122.01, 30.035, now - dt.timedelta(days=200), "old")
        apply_action(s, other.id, "park", ADMIN, comment="挂账")
        done = mk(122.01, 30.036, now - dt.timedelta(hours=3), "done", auto_dispatch=False)
        apply_action(s, done.id, "reject", ADMIN, comment="不属实")
        numbers = {c.description: c.number for c in (mine, other, old, done)}
    app_q = lambda **kw: [x["description"] for x in client.get(  # noqa: E731
        "/open311/v2/requests.json", headers={"X-Api-Key": keys["app"]}, query_string=kw).json]
    assert app_q() == ["done", "mine", "other"]                    # 90 days by default, newest first
    start = (now - dt.timedelta(days=365)).date().isoformat()
    assert app_q(start_date=start) == ["done", "mine", "other", "old"]
    assert app_q(start_date=start, end_date=(now - dt.timedelta(days=100)).date().isoformat()) == ["old"]
    assert app_q(status="closed") == ["done"]
    assert app_q(status="open") == ["mine", "other"]               # parked is still open
    # the worker's token sees only their cell's cases
    zw = [x["description"] for x in client.get("/open311/v2/requests.json", headers=auth(keys["zw"])).json]
    assert zw == ["done", "mine"]
    r = client.get(f"/open311/v2/requests/{numbers['other']}.json", headers=auth(keys["zw"]))
    assert r.status_code == 404 and r.json[0]["code"] == 404
    for bad in ({"status": "pending"}, {"start_date": "last week"}):
        r = client.get("/open311/v2/requests.json", headers={"X-Api-Key": keys["app"]}, query_string=bad)
        assert r.status_code == 400 and r.json[0]["code"] == 400
    assert client.get("/open311/v2/requests.json").status_code == 401
