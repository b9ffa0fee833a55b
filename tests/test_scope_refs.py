"""Scope on every answer: the boundary diff and balance advisor (role, scope, bounded parameters),
the objects a case action refers to (duplicate of, dispatch / reassign to), the worker named when a
case is created, and the department role's create. Out of scope answers exactly like unknown."""
from __future__ import annotations

import pytest
import shapely
from sqlalchemy import func, select

from gridmap.db import transaction, utcnow
from gridmap.incidents.models import Case, CaseEvent
from tests.casehelpers import (CELL, OTHER_CELL, auth, make_case, make_category, make_department, make_token,
                               make_user, make_worker)

NW = "330999001001"        # a community of the west street
EAST_COMM = "330999002001"  # a community of the east street
SPLIT = {"type": "LineString", "coordinates": [[122.01, 30.045], [122.01, 30.025]]}


@pytest.fixture
def world(app, sessionmaker, loaded_city):
    from tests.test_pages import wire

    wire(app)
    with transaction(sessionmaker) as s:
        cat = make_category(s, "test.litter", name="暴露垃圾")
        w1 = make_worker(s, "W1", name="张伟")
        w2 = make_worker(s, "W2", name="李娜", cell_code=OTHER_CELL)
        dep = make_department(s)
        users = {}
        for name, role, kw in (("w1", "worker", {"worker": w1}), ("west", "street", {"area_code": "330999001"}),
                               ("east", "street", {"area_code": "330999002"}), ("qu", "district", {"area_code": "330999"}),
                               ("city", "city", {}), ("dep", "department", {"department": dep})):
            make_user(s, name, role, **kw)
            users[name] = auth(make_token(s, name))
        mine = make_case(s, "filed", category=cat, description="西街道的事件")
        other = make_case(s, "filed", category=cat, cell_code=OTHER_CELL, description="东街道的事件")
        ids = {"mine": mine.id, "other": other.id, "w1": w1.id, "w2": w2.id, "cat": cat.code}
    return app.test_client(), users, ids


def _counts(sessionmaker):
    with sessionmaker() as s:
        return (s.scalar(select(func.count(Case.id))), s.scalar(select(func.count(CaseEvent.id))),
                s.scalar(select(func.sum(Case.version))))


# ----------------------------------------------------------------------------- boundaries
def test_balance_and_diff_refuse_a_worker_and_the_department(world):
    c, users, _ = world
    for who in ("w1", "dep"):
        for url in (f"/api/v1/boundaries/balance?community={NW}", f"/api/v1/boundaries/balance?street=330999001",
                    f"/api/v1/boundaries/balance?community={NW}&propose=1000",
                    "/api/v1/boundaries/diff?from=2020-01-01"):
            r = c.get(url, headers=users[who])
            assert r.status_code == 403, (who, url, r.status_code)
            assert "households" not in r.get_data(as_text=True) and "西北社区" not in r.get_data(as_text=True)


def test_balance_outside_the_scope_answers_like_an_unknown_area(world):
    c, users, _ = world
    out = c.get(f"/api/v1/boundaries/balance?community={EAST_COMM}", headers=users["west"])
    unknown = c.get("/api/v1/boundaries/balance?community=330999001999", headers=users["west"])
    assert out.status_code == unknown.status_code == 404
    assert out.json["error"].replace(EAST_COMM, "X") == unknown.json["error"].replace("330999001999", "X")
    assert c.get("/api/v1/boundaries/balance?street=330999002", headers=users["west"]).status_code == 404
    mine = c.get(f"/api/v1/boundaries/balance?community={NW}", headers=users["west"])
    assert mine.status_code == 200 and {r["code"][:12] for r in mine.json["cells"]} == {NW}
    assert c.get(f"/api/v1/boundaries/balance?community={EAST_COMM}", headers=users["qu"]).status_code == 200


def test_balance_parameters_are_bounded(world):
    c, users, _ = world
    for query in ("propose=1000", "propose=1000000000000000000000000000000", "propose=-1", "propose=²",
                  "seed=1000000000000000000000", "target_min=0", "target_max=100000000000000000000"):
        r = c.get(f"/api/v1/boundaries/balance?community={NW}&{query}", headers=users["city"])
        assert r.status_code == 400, (query, r.status_code, r.get_data(as_text=True)[:200])
        assert r.json.get("field") in ("propose", "seed", "target_min"), r.json


def test_balance_draft_operation_is_bounded_and_scoped(world, sessionmaker):
    c, users, _ = world
    r = c.post("/api/v1/boundaries/drafts", headers=users["west"],
               json={"operation": "balance", "community": NW, "n": 1000})
    assert r.status_code == 400 and "from 1 to 60" in r.json["error"]
    r = c.post("/api/v1/boundaries/drafts", headers=users["west"],
               json={"operation": "balance", "community": EAST_COMM, "n": 2})
    assert r.status_code == 404
    r = c.post("/api/v1/boundaries/drafts", headers=users["w1"], json={"operation": "balance", "community": NW, "n": 2})
    assert r.status_code == 403


