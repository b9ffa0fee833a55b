"""Case intake on the test city: points in every CRS, snapping, addresses, the manual queue and
placement, refusals that write nothing, duplicate suggestions. Real PostGIS and SpatiaLite."""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

import numpy as np
import pytest
from sqlalchemy import func, select

from gridmap.accounts.actor import Actor
from gridmap.boundaries.lookup import get_index
from gridmap.db import transaction
from gridmap.geo import coords
from gridmap.incidents.addresses import import_addresses_csv
from gridmap.incidents.duplicates import haversine_m, suggest_duplicates
from gridmap.incidents.intake import IntakeError, case_number, create_case, place_case
from gridmap.incidents.models import Case, CaseEvent
from tests.casehelpers import CELL, OTHER_CELL, T0, make_category, make_department, make_user, make_worker
from tests.conftest import city_features

# a point in CELL (122.00–122.02 E, 30.03–30.04 N) whose GCJ-02 coordinates, read as WGS84, fall
# in the next cell east: only a real conversion lands it right
P = (122.018, 30.031)
P_OTHER = (122.05, 30.035)
M_LAT = 1 / 110_574.0


@dataclass
class World:
    cat: int
    cat_code: str
    dept_cat_code: str
    w1: int
    w3: int
    w1_actor: Actor
    city: Actor
    street: Actor


@pytest.fixture
def world(sessionmaker, loaded_city) -> World:
    with transaction(sessionmaker) as s:
        parent = make_category(s, "test", limit=(3, "natural_days"))
        cat = make_category(s, "test.litter", name="暴露垃圾", parent=parent, limit=None)
        make_category(s, "test.manhole", name="井盖缺失", parent=parent)
        dept = make_department(s, "labour", "劳动保障监察大队")
        make_category(s, "test.wages", name="欠薪", department=dept)
        w1 = make_worker(s, "W1", cell_code=CELL, name="张伟")
        w3 = make_worker(s, "W3", cell_code=OTHER_CELL, name="王芳")
        _, a1 = make_user(s, "zhangwei", "worker", worker=w1)
        _, city = make_user(s, "centre", "city")
        _, street = make_user(s, "west", "street", area_code=CELL[:9])
        return World(cat.id, "test.litter", "test.wages", w1.id, w3.id, a1, city, street)


def report(lon=P[0], lat=P[1], crs=None, **extra):
    loc = {"lon": lon, "lat": lat}
    if crs:
        loc["crs"] = crs
    return {"category": "test.litter", "description": "路边有暴露垃圾", "location": loc, **extra}


def events(s, case_id):
    return [e.action for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq))]


def count_cases(s):
    return s.scalar(select(func.count(Case.id))), s.scalar(select(func.count(CaseEvent.id)))


@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:4550"])
def test_point_in_each_crs_lands_in_the_right_cell_and_worker(sessionmaker, world, crs):
    x, y = (float(v) for v in coords.from_wgs84(P[0], P[1], crs))
    with transaction(sessionmaker) as s:
        case = create_case(s, report(x, y, crs), world.w1_actor, source="patrol", now=T0)
        cid = case.id
    with sessionmaker() as s:
        c = s.get(Case, cid)
        assert c.cell_id is not None
        from gridmap.boundaries.models import Area
        assert s.get(Area, c.cell_id).code == CELL
        assert s.get(Area, c.community_id).code == CELL[:12]
        assert s.get(Area, c.street_id).code == CELL[:9]
        assert s.get(Area, c.district_id).code == CELL[:6]
        assert abs(c.lon - P[0]) < 1e-6 and abs(c.lat - P[1]) < 1e-6
        assert c.placement == "point" and not c.snapped and c.distance_m == 0
        assert c.assignee_worker_id == world.w1 and c.assignee_level == "cell"
        assert c.route_reason == f"cell {CELL}: primary worker W1 张伟"
        # auto-dispatched: the worker has it at once, with its deadline (3 natural days, inherited)
        assert c.status == "dispatched" and c.filed_at == T0 and c.dispatched_at == T0
        assert c.deadline_at == T0 + dt.timedelta(days=3)
        assert c.number == case_number(T0, c.id) == f"20260302-{c.id:06d}"
        assert events(s, cid) == ["report", "file", "dispatch"]
        first = s.scalar(select(CaseEvent).where(CaseEvent.case_id == cid, CaseEvent.seq == 1))
        data = json.loads(first.data)
        assert data["routing"]["worker_id"] == world.w1 and data["location"]["cell"] == CELL
        assert data["location"]["input_crs"] == str(coords.parse_crs(crs))
        if crs == "gcj02":  # without the conversion this report would have gone to another cell
            idx = get_index(s)
            raw = idx.locate([x], [y], "wgs84", 0)
            assert idx.codes[raw.cell[0]] != CELL


