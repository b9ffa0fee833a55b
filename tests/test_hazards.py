"""The hazard register: types, registration (point and area), life-cycle, scope, inspections, import,
API and CLI, on PostGIS and SpatiaLite (the ``backend`` parameter of every DB fixture).

The test city (tests/conftest.py): cells of 0.02° × 0.01°; cell 330999001001001 spans
122.00–122.02 E, 30.03–30.04 N (north-west corner), 330999002001001 the first cell of the east street.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select, text

from gridmap.accounts.actor import SYSTEM, Actor
from gridmap.db import transaction
from gridmap.hazards import inspections as insp
from gridmap.hazards import service as hz
from gridmap.hazards.models import Hazard, HazardEvent, HazardType, InspectionTask
from tests.casehelpers import CELL, OTHER_CELL, T0, area, auth, make_token, make_user, make_worker, worker_actor

UTC = dt.timezone.utc
IN_CELL = (122.005, 30.035)      # inside CELL
IN_OTHER = (122.045, 30.035)     # inside OTHER_CELL (east street, first cell)


@pytest.fixture
def hzapp(app):
    """The app with the hazards blueprint and CLI group (the lead registers them in create_app)."""
    from gridmap.hazards.cli import hazards_group
    from gridmap.web.hazards_api import bp

    if "hazards_api" not in app.blueprints:
        app.register_blueprint(bp)
    if "hazards" not in app.cli.commands:
        app.cli.add_command(hazards_group)
    return app


@pytest.fixture
def city(sessionmaker, loaded_city):
    with transaction(sessionmaker) as s:
        w = make_worker(s, "W001", name="张伟")
        w2 = make_worker(s, "W002", cell_code=OTHER_CELL, name="李娜")
        hz.load_types(s)
        return {"w": w, "w2": w2}


def point(lon_lat=IN_CELL, **kw):
    return {"type": "fire", "title": "楼道堆放杂物", "lon": lon_lat[0], "lat": lon_lat[1], **kw}


# ----------------------------------------------------------------------------- schema and types

def test_migration_creates_tables_with_a_spatial_index(engine, backend):
    with engine.connect() as c:
        if backend == "postgis":
            idx = c.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'hazards' AND indexdef ILIKE "
                                 "'%gist%'")).scalars().all()
            assert idx and "geom" in idx[0]
        else:
            n = c.execute(text("SELECT spatial_index_enabled FROM geometry_columns WHERE f_table_name = 'hazards'"))
            assert n.scalar() == 1
        for t in ("hazard_types", "hazards", "hazard_events", "hazard_cases", "inspection_schedules",
                  "inspection_tasks"):
            c.execute(text(f"SELECT count(*) FROM {t}")).scalar()


def test_types_load_from_data_and_reload_is_idempotent(sessionmaker, backend):
    with transaction(sessionmaker) as s:
        first = hz.load_types(s)
        again = hz.load_types(s)
        fire = s.scalar(select(HazardType).where(HazardType.code == "fire"))
        codes = set(s.scalars(select(HazardType.code)))
    assert first["created"] >= 7 and again["created"] == 0 and again["updated"] == 0
    assert {"fire", "gas", "self_built", "flood", "work_safety", "traffic", "geological"} <= codes
    assert (fire.name, fire.rectify_limit_value, fire.rectify_limit_unit, fire.inspection_interval_days) == \
        ("消防", 7, "natural_days", 30)
    assert hz.rectify_limit(fire, "major") == (30.0, "natural_days")  # a major hazard: longer, under a plan
    assert hz.rectify_limit(fire, "general") == (7.0, "natural_days")


def test_a_bad_types_file_is_refused_with_every_problem(sessionmaker, tmp_path, backend):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"types": [{"code": "x", "name": "X", "rectify_limit": {"value": 0, "unit": "days"},
                                       "inspection_interval_days": -1}]}), encoding="utf-8")
    with transaction(sessionmaker) as s, pytest.raises(ValueError) as e:
        hz.load_types(s, p)
    msg = str(e.value)
    assert "value must be a number > 0" in msg and "unit must be one of" in msg and "inspection_interval_days" in msg


# ----------------------------------------------------------------------------- registration

def test_a_point_hazard_is_placed_routed_numbered_and_given_a_deadline(sessionmaker, city):
    with transaction(sessionmaker) as s:
        h = hz.create_hazard(s, point(grade="一般", responsible_unit="幸福小区物业"), SYSTEM, now=T0)
        hid = h.id
    with sessionmaker() as s:
        h = s.get(Hazard, hid)
        assert h.number == f"YH20260302-{hid:06d}"
        assert h.geom_kind == "point" and (h.lon, h.lat) == IN_CELL
        assert h.cell_id == area(s, CELL).id and h.street_id == area(s, "330999001").id
        assert h.responsible_worker_id == city["w"].id and "张伟" in h.route_reason
        assert h.rectify_deadline == T0 + dt.timedelta(days=7)  # fire: 7 natural days
        assert h.status == "open" and h.grade == "general" and h.accident_grade is None and h.responsible_unit == "幸福小区物业"
        ev = s.scalars(select(HazardEvent).where(HazardEvent.hazard_id == hid)).all()
        assert [(e.seq, e.action, e.to_status) for e in ev] == [(1, "register", "open")]


def test_a_major_hazard_gets_the_longer_limit_of_its_grade(sessionmaker, city):
    """重大事故隐患 are rectified over time under a plan (安监总局令第16号 第三条): gas 15 days, not 3."""
    with transaction(sessionmaker) as s:
        h = hz.create_hazard(s, point(type="gas", grade="重大事故隐患", accident_grade="较大",
                                      title="燃气管道锈蚀"), SYSTEM, now=T0)
        assert (h.grade, h.accident_grade) == ("major", "larger")
        assert h.rectify_deadline == T0 + dt.timedelta(days=15)
        g = hz.create_hazard(s, point(type="gas", grade="general", title="软管松动"), SYSTEM, now=T0)
        assert g.rectify_deadline == T0 + dt.timedelta(days=3)
        h2 = hz.create_hazard(s, point(type="燃气", grade="一般", title="软管老化",
                                       rectify_deadline="2026-03-10"), SYSTEM, now=T0)
        # a given deadline date means the end of that local day
        assert h2.rectify_deadline == dt.datetime(2026, 3, 10, 15, 59, 59, tzinfo=UTC)


def test_an_area_hazard_is_placed_by_its_centroid(sessionmaker, city):
    poly = {"type": "Polygon", "coordinates": [[[122.041, 30.031], [122.049, 30.031], [122.049, 30.039],
                                                [122.041, 30.039], [122.041, 30.031]]]}
    # a C shape whose centroid (122.0045, 30.035) lies in its mouth: placed by a point on its surface
    c_shape = {"type": "Polygon", "coordinates": [[[122.001, 30.031], [122.009, 30.031], [122.009, 30.033],
                                                   [122.003, 30.033], [122.003, 30.037], [122.009, 30.037],
                                                   [122.009, 30.039], [122.001, 30.039], [122.001, 30.031]]]}
    with transaction(sessionmaker) as s:
        h = hz.create_hazard(s, {"type": "flood", "title": "低洼易涝区", "geometry": poly, "grade": "major"},
                             SYSTEM, now=T0)
        c = hz.create_hazard(s, {"type": "geological", "title": "边坡", "geometry": json.dumps(c_shape)}, SYSTEM,
                             now=T0)
        assert h.geom_kind == "area" and h.cell_id == area(s, OTHER_CELL).id
        assert (h.lon, h.lat) == pytest.approx((122.045, 30.035))
        assert h.responsible_worker_id == city["w2"].id
        import shapely

        shape = shapely.from_geojson(json.dumps(c_shape))
        assert not shape.covers(shape.centroid) and shape.covers(shapely.Point(c.lon, c.lat))
        assert hz.hazard_geometry_geojson(s, h.id)["type"] == "Polygon"


@pytest.mark.parametrize("data, field, needle", [
    ({"type": "nuclear", "title": "x", "lon": 122.005, "lat": 30.035}, "type", "unknown hazard type 'nuclear'"),
    ({"type": "fire", "lon": 122.005, "lat": 30.035}, "title", "title is required"),
    ({"type": "fire", "title": "x"}, "location", "lon and lat, or a geometry"),
    ({"type": "fire", "title": "x", "lon": 121.5, "lat": 30.035}, "location", "outside every cell"),
    ({"type": "fire", "title": "x", "lon": 30.035, "lat": 122.005}, "geometry", "swapped"),
    ({"type": "fire", "title": "x", "grade": "huge", "lon": 122.005, "lat": 30.035}, "grade", "general, major"),
    ({"type": "fire", "title": "x", "grade": "较大", "lon": 122.005, "lat": 30.035}, "grade", "an accident grade"),
    ({"type": "fire", "title": "x", "grade": "特别重大", "lon": 122.005, "lat": 30.035}, "grade", "安监总局令第16号"),
    ({"type": "fire", "title": "x", "severity": "high", "lon": 122.005, "lat": 30.035}, "severity", "give grade"),
    ({"type": "fire", "title": "x", "accident_grade": "huge", "lon": 122.005, "lat": 30.035}, "accident_grade",
     "especially_major"),
    ({"type": "fire", "title": "x", "geometry": {"type": "LineString", "coordinates": [[122, 30], [122.01, 30.01]]}},
     "geometry", "not a LineString"),
    ({"type": "fire", "title": "x", "geometry": "POLYGON((122.001 30.031, 122.009 30.039, 122.009 30.031, "
                                                "122.001 30.039, 122.001 30.031))"}, "geometry", "not a valid polygon"),
])
def test_bad_hazards_are_refused_with_a_message(sessionmaker, city, data, field, needle):
    with transaction(sessionmaker) as s:
        with pytest.raises(hz.HazardError) as e:
            hz.create_hazard(s, data, SYSTEM, now=T0)
        assert e.value.field == field and needle in e.value.message
        assert s.scalar(select(func.count(Hazard.id))) == 0


def test_gcj02_input_is_converted(sessionmaker, city):
    from gridmap.geo.coords import wgs84_to_gcj02

    gx, gy = wgs84_to_gcj02(122.005, 30.035)
    with transaction(sessionmaker) as s:
        h = hz.create_hazard(s, point((float(gx), float(gy)), crs="gcj02"), SYSTEM, now=T0)
        assert (h.lon, h.lat) == pytest.approx(IN_CELL, abs=1e-7)


# ----------------------------------------------------------------------------- life-cycle

def test_rectify_verify_close_with_history(sessionmaker, city):
    with transaction(sessionmaker) as s:
        hid = hz.create_hazard(s, point(), SYSTEM, now=T0).id
        head, head_actor = make_user(s, "head1", "head", area_code="330999001001")
    w_actor = worker_actor(city["w"])
    with transaction(sessionmaker) as s:
        with pytest.raises(hz.HazardError, match="needs a comment"):
            hz.apply_action(s, hid, "rectify", w_actor, now=T0)
        hz.apply_action(s, hid, "rectify", w_actor, comment="已清理杂物", now=T0 + dt.timedelta(days=2))
    with transaction(sessionmaker) as s:
        with pytest.raises(hz.HazardError) as e:  # the rectifier may not verify, even as a supervisor
            hz.apply_action(s, hid, "verify", Actor(name="张伟", role="head", worker_id=city["w"].id,
                                                    area_id=area(s, "330999001001").id), now=T0)
        assert e.value.status == 403 and "核查人不能是整改人" in e.value.message
        with pytest.raises(hz.HazardError) as e:
            hz.apply_action(s, hid, "verify", worker_actor(city["w2"]), now=T0)
        assert e.value.status == 404  # another street's worker does not even see it
        with pytest.raises(hz.HazardError) as e:
            hz.apply_action(s, hid, "close", head_actor, now=T0)
        assert e.value.status == 409 and "allowed only from verified" in e.value.message
        hz.apply_action(s, hid, "verify", head_actor, data={"passed": False}, comment="仍有杂物",
                        now=T0 + dt.timedelta(days=3))
    with transaction(sessionmaker) as s:
        h = s.get(Hazard, hid)
        assert (h.status, h.rework_count, h.rectified_at) == ("open", 1, None)
        hz.apply_action(s, hid, "rectify", w_actor, comment="再次清理", now=T0 + dt.timedelta(days=4))
        hz.apply_action(s, hid, "verify", head_actor, now=T0 + dt.timedelta(days=5))
        with pytest.raises(hz.HazardError) as e:
            hz.apply_action(s, hid, "close", head_actor, expected_version=1, now=T0)
        assert e.value.status == 409
        h = hz.apply_action(s, hid, "close", head_actor, comment="销号", now=T0 + dt.timedelta(days=6))
        assert h.status == "closed" and h.closed_at == T0 + dt.timedelta(days=6)
        d = hz.hazard_dicts(s, [h], with_history=True)[0]
    assert [(e["action"], e["to_status"]) for e in d["history"]] == [
        ("register", "open"), ("rectify", "rectified"), ("verify", "open"), ("rectify", "rectified"),
        ("verify", "verified"), ("close", "closed")]
    assert d["history"][1]["data"] == {"on_time": True}


def test_scope_of_hazard_reads(sessionmaker, city):
    with transaction(sessionmaker) as s:
        hz.create_hazard(s, point(), SYSTEM, now=T0)
        hz.create_hazard(s, point(IN_OTHER, title="东街隐患"), SYSTEM, now=T0)
        _, east = make_user(s, "east", "street", area_code="330999002")
    with sessionmaker() as s:
        assert [h.title for h in hz.list_hazards(s, east)[0]] == ["东街隐患"]
        assert [h.title for h in hz.list_hazards(s, worker_actor(city["w"]))[0]] == ["楼道堆放杂物"]
        assert hz.list_hazards(s, SYSTEM)[1] == 2
        assert hz.list_hazards(s, SYSTEM, filters={"area": "330999002001"})[1] == 1
        assert hz.list_hazards(s, SYSTEM, filters={"overdue": "1"}, now=T0 + dt.timedelta(days=8))[1] == 2
        assert hz.list_hazards(s, Actor(name="d", role="department", department_id=1))[1] == 0
        with pytest.raises(hz.HazardError, match="unknown filter"):
            hz.list_hazards(s, SYSTEM, filters={"colour": "red"})


def test_link_a_case(sessionmaker, city):
    from tests.casehelpers import make_case, make_category

    with transaction(sessionmaker) as s:
        cat = make_category(s, "hazard", kind="hazard")
        case = make_case(s, "reported", category=cat)
        h = hz.create_hazard(s, point(case_ids=[case.id]), SYSTEM, now=T0)
        h2 = hz.create_hazard(s, point(title="另一处"), SYSTEM, now=T0)
        hz.link_case(s, h2.id, case.id, SYSTEM)
        with pytest.raises(hz.HazardError, match="no case 999"):
            hz.link_case(s, h2.id, 999, SYSTEM)
        d = hz.hazard_dicts(s, [h, h2])
    assert d[0]["case_ids"] == [case.id] and d[1]["case_ids"] == [case.id]


# ----------------------------------------------------------------------------- inspections

@pytest.mark.parametrize("interval, start, end, needle", [
    (0, "2026-03-01", None, "every 0 days makes no sense"),
    (-7, "2026-03-01", None, "every -7 days makes no sense"),
    (7, "2026-03-01", "2026-02-01", "ends (2026-02-01) before it starts (2026-03-01)"),
    (2.5, "2026-03-01", None, "whole number"),
    ("weekly", "2026-03-01", None, "whole number"),
    (7, "March", None, "start_date must be a date"),
])
def test_a_schedule_that_makes_no_sense_is_refused(sessionmaker, city, interval, start, end, needle):
    with transaction(sessionmaker) as s:
        hid = hz.create_hazard(s, point(), SYSTEM, now=T0).id
        with pytest.raises(insp.InspectionError) as e:
            insp.create_schedule(s, SYSTEM, hazard_id=hid, interval_days=interval, start_date=start, end_date=end)
        assert needle in e.value.message and e.value.status == 400


def test_the_database_refuses_a_bad_schedule_too(sessionmaker, city):
    from sqlalchemy.exc import IntegrityError

    from gridmap.hazards.models import InspectionSchedule

    with sessionmaker() as s:
        s.add(InspectionSchedule(cell_id=area(s, CELL).id, interval_days=0, start_date=dt.date(2026, 3, 1),
                                 active=True))
        with pytest.raises(IntegrityError):
            s.flush()


def test_generate_due_is_idempotent_and_assigns_the_cells_worker(sessionmaker, city):
    with transaction(sessionmaker) as s:
        hid = hz.create_hazard(s, point(), SYSTEM, now=T0).id
        sch = insp.create_schedule(s, SYSTEM, hazard_id=hid, interval_days=7, start_date="2026-03-02",
                                   end_date="2026-04-30")
        patrol = insp.create_schedule(s, SYSTEM, cell_code=OTHER_CELL, interval_days=30, start_date="2026-03-20")
        assert sch.interval_days == 7 and patrol.title.startswith("巡查 330999002001001")
    now = dt.datetime(2026, 3, 17, 2, 0, tzinfo=UTC)  # 17 March, 10:00 Shanghai: 15 days after the start
    with transaction(sessionmaker) as s:
        rep = insp.generate_due(s, now)
        assert (rep.created, rep.schedules) == (1, 1)  # only the latest due date (16 March); patrol not started
        assert insp.generate_due(s, now).created == 0
        assert insp.generate_due(s, now + dt.timedelta(hours=5)).created == 0
        t = s.scalar(select(InspectionTask))
        assert (t.due_date, t.worker_id, t.hazard_id) == (dt.date(2026, 3, 16), city["w"].id, hid)
    later = dt.datetime(2026, 4, 1, 2, 0, tzinfo=UTC)
    with transaction(sessionmaker) as s:
        rep = insp.generate_due(s, later)
        # 23 and 30 March for the hazard; 20 March for the patrol (its first due date)
        assert rep.created == 3
        due = insp.list_tasks(s, SYSTEM, due_only=True, now=later)
        assert [(d["due_date"], d["overdue"]) for d in due] == [
            ("2026-03-16", True), ("2026-03-20", True), ("2026-03-23", True), ("2026-03-30", True)]
        assert due[1]["worker"]["code"] == "W002"
        mine = insp.list_tasks(s, worker_actor(city["w"]), now=later)
        assert {d["hazard_id"] for d in mine} == {hid}
    with transaction(sessionmaker) as s:
        tid = insp.list_tasks(s, SYSTEM, now=later)[0]["id"]
        with pytest.raises(insp.InspectionError, match="no inspection task"):  # out of scope: as if absent
            insp.complete_task(s, tid, worker_actor(city["w2"]), result="ok")
        backup = make_worker(s, "W003", responsibility="backup")
        with pytest.raises(insp.InspectionError, match="only the assigned worker"):
            insp.complete_task(s, tid, worker_actor(backup), result="ok")
    with transaction(sessionmaker) as s:
        with pytest.raises(insp.InspectionError, match="needs a note"):
            insp.complete_task(s, tid, worker_actor(city["w"]), result="issue")
        t = insp.complete_task(s, tid, worker_actor(city["w"]), result="ok", now=later)
        assert t.done_at == later and t.done_by == "张伟"
        with pytest.raises(insp.InspectionError, match="recorded already"):
            insp.complete_task(s, tid, worker_actor(city["w"]), result="ok")
    with transaction(sessionmaker) as s:  # a closed hazard needs no more inspections
        s.execute(text("UPDATE hazards SET status = 'closed'"))
        rep = insp.generate_due(s, dt.datetime(2026, 4, 20, 2, 0, tzinfo=UTC))
        assert {t.schedule_id for t in s.scalars(select(InspectionTask).where(
            InspectionTask.id.in_(rep.task_ids)))} == {patrol.id}


# ----------------------------------------------------------------------------- import

def test_import_csv_with_chinese_headers_and_geojson_areas(sessionmaker, city, tmp_path):
    csv_path = tmp_path / "h.csv"
    csv_path.write_bytes(("隐患类型,隐患名称,隐患等级,经度,纬度,责任单位,编号,发现时间\n"
                          "消防,楼道堆物,一般,122.005,30.035,物业,A1,2026-03-01\n"
                          "gas,燃气表老化,重大事故隐患,122.045,30.035,燃气公司,A2,2026-03-02T09:00\n").encode("gbk"))
    gj = tmp_path / "h.geojson"
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"type": "flood", "title": "易涝点", "external_id": "G1"},
         "geometry": {"type": "Polygon", "coordinates": [[[122.041, 30.031], [122.049, 30.031], [122.049, 30.039],
                                                          [122.041, 30.031]]]}}]}), encoding="utf-8")
    with transaction(sessionmaker) as s:
        rep = hz.import_file(s, csv_path, SYSTEM, now=T0)
        assert rep.ok and (rep.rows, rep.created) == (2, 2), rep.errors
        rep2 = hz.import_file(s, gj, SYSTEM, now=T0)
        assert rep2.ok and rep2.created == 1
        again = hz.import_file(s, csv_path, SYSTEM, now=T0)
        assert (again.created, again.skipped) == (0, 2)
    with sessionmaker() as s:
        rows = {h.external_id: h for h in s.scalars(select(Hazard))}
        assert rows["A1"].found_at == dt.datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
        assert rows["A2"].grade == "major" and rows["A2"].responsible_unit == "燃气公司"
        assert rows["G1"].geom_kind == "area"


def test_import_writes_nothing_when_a_row_is_bad(sessionmaker, city, tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("type,title,lon,lat\nfire,好的,122.005,30.035\nfire,坏的,121.0,30.0\nxx,未知,122.005,30.035\n",
                 encoding="utf-8")
    with transaction(sessionmaker) as s:
        rep = hz.import_file(s, p, SYSTEM, now=T0)
    assert not rep.ok and len(rep.errors) == 2
    assert "bad.csv row 3: location:" in rep.errors[0] and "row 4: type:" in rep.errors[1]
    with sessionmaker() as s:
        assert s.scalar(select(func.count(Hazard.id))) == 0


# ----------------------------------------------------------------------------- API

@pytest.fixture
def api(hzapp, sessionmaker, city):
    with transaction(sessionmaker) as s:
        make_user(s, "city1", "city")
        make_user(s, "east", "street", area_code="330999002")
        make_user(s, "zw", "worker", worker=city["w"])
        make_user(s, "head1", "head", area_code="330999001001")
        tokens = {u: make_token(s, u) for u in ("city1", "east", "zw", "head1")}
    return hzapp.test_client(), tokens


def test_api_create_list_get_and_actions(api):
    client, tok = api
    r = client.post("/api/v1/hazards", json=point(grade="重大", accident_grade="较大"), headers=auth(tok["zw"]))
    assert r.status_code == 201, r.get_json()
    h = r.get_json()
    assert h["cell"]["code"] == CELL and (h["grade"], h["grade_name"], h["accident_grade"]) == ("major", "重大", "larger") and h["responsible_worker"]["code"] == "W001"
    assert h["history"][0]["action"] == "register"
    r = client.post("/api/v1/hazards", json={"type": "fire"}, headers=auth(tok["zw"]))
    assert r.status_code == 400 and r.get_json()["field"] == "title"
    assert client.get("/api/v1/hazards", headers=auth(tok["east"])).get_json()["total"] == 0
    assert client.get(f"/api/v1/hazards/{h['id']}", headers=auth(tok["east"])).status_code == 404
    got = client.get(f"/api/v1/hazards/{h['id']}", headers=auth(tok["city1"])).get_json()
    assert got["geometry"] == {"type": "Point", "coordinates": list(IN_CELL)}
    lst = client.get("/api/v1/hazards?status=open&area=330999001", headers=auth(tok["city1"])).get_json()
    assert lst["total"] == 1 and lst["items"][0]["number"] == h["number"]
    assert client.get("/api/v1/hazards?colour=red", headers=auth(tok["city1"])).status_code == 400
    r = client.post(f"/api/v1/hazards/{h['id']}/rectify", json={"comment": "已整改"}, headers=auth(tok["zw"]))
    assert r.status_code == 200 and r.get_json()["status"] == "rectified"
    r = client.post(f"/api/v1/hazards/{h['id']}/verify", json={"passed": True}, headers=auth(tok["zw"]))
    assert r.status_code == 403
    r = client.post(f"/api/v1/hazards/{h['id']}/verify", json={"passed": True, "version": 2},
                    headers=auth(tok["head1"]))
    assert r.status_code == 200 and r.get_json()["status"] == "verified"
    r = client.post(f"/api/v1/hazards/{h['id']}/close", json={}, headers=auth(tok["head1"]))
    assert r.get_json()["status"] == "closed"
    r = client.post(f"/api/v1/hazards/{h['id']}/close", json={}, headers=auth(tok["head1"]))
    assert r.status_code == 409
    assert client.get("/api/v1/hazards").status_code == 401
    types = client.get("/api/v1/hazards/types", headers=auth(tok["zw"])).get_json()["types"]
    assert any(t["code"] == "self_built" and t["name"] == "自建房" for t in types)


def test_api_geo_bbox_is_scoped_and_capped(api):
    client, tok = api
    area_poly = {"type": "Polygon", "coordinates": [[[122.041, 30.031], [122.049, 30.031], [122.049, 30.039],
                                                     [122.041, 30.031]]]}
    for body in (point(), point(IN_OTHER, title="东"), {"type": "flood", "title": "区域", "geometry": area_poly}):
        assert client.post("/api/v1/hazards", json=body, headers=auth(tok["city1"])).status_code == 201
    fc = client.get("/api/v1/hazards/geo?bbox=122.0,30.0,122.08,30.04", headers=auth(tok["city1"])).get_json()
    assert fc["type"] == "FeatureCollection" and fc["count"] == 3 and not fc["truncated"]
    kinds = sorted(f["geometry"]["type"] for f in fc["features"])
    assert kinds == ["Point", "Point", "Polygon"]
    west = client.get("/api/v1/hazards/geo?bbox=122.0,30.03,122.02,30.04", headers=auth(tok["city1"])).get_json()
    assert [f["properties"]["title"] for f in west["features"]] == ["楼道堆放杂物"]
    east = client.get("/api/v1/hazards/geo?bbox=122.0,30.0,122.08,30.04", headers=auth(tok["east"])).get_json()
    assert {f["properties"]["title"] for f in east["features"]} == {"东", "区域"}
    capped = client.get("/api/v1/hazards/geo?bbox=122.0,30.0,122.08,30.04&limit=1",
                        headers=auth(tok["city1"])).get_json()
    assert capped["count"] == 1 and capped["truncated"] and capped["total"] == 3
    assert client.get("/api/v1/hazards/geo?bbox=1,2", headers=auth(tok["city1"])).status_code == 400


def test_api_schedules_and_tasks(api, sessionmaker):
    client, tok = api
    h = client.post("/api/v1/hazards", json=point(), headers=auth(tok["city1"])).get_json()
    r = client.post(f"/api/v1/hazards/{h['id']}/schedules", json={"interval_days": 0}, headers=auth(tok["head1"]))
    assert r.status_code == 400 and "makes no sense" in r.get_json()["error"]
    r = client.post(f"/api/v1/hazards/{h['id']}/schedules", json={"interval_days": 7}, headers=auth(tok["zw"]))
    assert r.status_code == 403
    r = client.post(f"/api/v1/hazards/{h['id']}/schedules", json={}, headers=auth(tok["head1"]))
    assert r.status_code == 201 and r.get_json()["interval_days"] == 30  # the fire type's interval
    with transaction(sessionmaker) as s:
        insp.generate_due(s)
    tasks = client.get("/api/v1/hazards/inspections?due=1", headers=auth(tok["zw"])).get_json()
    assert tasks["count"] == 1 and tasks["items"][0]["worker"]["code"] == "W001"
    tid = tasks["items"][0]["id"]
    assert client.get("/api/v1/hazards/inspections?due=1", headers=auth(tok["east"])).get_json()["count"] == 0
    r = client.post(f"/api/v1/hazards/inspections/{tid}/done", json={"result": "ok"}, headers=auth(tok["zw"]))
    assert r.status_code == 200 and r.get_json()["result"] == "ok"
    assert client.get("/api/v1/hazards/inspections?due=1", headers=auth(tok["zw"])).get_json()["count"] == 0


# ----------------------------------------------------------------------------- CLI

def test_cli_import_list_and_inspections(hzapp, sessionmaker, city, tmp_path):
    runner = hzapp.test_cli_runner()
    p = tmp_path / "h.csv"
    p.write_text("type,title,lon,lat,grade\nfire,楼道堆物,122.005,30.035,重大\ngas,燃气,122.045,30.035,一般\n",
                 encoding="utf-8")
    r = runner.invoke(args=["hazards", "import", str(p)])
    assert r.exit_code == 0, r.output
    assert "2 rows: imported 2" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("type,title,lon,lat\nfire,x,0,0\n", encoding="utf-8")
    r = runner.invoke(args=["hazards", "import", str(bad)])
    assert r.exit_code == 1 and "outside every cell" in r.output
    r = runner.invoke(args=["hazards", "list", "--area", "330999001"])
    assert r.exit_code == 0 and "楼道堆物" in r.output and "燃气" not in r.output and "1 of 1" in r.output
    r = runner.invoke(args=["hazards", "list", "--grade", "major"])
    assert r.exit_code == 0 and "楼道堆物" in r.output and "重大" in r.output and "燃气" not in r.output
    r = runner.invoke(args=["hazards", "list", "--grade", "较大"])
    assert r.exit_code == 1 and "accident grade" in r.output
    r = runner.invoke(args=["hazards", "list", "--area", "999"])
    assert r.exit_code == 1 and "no area with code '999'" in r.output
    with sessionmaker() as s:
        number = s.scalar(select(Hazard.number).where(Hazard.title == "楼道堆物"))
    r = runner.invoke(args=["hazards", "schedule", number, "--every", "0"])
    assert r.exit_code == 1 and "makes no sense" in r.output
    r = runner.invoke(args=["hazards", "schedule", number, "--every", "7", "--start", "2026-01-01",
                            "--end", "2025-12-01"])
    assert r.exit_code == 1 and "before it starts" in r.output
    r = runner.invoke(args=["hazards", "schedule", number, "--every", "7"])
    assert r.exit_code == 0 and "every 7 days" in r.output
    r = runner.invoke(args=["hazards", "inspections", "--generate", "--due"])
    assert r.exit_code == 0 and "1 inspection tasks due" in r.output and "W001 张伟" in r.output
    r = runner.invoke(args=["hazards", "inspections", "--generate", "--due", "--json"])
    assert r.exit_code == 0
    assert json.loads(r.stdout.strip().splitlines()[-1])["count"] == 1