def test_diff_is_limited_to_the_callers_subtree(world):
    c, users, _ = world
    before = utcnow()
    r = c.post("/api/v1/boundaries/drafts", headers=users["east"],
               json={"operation": "split", "cell": OTHER_CELL,
                     "line": {"type": "LineString", "coordinates": [[122.05, 30.045], [122.05, 30.025]]}})
    assert r.status_code == 201, r.json
    did = r.json["id"]
    r = c.post(f"/api/v1/boundaries/drafts/{did}/publish", headers=users["qu"], json={"reason": "调整"})
    assert r.status_code == 200, r.json
    q = {"from": before.isoformat()}
    east = c.get("/api/v1/boundaries/diff", query_string=q, headers=users["east"]).json
    west = c.get("/api/v1/boundaries/diff", query_string=q, headers=users["west"]).json
    qu = c.get("/api/v1/boundaries/diff", query_string=q, headers=users["qu"]).json
    assert sum(east["summary"].values()) >= 1 and east["drafts"][0]["id"] == did, (east, qu)
    assert {x["code"][:9] for k in ("created", "changed", "retired") for x in east[k]} == {"330999002"}
    assert qu["summary"] == east["summary"]
    assert west["summary"] == {"created": 0, "changed": 0, "retired": 0} and west["drafts"] == []


def test_diff_dates_at_the_calendars_edge(world):
    c, users, _ = world
    for q in ("from=0001-01-01", "from=2020-01-01&to=9999-12-31", "from=9999-12-31T23:59:59Z"):
        r = c.get(f"/api/v1/boundaries/diff?{q}", headers=users["city"])
        assert r.status_code == 400 and r.json["field"] in ("from", "to"), r.get_data(as_text=True)[:200]


