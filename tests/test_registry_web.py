"""The registry in the web app: the JSON API (scoped, masked, paginated, 404 out of scope, whole
views and exports logged), the manual-placement queue page (placing by a candidate, refusing a
point outside the supervisor's area), the worker's register page and the centre's new columns."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from gridmap.db import transaction
from gridmap.incidents.models import Case
from gridmap.registry.models import AccessLog, Address, Person
from gridmap.registry.pii import keys_from_config
from tests.casehelpers import make_category, make_token, make_user, make_worker
from tests.test_pages import csrf_from, login
from tests.test_registry import CELL_NW1, ID_A, ID_C, load_register


@pytest.fixture
def reg(app, sessionmaker, loaded_city, tmp_path):
    return registry_cast(app, sessionmaker, tmp_path)


def registry_cast(app, sessionmaker, tmp_path) -> dict:
    """The small register (tests/test_registry.py) with the app's keys, a worker of CELL_NW1 and
    users w1, head (community 330999001001), street (west), street2 (east) and city with tokens."""
    load_register(sessionmaker, tmp_path, keys=keys_from_config(app.config, app.instance_path))
    with transaction(sessionmaker) as s:
        parent = make_category(s, "test", name="测试事件", limit=(2, "natural_days"))
        make_category(s, "test.litter", name="暴露垃圾", parent=parent)
        w1 = make_worker(s, "W1", name="张伟", cell_code=CELL_NW1)
        head_w = make_worker(s, "H1", name="王网格长", role="head", cell_code=None, area_code="330999001001")
        make_user(s, "w1", "worker", worker=w1)
        make_user(s, "head", "head", worker=head_w, area_code="330999001001")
        make_user(s, "street", "street", area_code="330999001")
        make_user(s, "street2", "street", area_code="330999002")
        make_user(s, "city", "city")
        tokens = {u: make_token(s, u) for u in ("w1", "head", "street", "street2", "city")}
        people = {p.name: p.id for p in s.scalars(select(Person))}
    return {"tokens": tokens, "people": people, "w1": w1.id}


def _get(client, reg, who, url):
    return client.get(url, headers={"Authorization": f"Bearer {reg['tokens'][who]}"})


def test_worker_sees_her_residents_masked_and_no_one_else(client, reg):
    r = _get(client, reg, "w1", "/api/v1/registry/persons")
    assert r.status_code == 200
    d = r.get_json()
    assert d["total"] == 2 and {p["name"] for p in d["items"]} == {"张桂英", "李建国"}
    zhang = next(p for p in d["items"] if p["name"] == "张桂英")
    assert zhang["id_number"] == ID_A[:6] + "********" + ID_A[-4:] and zhang["phone"] == "138****5678"
    assert ID_A not in r.get_data(as_text=True)
    assert _get(client, reg, "w1", f"/api/v1/registry/persons/{reg['people']['王小雨']}").status_code == 404
    assert _get(client, reg, "w1", "/api/v1/registry/persons/999999").status_code == 404
    assert _get(client, reg, "w1", f"/api/v1/registry/persons/{reg['people']['张桂英']}").get_json()["tags"] == \
        ["独居老人", "低保"]
    r = client.post(f"/api/v1/registry/persons/{reg['people']['张桂英']}/reveal", json={"purpose": "走访"},
                    headers={"Authorization": f"Bearer {reg['tokens']['w1']}"})
    assert r.status_code == 403
    s = _get(client, reg, "w1", "/api/v1/registry/summary?level=cell").get_json()
    assert [(x["code"], x["persons"], x["households"]) for x in s["rows"]] == [(CELL_NW1, 2, 1)]
    q = _get(client, reg, "w1", "/api/v1/registry/persons?q=李").get_json()
    assert [p["name"] for p in q["items"]] == ["李建国"]
    assert _get(client, reg, "w1", "/api/v1/registry/persons?tag=dibao").get_json()["total"] == 1


def test_area_staff_scope_whole_view_and_export_are_logged(client, reg, sessionmaker):
    wang = reg["people"]["王小雨"]
    assert _get(client, reg, "street2", f"/api/v1/registry/persons/{wang}").status_code == 404
    assert _get(client, reg, "street2", "/api/v1/registry/persons").get_json()["total"] == 0
    assert _get(client, reg, "street", "/api/v1/registry/persons").get_json()["total"] == 3
    hdr = {"Authorization": f"Bearer {reg['tokens']['street']}"}
    assert client.post(f"/api/v1/registry/persons/{wang}/reveal", json={}, headers=hdr).get_json()["field"] == "purpose"
    r = client.post(f"/api/v1/registry/persons/{wang}/reveal", json={"purpose": "核实身份"}, headers=hdr)
    assert r.status_code == 200 and r.get_json()["id_number"] == ID_C and r.get_json()["phone"] == "13900001111"
    assert client.post(f"/api/v1/registry/persons/{wang}/reveal", json={"purpose": "x"},
                       headers={"Authorization": f"Bearer {reg['tokens']['street2']}"}).status_code == 404
    assert _get(client, reg, "w1", "/api/v1/registry/persons/export?purpose=x").status_code == 403
    masked = _get(client, reg, "city", "/api/v1/registry/persons/export?purpose=年度核查")
    whole = _get(client, reg, "city", "/api/v1/registry/persons/export?purpose=年度核查&whole=1")
    assert masked.status_code == 200 and masked.headers["X-Rows"] == "3"
    assert ID_A not in masked.get_data(as_text=True) and ID_A in whole.get_data(as_text=True)
    assert _get(client, reg, "city", "/api/v1/registry/persons/export").status_code == 400  # no purpose
    with sessionmaker() as s:
        log = [(a.action, a.actor_name, a.record_id, a.purpose) for a in s.scalars(select(AccessLog).order_by(AccessLog.id))]
    assert log == [("view_full", "street", wang, "核实身份"), ("export", "city", None, "年度核查"),
                   ("export", "city", None, "年度核查")]


def test_api_refuses_bad_parameters_by_name(client, reg):
    for url, field in (("/api/v1/registry/summary?level=planet", "level"),
                       ("/api/v1/registry/persons?cell=nosuch", "cell"),
                       ("/api/v1/registry/persons?per_page=1000", "per_page"),
                       ("/api/v1/registry/buildings/geo?bbox=1,2", "bbox")):
        r = _get(client, reg, "city", url)
        assert r.status_code == 400 and r.get_json()["field"] == field, url
    assert _get(client, reg, "city", "/api/v1/registry/planets").status_code == 404
    assert client.get("/api/v1/registry/persons").status_code == 401
    page = _get(client, reg, "city", "/api/v1/registry/households?per_page=1&page=2").get_json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["code"] == "H2"
    geo = _get(client, reg, "w1", "/api/v1/registry/buildings/geo?bbox=122,30,122.1,30.1").get_json()
    assert [f["properties"]["code"] for f in geo["features"]] == ["B1"]


def _queue_case(sessionmaker, address="定海区解放西路124号"):
    from gridmap.accounts.actor import SYSTEM
    from gridmap.incidents.intake import create_case

    with transaction(sessionmaker) as s:
        c = create_case(s, {"category": "test.litter", "description": "路灯不亮", "location": {"address": address}},
                        SYSTEM, source="hotline")
        assert c.placement == "queue"
        return c.id


def test_queue_page_places_a_case_by_candidate_and_refuses_other_areas(app, client, reg, sessionmaker):
    cid = _queue_case(sessionmaker)
    login(client, "street2")
    assert f'data-case-id="{cid}"' not in client.get("/queue").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/queue").get_data(as_text=True))})
    login(client, "head")
    html = client.get("/queue").get_data(as_text=True)
    assert f'data-case-id="{cid}"' in html and "定海区解放西路125号3幢2单元301室" in html
    token = csrf_from(html)
    # a point in the east street is outside the head's community: refused, the case stays queued
    r = client.post(f"/queue/{cid}/place", data={"csrf_token": token, "lon": "122.05", "lat": "30.035"})
    assert r.status_code == 302
    with sessionmaker() as s:
        assert s.get(Case, cid).placement == "queue"
        a1 = s.scalar(select(Address.id).where(Address.code == "A1"))
    assert "outside your area" in client.get("/queue").get_data(as_text=True)
    assert client.post(f"/queue/{cid}/place", data={"address_id": str(a1)}).status_code == 400  # no CSRF token
    r = client.post(f"/queue/{cid}/place", data={"csrf_token": token, "address_id": str(a1)})
    assert r.status_code == 302
    with sessionmaker() as s:
        c = s.get(Case, cid)
        assert c.placement == "manual" and c.status == "dispatched" and c.assignee_worker_id == reg["w1"]
        assert (c.lon, c.lat) == (122.01, 30.035)
    assert f'data-case-id="{cid}"' not in client.get("/queue").get_data(as_text=True)


def test_worker_register_page_and_centre_columns(client, reg):
    login(client, "w1")
    html = client.get("/worker/registry").get_data(as_text=True)
    assert "张桂英" in html and ID_A[:6] + "********" + ID_A[-4:] in html and ID_A not in html
    assert "王小雨" not in html and "独居老人" in html
    assert "李建国" in client.get("/worker/registry?q=李建").get_data(as_text=True)
    assert "没有登记的房屋。" in client.get("/worker/registry?q=不存在的人").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_from(html)})
    login(client, "city")
    html = client.get("/centre").get_data(as_text=True)
    assert 'class="num reg-persons">3<' in html and 'class="num reg-households">2<' in html


def test_queue_place_by_map_point(client, reg, sessionmaker):
    cid = _queue_case(sessionmaker, "定海区昌国路7号")
    login(client, "city")
    html = client.get("/queue").get_data(as_text=True)
    assert f'data-case-id="{cid}"' in html  # the city sees every queued case
    r = client.post(f"/queue/{cid}/place", data={"csrf_token": csrf_from(html), "lon": "122.03", "lat": "30.036"})
    assert r.status_code == 302
    with sessionmaker() as s:
        c = s.get(Case, cid)
        assert c.placement == "manual" and (c.lon, c.lat) == (122.03, 30.036)
        assert c.cell_id == s.scalar(select(Address.cell_id).where(Address.code == "A2"))