def test_number_uses_the_shanghai_date():
    late = dt.datetime(2026, 3, 1, 17, 30, tzinfo=dt.timezone.utc)  # 01:30 on 2 March in Shanghai
    assert case_number(late, 42) == "20260302-000042"
    assert case_number(late, 1234567) == "20260302-1234567"


def test_snapped_point_says_so_in_the_reason(sessionmaker, world):
    lat = 30.04 + 42 * M_LAT  # 42 m north of the city's north edge, above CELL
    with transaction(sessionmaker) as s:
        c = create_case(s, report(122.01, lat), world.w1_actor, source="patrol", now=T0)
        assert c.snapped and 41 < c.distance_m < 43
        assert c.assignee_worker_id == world.w1
        assert re.search(r"; snapped 4[12] m to cell " + CELL + "$", c.route_reason), c.route_reason


def test_category_with_a_department_goes_there(sessionmaker, world):
    with transaction(sessionmaker) as s:
        c = create_case(s, {**report(), "category": world.dept_cat_code}, world.w1_actor, source="patrol", now=T0)
        assert c.assignee_level == "department" and c.assignee_department_id is not None
        assert c.assignee_worker_id is None and "labour" in c.route_reason
        assert c.status == "dispatched"


def test_without_auto_dispatch_the_case_stays_reported_but_routed(sessionmaker, world):
    with transaction(sessionmaker) as s:
        c = create_case(s, report(urgent=True, reporter={"name": "李四", "phone": "13812341234"}, title="垃圾"),
                        world.w1_actor, source="resident", now=T0, auto_dispatch=False)
        assert c.status == "reported" and c.assignee_worker_id == world.w1
        assert c.urgent and c.reporter_phone == "13812341234" and c.reporter_user_id == world.w1_actor.user_id
        assert events(s, c.id) == ["report"]


def test_nobody_on_duty_falls_back_and_is_not_dropped(sessionmaker, world):
    cell = "330999001002001"  # a cell without a worker, head, street or district staff
    with transaction(sessionmaker) as s:
        from gridmap.boundaries.models import Area
        pt = next(f for f in city_features()["cell"] if f["code"] == cell)["geometry"].representative_point()
        c = create_case(s, report(pt.x, pt.y), world.w1_actor, source="patrol", now=T0)
        assert s.get(Area, c.cell_id).code == cell
        assert c.assignee_worker_id is None and c.assignee_level == "district"
        assert "属地兜底" in c.route_reason
        assert c.status == "reported"  # waits in the district queue, nobody to dispatch to


# ----------------------------------------------------------------------------- refusals

BAD = [
    ({"category": "test.litterr"}, "category", "did you mean test.litter"),
    ({"category": None}, "category", "required"),
    ({"description": None}, "description", "description is required"),
    ({"description": "   "}, "description", "description is required"),
    ({"description": "x" * 5001}, "description", "at most 5000"),
    ({"location": {"lon": 121.5, "lat": 30.03}}, "location", "outside every cell of the city"),
    ({"location": {"lon": "abc", "lat": 30.03}}, "location.lon", "must be a number"),
    ({"location": {"lon": 122.01, "lat": None}}, "location.lat", "must be a number"),
    ({"location": {"lon": True, "lat": 30.03}}, "location.lon", "must be a number"),
    ({"location": {"lon": 30.031, "lat": 122.018}}, "location", "look swapped"),
    ({"location": {"lon": 122.01, "lat": 95}}, "location", "out of range"),
    ({"location": {"lon": 122.01, "lat": 30.03, "crs": "mars"}}, "location.crs", "unknown coordinate system"),
    ({"location": {"lon": 122.01, "lat": 30.03, "crs": "EPSG:99999"}}, "location.crs", "EPSG:99999"),
    ({"location": None}, "location", "location is required"),
    ({"location": "122.01,30.03"}, "location", "must be an object"),
    ({"location": {"crs": "wgs84"}}, "location", "lon and lat, or an address"),
    ({"urgent": "maybe"}, "urgent", "true or false"),
    ({"reporter": {"phone": "call me"}}, "reporter.phone", "not a phone number"),
    ({"reporter": "张三"}, "reporter", "must be an object"),
    ({"title": ["a"]}, "title", "must be text"),
]