def _draft_bodies():
    feature = {"type": "Feature", "properties": {"code": "X"}, "geometry": shapely.geometry.mapping(
        shapely.box(122.0, 30.02, 122.02, 30.04))}
    return [
        {"operation": "replace_cells", "community": NW, "features": {"type": "FeatureCollection", "features": [1, 2]}},
        {"operation": "replace_cells", "community": NW, "features": {"type": "FeatureCollection", "features": "x"}},
        {"operation": "replace_cells", "community": NW,
         "features": {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": [1]}]}},
        {"operation": "replace_cells", "community": NW,
         "features": {"type": "FeatureCollection", "features": [{**feature, "geometry": None}]}},
        {"operation": "replace_cells", "community": NW,
         "features": {"type": "FeatureCollection", "features": [{**feature, "geometry": {"type": "Polygon"}}]}},
        {"operation": "replace_cells", "community": NW,
         "features": {"type": "FeatureCollection", "features": [{**feature, "geometry": {
             "type": "Polygon", "coordinates": [[[122, 30], [122.1, 30], "x"]]}}]}},
        {"operation": "split", "cell": CELL, "line": "LINESTRING (122.01 30.045, 122.01 NaN)"},
        {"operation": "split", "cell": CELL, "line": "LINESTRING (122.01 30.045, 122.01 inf)"},
        {"operation": "split", "cell": CELL, "line": {"type": "LineString", "coordinates": [[122.01, 30.045]]}},
        {"operation": "split", "cell": CELL, "line": {"type": "LineString", "coordinates": [[122.01, 30.045],
                                                                                            ["a", None]]}},
        {"operation": "split", "cell": CELL, "line": {"type": "LineString", "coordinates": "nope"}},
        {"operation": "split", "cell": CELL, "line": 5},
        {"operation": "reshape", "cell": CELL, "polygon": {"type": "Polygon", "coordinates": [[[1e308, 1e308],
                                                                                               [-1e308, 1], [0, 0]]]}},
        {"operation": "merge", "cells": [CELL, 5]},
        {"operation": "split", "cell": 5, "line": SPLIT},
        {"operation": "split", "cell": CELL, "line": SPLIT, "draft_id": 2**62},
        {"operation": "split", "cell": CELL, "line": SPLIT, "draft_id": 2**40},
        {"operation": "replace_cells", "community": NW, "features": {"type": "FeatureCollection", "features": [
            {**feature, "properties": {"code": "X", "households": 2**40}}]}},
    ]


def test_malformed_draft_operations_answer_4xx_and_write_nothing(world, sessionmaker):
    from gridmap.redraw.models import BoundaryDraft

    c, users, _ = world
    seen = []
    for body in _draft_bodies():
        r = c.post("/api/v1/boundaries/drafts", headers=users["west"], json=body)
        seen.append((body, r.status_code, r.get_data(as_text=True)[:160]))
    fails = [x for x in seen if not 400 <= x[1] < 500]
    assert not fails, "\n".join(map(str, fails))
    with sessionmaker() as s:
        assert s.scalar(select(func.count(BoundaryDraft.id))) == 0


# ----------------------------------------------------------------------------- case actions
def test_mark_duplicate_of_another_districts_case_answers_like_an_unknown_id(world, sessionmaker):
    c, users, ids = world
    before = _counts(sessionmaker)
    url = f"/api/v1/cases/{ids['mine']}/actions"
    out = c.post(url, headers=users["west"], json={"action": "mark_duplicate", "comment": "重复",
                                                   "data": {"duplicate_of_id": ids["other"]}})
    unknown = c.post(url, headers=users["west"], json={"action": "mark_duplicate", "comment": "重复",
                                                       "data": {"duplicate_of_id": 999999}})
    assert out.status_code == unknown.status_code and 400 <= out.status_code < 500
    assert out.json["error"].replace(str(ids["other"]), "N") == unknown.json["error"].replace("999999", "N")
    assert "东街道" not in out.get_data(as_text=True)
    assert _counts(sessionmaker) == before
    # the city may
    ok = c.post(url, headers=users["city"], json={"action": "mark_duplicate", "comment": "重复",
                                                  "data": {"duplicate_of_id": ids["other"]}})
    assert ok.status_code == 200 and ok.json["duplicate_of_id"] == ids["other"]


def test_dispatch_to_a_worker_outside_the_scope_answers_like_an_unknown_worker(world, sessionmaker):
    c, users, ids = world
    before = _counts(sessionmaker)
    url = f"/api/v1/cases/{ids['mine']}/actions"
    out = c.post(url, headers=users["west"], json={"action": "dispatch", "data": {"worker_id": ids["w2"]}})
    unknown = c.post(url, headers=users["west"], json={"action": "dispatch", "data": {"worker_id": 999999}})
    assert out.status_code == unknown.status_code and 400 <= out.status_code < 500
    assert out.json["error"].replace(str(ids["w2"]), "N") == unknown.json["error"].replace("999999", "N")
    assert "李娜" not in out.get_data(as_text=True) and "W2" not in out.get_data(as_text=True)
    assert _counts(sessionmaker) == before
    ok = c.post(url, headers=users["west"], json={"action": "dispatch", "data": {"worker_id": ids["w1"]}})
    assert ok.status_code == 200 and ok.json["routing"]["worker"]["code"] == "W1"


def test_pages_dispatch_form_checks_the_worker_too(world, sessionmaker):
    from tests.test_pages import as_user, csrf_from

    c, users, ids = world
    app = c.application
    with transaction(sessionmaker) as s:
        from gridmap.accounts.service import create_user

        create_user(s, "westpage", "street", password="correct horse battery", area_code="330999001")
    page = as_user(app, "westpage")
    token = csrf_from(page.get(f"/cases/{ids['mine']}").get_data(as_text=True))
    before = _counts(sessionmaker)
    r = page.post(f"/cases/{ids['mine']}/actions", data={"csrf_token": token, "action": "dispatch",
                                                         "worker_id": str(ids["w2"])})
    assert r.status_code in (303, 302, 400, 404)
    assert _counts(sessionmaker) == before


def test_creating_a_case_in_another_cell_does_not_name_its_worker(world):
    c, users, ids = world
    body = {"category": ids["cat"], "description": "路过看到东街道的垃圾",
            "location": {"lon": 122.045, "lat": 30.035}}
    r = c.post("/api/v1/cases", headers=users["w1"], json=body)
    assert r.status_code == 201, r.json
    text = r.get_data(as_text=True)
    assert "李娜" not in text and '"W2"' not in text
    assert r.json["routing"]["worker"] is None and r.json["routing"]["hidden"] is True
    d = c.get(f"/api/v1/cases/{r.json['id']}", headers=users["w1"])  # not theirs to read back either
    assert "李娜" not in d.get_data(as_text=True)
    # whoever may see the worker still does
    e = c.get(f"/api/v1/cases/{r.json['id']}", headers=users["east"])
    assert e.status_code == 200 and e.json["routing"]["worker"]["name"] == "李娜"


def test_the_department_role_cannot_create_through_the_api(world, sessionmaker):
    c, users, ids = world
    before = _counts(sessionmaker)
    r = c.post("/api/v1/cases", headers=users["dep"], json={"category": ids["cat"], "description": "x",
                                                           "location": {"lon": 122.01, "lat": 30.035}})
    assert r.status_code == 403
    assert _counts(sessionmaker) == before
