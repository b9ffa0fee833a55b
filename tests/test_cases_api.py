"""The cases JSON API over HTTP: create, list (filters, pages, scope), detail, actions, placement, photos.

Real PostGIS and SpatiaLite; tokens made by the accounts service; cases made through intake."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from gridmap.accounts.actor import SYSTEM
from gridmap.db import transaction
from gridmap.incidents.intake import create_case
from gridmap.incidents.models import Case, CaseEvent, CasePhoto
from tests.casehelpers import CELL, OTHER_CELL, T0, auth, make_category, make_token, make_user, make_worker

P = (122.01, 30.035)        # in CELL
P_OTHER = (122.05, 30.035)  # in OTHER_CELL


def _image(fmt: str, size=(8, 6)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


PNG = _image("PNG")
JPEG = _image("JPEG", (40, 30))


@dataclass
class World:
    w1: dict    # primary worker of CELL
    w2: dict    # backup worker of CELL
    w3: dict    # worker of OTHER_CELL
    west: dict  # street supervisor of CELL's street
    city: dict
    w1_id: int
    w3_id: int


@pytest.fixture
def world(app, sessionmaker, loaded_city) -> World:
    from gridmap.web import cases_api

    if "cases_api" not in app.blueprints:
        app.register_blueprint(cases_api.bp)
    with transaction(sessionmaker) as s:
        top = make_category(s, "test", limit=(3, "natural_days"))
        make_category(s, "test.litter", name="暴露垃圾", parent=top, limit=None)
        make_category(s, "test.manhole", name="井盖缺失", parent=top)
        make_category(s, "other", name="其他")
        w1 = make_worker(s, "W1", cell_code=CELL, name="张伟")
        w2 = make_worker(s, "W2", cell_code=CELL, name="李娜", responsibility="backup")
        w3 = make_worker(s, "W3", cell_code=OTHER_CELL, name="王芳")
        make_worker(s, "W4", cell_code=CELL[:12] + "004", name="赵敏")  # CELL's community, its 4th cell
        for u, role, w, area in (("zw", "worker", w1, None), ("ln", "worker", w2, None), ("wf", "worker", w3, None),
                                 ("west", "street", None, CELL[:9]), ("centre", "city", None, None)):
            make_user(s, u, role, worker=w, area_code=area)
        toks = {u: auth(make_token(s, u)) for u in ("zw", "ln", "wf", "west", "centre")}
        return World(toks["zw"], toks["ln"], toks["wf"], toks["west"], toks["centre"], w1.id, w3.id)


def body(lon=P[0], lat=P[1], **extra):
    return {"category": "test.litter", "description": "路边暴露垃圾", "location": {"lon": lon, "lat": lat}, **extra}


def n_cases(sessionmaker):
    with sessionmaker() as s:
        return s.scalar(select(func.count(Case.id))), s.scalar(select(func.count(CaseEvent.id)))


def test_create_routes_dispatches_and_suggests_duplicates(client, world, sessionmaker):
    r = client.post("/api/v1/cases", json=body(reporter={"name": "李四", "phone": "13812341234"}), headers=world.w1)
    assert r.status_code == 201, r.json
    c = r.json
    assert r.headers["Location"] == f"/api/v1/cases/{c['id']}"
    assert c["status"] == "dispatched" and c["source"] == "patrol"
    assert c["routing"]["worker"]["code"] == "W1" and c["routing"]["level"] == "cell"
    assert c["routing"]["reason"] == f"cell {CELL}: primary worker W1 张伟"
    assert c["location"]["cell"]["code"] == CELL and c["location"]["street"]["code"] == CELL[:9]
    assert c["times"]["deadline"] is not None and c["number"].endswith(f"-{c['id']:06d}")
    assert c["reporter"] == {"name": "李四", "phone": "13812341234", "masked": False}
    assert c["possible_duplicates"] == []
    assert "accept" in c["allowed_actions"]
    # a second report 100 m away: the first is suggested
    r2 = client.post("/api/v1/cases", json=body(lat=P[1] + 100 / 111_320, source="resident"), headers=world.w1)
    assert r2.status_code == 201
    dups = r2.json["possible_duplicates"]
    assert [d["id"] for d in dups] == [c["id"]] and 99 < dups[0]["distance_m"] < 101
    assert r2.json["source"] == "resident"
    # suggestions stay within the reporter's scope: W3 (another cell) is not shown CELL's cases
    r3 = client.post("/api/v1/cases", json=body(), headers=world.w3)
    assert r3.status_code == 201 and r3.json["possible_duplicates"] == []
    r4 = client.post("/api/v1/cases", json=body(), headers=world.city)
    assert len(r4.json["possible_duplicates"]) == 3


@pytest.mark.parametrize("kwargs, status, field, needle", [
    ({"data": "{not json", "content_type": "application/json"}, 400, None, "not valid JSON"),
    ({"json": [1, 2]}, 400, None, "JSON object"),
    ({"data": "", "content_type": "application/json"}, 400, None, "empty"),
    ({"json": {**body(), "category": "test.litterr"}}, 422, "category", "did you mean test.litter"),
    ({"json": body(121.0, 30.0)}, 422, "location", "outside every cell"),
    ({"json": body(30.035, 122.01)}, 400, "location", "swapped"),
    ({"json": {**body(), "description": ""}}, 400, "description", "required"),
    ({"json": body("x", 30.0)}, 400, "location.lon", "number"),
    ({"json": {**body(), "source": "import"}}, 400, "source", "source must be one of"),
])
def test_create_refusals_are_json_4xx_and_write_nothing(client, world, sessionmaker, kwargs, status, field, needle):
    r = client.post("/api/v1/cases", headers=world.w1, **kwargs)
    assert r.status_code == status, r.json
    assert needle in r.json["error"]
    if field:
        assert r.json["field"] == field
    assert n_cases(sessionmaker) == (0, 0)


def test_every_endpoint_needs_a_token(client, world):
    for method, url in (("post", "/api/v1/cases"), ("get", "/api/v1/cases"), ("get", "/api/v1/cases/1"),
                        ("post", "/api/v1/cases/1/actions"), ("post", "/api/v1/cases/1/photos"),
                        ("get", "/api/v1/cases/1/photos/1"), ("post", "/api/v1/cases/1/place")):
        r = getattr(client, method)(url, json={})
        assert r.status_code == 401, url
        r = getattr(client, method)(url, json={}, headers={"Authorization": "Bearer gm_wrong"})
        assert r.status_code == 401, url


@pytest.fixture
def cases(world, sessionmaker):
    """Six cases over two cells, two categories, three days and three states."""
    made = {}
    with transaction(sessionmaker) as s:
        def mk(key, pt, cat, when, dispatch=True, **extra):
            data = {"category": cat, "description": key, "location": {"lon": pt[0], "lat": pt[1]}, **extra}
            made[key] = create_case(s, data, SYSTEM, source="patrol", now=when, auto_dispatch=dispatch).id
        mk("a", P, "test.litter", T0, reporter={"name": "李四", "phone": "13812341234"})
        mk("b", P, "test.manhole", T0 + dt.timedelta(days=1))
        mk("c", P, "other", T0 + dt.timedelta(days=2), dispatch=False)
        mk("d", P_OTHER, "test.litter", T0)
        mk("e", P_OTHER, "other", T0 + dt.timedelta(days=1), dispatch=False)
        mk("f", (122.03, 30.025), "test.litter", T0 + dt.timedelta(days=2))  # CELL's community, another cell
    return made


def ids(r):
    assert r.status_code == 200, r.json
    return sorted(i["description"] for i in r.json["items"])


def test_list_filters(client, world, cases):
    get = lambda q: client.get(f"/api/v1/cases?{q}", headers=world.city)  # noqa: E731
    assert ids(get("")) == ["a", "b", "c", "d", "e", "f"]
    assert ids(get("status=reported")) == ["c", "e"]
    assert ids(get("status=reported,dispatched")) == ["a", "b", "c", "d", "e", "f"]
    assert ids(get(f"cell={CELL}")) == ["a", "b", "c"]
    assert ids(get(f"community={CELL[:12]}")) == ["a", "b", "c", "f"]
    assert ids(get(f"street={OTHER_CELL[:9]}")) == ["d", "e"]
    assert ids(get("category=test")) == ["a", "b", "d", "f"]          # with subcategories
    assert ids(get("category=test.litter")) == ["a", "d", "f"]
    assert ids(get("bbox=122.04,30.03,122.06,30.04")) == ["d", "e"]
    assert ids(get("from=2026-03-03")) == ["b", "c", "e", "f"]         # Shanghai days
    assert ids(get("to=2026-03-02")) == ["a", "d"]
    assert ids(get("from=2026-03-03&to=2026-03-03")) == ["b", "e"]
    assert ids(get("overdue=true")) == ["a", "b", "d", "f"]            # dispatched in 2026-03, 3-day limit
    assert ids(get("overdue=false")) == ["c", "e"]
    assert ids(get("category=other&street=" + OTHER_CELL[:9])) == ["e"]


@pytest.mark.parametrize("q, field", [
    ("per_page=500", "per_page"), ("page=0", "page"), ("page=x", "page"), ("colour=red", "colour"),
    ("status=lost", "status"), ("cell=999", "cell"), ("category=nope", "category"), ("bbox=1,2,3", "bbox"),
    ("bbox=123,30,122,31", "bbox"), ("from=yesterday", "from"), ("overdue=perhaps", "overdue"),
])
def test_list_bad_filters_are_400_naming_the_field(client, world, q, field):
    r = client.get(f"/api/v1/cases?{q}", headers=world.city)
    assert r.status_code == 400 and r.json["field"] == field, r.json


def test_pagination(client, world, cases):
    pages = []
    for page in (1, 2, 3, 4):
        r = client.get(f"/api/v1/cases?per_page=2&page={page}", headers=world.city)
        assert r.json["total"] == 6 and r.json["page"] == page and r.json["per_page"] == 2
        pages.append([i["description"] for i in r.json["items"]])
    assert [len(p) for p in pages] == [2, 2, 2, 0]
    flat = [d for p in pages for d in p]
    assert sorted(flat) == ["a", "b", "c", "d", "e", "f"]
    assert flat[:2] in (["c", "f"], ["f", "c"])  # newest first


def test_scope_worker_sees_own_cells_and_other_cases_are_404(client, world, cases):
    assert ids(client.get("/api/v1/cases", headers=world.w1)) == ["a", "b", "c"]
    assert ids(client.get("/api/v1/cases", headers=world.w3)) == ["d", "e"]
    assert ids(client.get("/api/v1/cases", headers=world.west)) == ["a", "b", "c", "f"]
    assert client.get(f"/api/v1/cases/{cases['a']}", headers=world.w1).status_code == 200
    r = client.get(f"/api/v1/cases/{cases['d']}", headers=world.w1)
    assert r.status_code == 404 and r.json["error"] == f"no case {cases['d']}"
    assert client.get("/api/v1/cases/999999", headers=world.w1).status_code == 404
    # even a filter naming another cell shows nothing outside the scope
    assert ids(client.get(f"/api/v1/cases?cell={OTHER_CELL}", headers=world.w1)) == []


def test_detail_history_and_personal_data(client, world, cases):
    a = cases["a"]
    mine = client.get(f"/api/v1/cases/{a}", headers=world.w1).json           # the assignee
    assert mine["reporter"] == {"name": "李四", "phone": "13812341234", "masked": False}
    assert [h["action"] for h in mine["history"]] == ["report", "file", "dispatch"]
    assert mine["history"][0]["data"]["routing"]["worker_id"] == world.w1_id
    backup = client.get(f"/api/v1/cases/{a}", headers=world.w2).json         # sees the cell, not assigned
    assert backup["reporter"] == {"name": "李*", "phone": "138****1234", "masked": True}
    assert client.get(f"/api/v1/cases/{a}", headers=world.west).json["reporter"]["phone"] == "13812341234"
    listed = client.get(f"/api/v1/cases?cell={CELL}", headers=world.w2).json["items"]
    assert {i["reporter"]["phone"] for i in listed if i["id"] == a} == {"138****1234"}


def test_actions_with_versions_conflicts_and_permissions(client, world, cases, sessionmaker):
    a = cases["a"]
    url = f"/api/v1/cases/{a}/actions"
    v = client.get(f"/api/v1/cases/{a}", headers=world.w1).json["version"]
    r = client.post(url, json={"action": "accept", "comment": "收到", "version": v, "lon": 122.01, "lat": 30.035},
                    headers=world.w1)
    assert r.status_code == 200, r.json
    assert r.json["status"] == "in_progress" and r.json["version"] == v + 1
    assert r.json["history"][-1]["action"] == "accept" and r.json["history"][-1]["lon"] == 122.01
    # the same request again with the version it saw: a conflict, with the current version
    r = client.post(url, json={"action": "feedback", "comment": "已清理", "version": v}, headers=world.w1)
    assert r.status_code == 409 and r.json["current_version"] == v + 1 and r.json["current_status"] == "in_progress"
    # not the assignee: 403; wrong state: 409; not in scope: 404; unknown action: 400
    r = client.post(url, json={"action": "feedback", "comment": "x"}, headers=world.w2)
    assert r.status_code == 403, r.json
    r = client.post(url, json={"action": "evaluate"}, headers=world.west)
    assert r.status_code == 409 and "in_progress" in r.json["error"]
    assert client.post(url, json={"action": "feedback", "comment": "x"}, headers=world.w3).status_code == 404
    assert client.post(url, json={"action": "fly"}, headers=world.w1).status_code == 400
    for bad, field in (({"action": "feedback", "version": "2"}, "version"), ({"comment": "x"}, "action"),
                       ({"action": "feedback", "lon": 1.0}, "lat"), ({"action": "feedback", "data": [1]}, "data")):
        r = client.post(url, json=bad, headers=world.w1)
        assert r.status_code == 400 and r.json["field"] == field, (bad, r.json)
    with sessionmaker() as s:
        c = s.get(Case, a)
        assert c.status == "in_progress" and c.version == v + 1
        assert s.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.case_id == a)) == 4
    # the assignee finishes it
    r = client.post(url, json={"action": "feedback", "comment": "已清理", "version": v + 1}, headers=world.w1)
    assert r.status_code == 200 and r.json["status"] == "handled"


def test_mark_duplicate_goes_through_the_life_cycle(client, world, cases):
    r = client.post(f"/api/v1/cases/{cases['c']}/actions", headers=world.west,
                    json={"action": "mark_duplicate", "data": {"duplicate_of_id": cases["b"]}})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "rejected" and r.json["duplicate_of_id"] == cases["b"]
    # a worker may not
    r = client.post(f"/api/v1/cases/{cases['c']}/actions", headers=world.w1,
                    json={"action": "mark_duplicate", "data": {"duplicate_of_id": cases["a"]}})
    assert r.status_code in (403, 409)


def test_manual_placement_over_http(client, world, sessionmaker):
    r = client.post("/api/v1/cases", json={"category": "test.litter", "description": "有人打电话说在老地方",
                                           "location": {"address": "某个不知道的地方"}}, headers=world.city)
    assert r.status_code == 201
    c = r.json
    assert c["location"]["placement"] == "queue" and c["routing"]["level"] == "unroutable"
    assert c["routing"]["reason"] == "address below confidence 0.8: manual placement needed"
    url = f"/api/v1/cases/{c['id']}/place"
    assert client.post(url, json={"lon": P[0], "lat": P[1]}, headers=world.w1).status_code == 404
    r = client.post(url, json={"lon": 200, "lat": P[1]}, headers=world.city)
    assert r.status_code == 400 and r.json["field"] == "location"
    r = client.post(url, json={"lon": P[0], "lat": P[1], "crs": "wgs84", "version": c["version"]},
                    headers=world.city)
    assert r.status_code == 200, r.json
    assert r.json["location"]["placement"] == "manual" and r.json["routing"]["worker"]["code"] == "W1"
    assert r.json["status"] == "dispatched"
    assert [h["action"] for h in r.json["history"]] == ["report", "place", "file", "dispatch"]


# ----------------------------------------------------------------------------- photos

def _upload(client, case_id, headers, data, name="p.png", ctype="image/png", field="photo"):
    return client.post(f"/api/v1/cases/{case_id}/photos", headers=headers, content_type="multipart/form-data",
                       data={field: (io.BytesIO(data), name, ctype)})


def test_photo_upload_and_download(client, app, world, cases, sessionmaker):
    a = cases["a"]
    r = _upload(client, a, world.w1, PNG)
    assert r.status_code == 201, r.json
    p = r.json
    assert p["content_type"] == "image/png" and p["filename"] == "p.png"
    stored = os.path.join(app.instance_path, "photos", str(a), f"{p['sha256']}.png")
    kept = open(stored, "rb").read()  # what Pillow re-encoded: the same picture, no metadata
    assert p["size"] == len(kept) and hashlib.sha256(kept).hexdigest() == p["sha256"]
    from PIL import Image

    assert Image.open(io.BytesIO(kept)).tobytes() == Image.open(io.BytesIO(PNG)).tobytes()
    # the same bytes again: stored once
    assert _upload(client, a, world.w1, PNG, name="again.png").json["id"] == p["id"]
    got = client.get(p["url"], headers=world.w1)
    assert got.status_code == 200 and got.data == kept and got.mimetype == "image/png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    # scope: another cell's worker cannot see it, not even by guessing the ids
    assert client.get(p["url"], headers=world.w3).status_code == 404
    assert client.get(f"/api/v1/cases/{a}/photos/999", headers=world.w1).status_code == 404
    detail = client.get(f"/api/v1/cases/{a}", headers=world.w1).json
    assert [x["id"] for x in detail["photos"]] == [p["id"]] and detail["history"][-1]["action"] == "photo"
    # a JPEG declared as anything is still a JPEG
    r = _upload(client, a, world.w1, JPEG, name="x.bin", ctype="application/octet-stream")
    assert r.status_code == 201 and r.json["content_type"] == "image/jpeg"


def test_photo_refusals(client, app, world, cases, sessionmaker):
    a = cases["a"]
    r = _upload(client, a, world.w1, b"<html>not an image</html>", name="evil.jpg", ctype="image/jpeg")
    assert r.status_code == 415 and "JPEG, PNG or WebP" in r.json["error"]
    r = _upload(client, a, world.w1, b"GIF89a" + b"\x00" * 50, name="a.gif", ctype="image/gif")
    assert r.status_code == 415
    app.config["GRIDMAP_PHOTO_MAX_BYTES"] = len(JPEG) - 1
    r = _upload(client, a, world.w1, JPEG)
    assert r.status_code == 413 and r.json["field"] == "photo"
    app.config["GRIDMAP_PHOTO_MAX_BYTES"] = 5 * 1024 * 1024
    assert _upload(client, a, world.w1, b"", name="empty.png").status_code == 400
    r = _upload(client, a, world.w1, PNG, field="file")
    assert r.status_code == 400 and "'photo'" in r.json["error"]
    assert _upload(client, cases["d"], world.w1, PNG).status_code == 404  # not in scope
    with sessionmaker() as s:
        assert s.scalar(select(func.count(CasePhoto.id))) == 0
    assert not os.path.exists(os.path.join(app.instance_path, "photos", str(a))) or \
        os.listdir(os.path.join(app.instance_path, "photos", str(a))) == []