@pytest.mark.parametrize("change, field, needle", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_reports_name_the_field_and_write_nothing(sessionmaker, world, change, field, needle):
    data = {**report(), **change}
    with sessionmaker() as s:
        with pytest.raises(IntakeError) as ei:
            create_case(s, data, world.w1_actor, source="patrol", now=T0)
        assert ei.value.field == field
        assert needle in ei.value.message
        assert 400 <= ei.value.status < 500
        assert count_cases(s) == (0, 0)  # not even pending in the session
        s.commit()
    with sessionmaker() as s:
        assert count_cases(s) == (0, 0)


def test_same_external_id_twice_is_refused(sessionmaker, world):
    with transaction(sessionmaker) as s:
        first = create_case(s, report(external_id="12345-001"), world.w1_actor, source="hotline", now=T0)
    with sessionmaker() as s:
        with pytest.raises(IntakeError) as ei:
            create_case(s, report(external_id="12345-001"), world.w1_actor, source="hotline", now=T0)
        assert ei.value.field == "external_id" and ei.value.status == 409 and first.number in ei.value.message
        # another source may use the same id
        create_case(s, report(external_id="12345-001"), world.w1_actor, source="patrol", now=T0)
        s.commit()
        assert count_cases(s)[0] == 2


# ----------------------------------------------------------------------------- addresses

ADDRESSES = """code,address,lon,lat
A1,浙江省舟山市定海区解放西路123号,122.015,30.035
A2,浙江省舟山市定海区解放西路125号,122.055,30.035
A3,浙江省舟山市定海区人民北路8号,122.011,30.032
"""


@pytest.fixture
def addresses(sessionmaker, world, tmp_path):
    path = tmp_path / "addr.csv"
    path.write_text(ADDRESSES, encoding="utf-8")
    with transaction(sessionmaker) as s:
        rep = import_addresses_csv(s, path)
        assert rep["inserted"] == 3 and not rep["bad"]
    return path


def test_address_intake_uses_the_register(sessionmaker, addresses, world):
    with transaction(sessionmaker) as s:
        c = create_case(s, {"category": "test.litter", "description": "垃圾",
                            "location": {"address": "定海区解放西路一百二十三号"}},
                        world.w1_actor, source="hotline", now=T0)
        assert c.placement == "address" and c.address_score >= 0.8
        assert (c.lon, c.lat) == (122.015, 30.035)
        assert c.address == "定海区解放西路一百二十三号"
        from gridmap.registry.models import Address
        assert s.get(Address, c.address_id).code == "A1"
        assert c.assignee_worker_id == world.w1 and "by address (score" in c.route_reason
        assert c.status == "dispatched"
        # a top-level address works too; a close typo still finds the right door
        c2 = create_case(s, {"category": "test.litter", "description": "垃圾", "address": "解放西路１２５号"},
                         world.w1_actor, source="hotline", now=T0)
        assert s.get(Address, c2.address_id).code == "A2" and c2.assignee_worker_id == world.w3


def test_address_below_threshold_goes_to_the_queue_and_is_placed_by_hand(sessionmaker, addresses, world):
    with transaction(sessionmaker) as s:
        c = create_case(s, {"category": "test.litter", "description": "垃圾",
                            "location": {"address": "解放西路"}}, world.w1_actor, source="hotline", now=T0)
        cid = c.id
        assert c.placement == "queue" and c.cell_id is None and c.lon is None
        assert c.address_score is not None and c.address_score < 0.8
        assert c.assignee_level == "unroutable" and c.assignee_worker_id is None
        assert c.route_reason == "address below confidence 0.8: manual placement needed"
        assert c.status == "reported" and events(s, cid) == ["report"]
        c3 = create_case(s, {"category": "test.litter", "description": "垃圾",
                             "location": {"address": "普陀区沈家门街道东河路88号"}}, world.w1_actor,
                         source="hotline", now=T0)
        assert c3.placement == "queue"
    # a worker cannot see (and so cannot place) a case without a cell
    with sessionmaker() as s:
        with pytest.raises(IntakeError) as ei:
            place_case(s, cid, P[0], P[1], "wgs84", world.w1_actor)
        assert ei.value.status == 404
    # bad coordinates from the supervisor are refused, nothing changes
    with sessionmaker() as s:
        with pytest.raises(IntakeError) as ei:
            place_case(s, cid, 121.0, 30.0, "wgs84", world.city)
        assert ei.value.field == "location" and "outside every cell" in ei.value.message
        with pytest.raises(IntakeError) as ei:
            place_case(s, cid, P[0], P[1], "wgs84", world.city, expected_version=7)
        assert ei.value.status == 409
        s.rollback()
        assert s.get(Case, cid).placement == "queue" and s.get(Case, cid).version == 1
    x, y = (float(v) for v in coords.from_wgs84(P[0], P[1], "gcj02"))
    with transaction(sessionmaker) as s:
        c = place_case(s, cid, x, y, "gcj02", world.city, comment="电话核实位置", now=T0 + dt.timedelta(hours=1))
        assert c.placement == "manual" and c.assignee_worker_id == world.w1
        assert c.status == "dispatched" and c.input_crs == "gcj02"
        assert events(s, cid) == ["report", "place", "file", "dispatch"]
        ev = s.scalar(select(CaseEvent).where(CaseEvent.case_id == cid, CaseEvent.action == "place"))
        assert ev.comment == "电话核实位置" and ev.actor_user_id == world.city.user_id
        assert json.loads(ev.data)["before"]["placement"] == "queue"
    # once dispatched it is no longer placed by hand
    with sessionmaker() as s:
        with pytest.raises(IntakeError) as ei:
            place_case(s, cid, P[0], P[1], "wgs84", world.city)
        assert ei.value.status == 409


def test_a_worker_may_not_place_even_in_scope(sessionmaker, world):
    with transaction(sessionmaker) as s:
        c = create_case(s, report(), world.w1_actor, source="patrol", now=T0, auto_dispatch=False)
    with sessionmaker() as s:
        with pytest.raises(IntakeError) as ei:
            place_case(s, c.id, P_OTHER[0], P_OTHER[1], None, world.w1_actor)
        assert ei.value.status == 403


# ----------------------------------------------------------------------------- duplicates

def _offset(lon, lat, north_m=0.0, east_m=0.0):
    return lon + east_m / (111_320.0 * np.cos(np.radians(lat))), lat + north_m / 111_320.0


def test_duplicates_suggested_by_category_distance_window_and_status(sessionmaker, world):
    with transaction(sessionmaker) as s:
        a = create_case(s, report(), world.w1_actor, source="patrol", now=T0)
        near = _offset(*P, north_m=120)
        b = create_case(s, report(*near), world.w1_actor, source="patrol", now=T0 + dt.timedelta(hours=1))
        far = _offset(*P, east_m=400)
        create_case(s, report(*far), world.w1_actor, source="patrol", now=T0)
        create_case(s, {**report(), "category": "test.manhole"}, world.w1_actor, source="patrol", now=T0)
        old = create_case(s, report(), world.w1_actor, source="patrol", now=T0 - dt.timedelta(days=8))
        closed = create_case(s, report(), world.w1_actor, source="patrol", now=T0, auto_dispatch=False)
        from gridmap.incidents.lifecycle import apply_action
        apply_action(s, closed.id, "reject", world.city, comment="无效", now=T0)
        got = suggest_duplicates(s, category_id=world.cat, lon=P[0], lat=P[1], at=T0 + dt.timedelta(hours=2))
        assert [c.id for c, _ in got] == [a.id, b.id]
        assert got[0][1] == pytest.approx(0, abs=0.01)
        assert got[1][1] == pytest.approx(120, abs=1)
        assert haversine_m(*P, *far) == pytest.approx(400, abs=2)
        assert old.id not in [c.id for c, _ in got]
        # excluding the new case itself, and a smaller radius
        got = suggest_duplicates(s, category_id=world.cat, lon=P[0], lat=P[1], at=T0 + dt.timedelta(hours=2),
                                 radius_m=50, exclude_id=a.id)
        assert got == []
