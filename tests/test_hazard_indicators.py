"""Hazard indicators (按期整改率 with its denominator), inspection compliance, and the management
actions (assign, extend, 督办, reopen), on PostGIS and SpatiaLite, against values computed by hand.

The fixture (period 2026-03-01 … 2026-03-31, asked on 2026-03-20 09:00 Asia/Shanghai):

  H1 fire general, west, found 03-02 09:00, deadline 03-09 09:00, rectified 03-05, verified, closed
  H2 fire general, west, found 03-02, deadline 03-09, never rectified: open and overdue
  H3 gas general, west, found 03-10, deadline 03-13, rectified 03-15 (late)
  H4 fire major, west, found 03-10, deadline 04-09 (30 days: a major hazard), 督办, open, not due yet
  H5 gas general, west, found 02-20, rectified 02-22, closed 02-24, REOPENED 03-12 → deadline 03-15, overdue
  H6 gas general, west, found 03-16, deadline 03-19 09:00, EXTENDED on 03-18 to 03-25: open, not due
  H7 fire general, east, found 03-03, deadline 03-10, rectified 03-04 (on time)

  found 6 (not H5) · open 4 (H2 H4 H5 H6) · overdue 2 (H2 H5) · rectified 3 (H1 H3 H7) · on time 2 (H1 H7)
  due = rectified (H1 H3 H7) + fell due unrectified (H2 H5) = 5 → 按期整改率 2/5 = 0.4
  west: due 4 (H1 H2 H3 H5), on time 1 → 0.25 · east: due 1, on time 1 → 1.0
  fire: due 3 (H1 H2 H7), on time 2 · gas: due 2 (H3 H5), on time 0 · major: found 1, due 0 → None

Inspections (tasks due in the period up to today 03-20):
  H2's schedule (west, fire): due 03-01 done 03-01 (on time), 03-08 done 03-09 (late), 03-15 not done
  (missed), 03-22 (not yet due: left out), 02-22 (before the period: left out)
  OTHER_CELL patrol (east): due 03-19 done 03-20 00:30 local = 03-19 16:30 UTC (late by the LOCAL date),
  due 03-20 not done (pending)
  due 5 · on time 1 · late 2 · missed 1 · pending 1 → 按时巡检率 0.2, 完成率 0.6
  west 3 (1/1/1/0) → 1/3 · east 2 (0/1/0/1) → 0.0
"""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from gridmap.accounts.actor import SYSTEM, Actor
from gridmap.db import transaction
from gridmap.hazards import actions as act
from gridmap.hazards import service as hz
from gridmap.hazards.indicators import hazard_indicators, inspection_compliance
from gridmap.hazards.models import Hazard, HazardEvent, InspectionTask
from tests.casehelpers import ADMIN, CELL, OTHER_CELL, area, auth, make_token, make_user
from tests.hazardhelpers import CST, build_fixture, t

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 20, 9, 0, tzinfo=CST)
PERIOD = {"date_from": "2026-03-01", "date_to": "2026-03-31"}


@pytest.fixture
def fixture(sessionmaker, loaded_city):
    return build_fixture(sessionmaker)


def test_the_reopen_and_extension_changed_what_they_should(sessionmaker, fixture):
    with sessionmaker() as s:
        h5, h6, h4 = (s.get(Hazard, fixture[k]) for k in ("H5", "H6", "H4"))
        assert (h5.status, h5.reopen_count, h5.rectified_at, h5.closed_at) == ("open", 1, None, None)
        assert h5.rectify_deadline == t(3, 15)  # gas, general: 3 days from the reopening
        assert h6.rectify_deadline == dt.datetime(2026, 3, 25, 23, 59, 59, tzinfo=CST)
        assert h6.extension_count == 1
        assert h4.supervised and h4.supervised_by == ADMIN.name and h4.rectify_deadline == t(4, 9)
        ev = s.scalars(select(HazardEvent).where(HazardEvent.hazard_id == h6.id).order_by(HazardEvent.seq)).all()
        assert [e.action for e in ev] == ["register", "extend"] and ev[1].comment == "等待燃气公司上门更换"


def test_hazard_indicators_match_the_hand_computed_values(sessionmaker, fixture):
    with sessionmaker() as s:
        total = hazard_indicators(s, SYSTEM, now=NOW, **PERIOD)["rows"][0]
        assert {k: total[k] for k in ("found", "open", "overdue", "rectified", "rectified_on_time", "due",
                                      "reopened", "extended", "supervised")} == \
            {"found": 6, "open": 4, "overdue": 2, "rectified": 3, "rectified_on_time": 2, "due": 5, "reopened": 1,
             "extended": 1, "supervised": 1}
        assert total["on_time_rate"] == 0.4
        grades = {g["grade"]: g for g in total["by_grade"]}
        assert (grades["major"]["found"], grades["major"]["due"], grades["major"]["on_time_rate"]) == (1, 0, None)
        assert (grades["general"]["due"], grades["general"]["rectified_on_time"]) == (5, 2)
        types = {x["type"]: x for x in total["by_type"]}
        assert (types["fire"]["due"], types["fire"]["rectified_on_time"], types["fire"]["on_time_rate"]) == \
            (3, 2, round(2 / 3, 4))
        assert (types["gas"]["due"], types["gas"]["on_time_rate"], types["gas"]["reopened"],
                types["gas"]["extended"]) == (2, 0.0, 1, 1)
        streets = {r["group"]["code"]: r for r in hazard_indicators(s, SYSTEM, group_by="street", now=NOW,
                                                                    **PERIOD)["rows"]}
        assert (streets["330999001"]["due"], streets["330999001"]["on_time_rate"]) == (4, 0.25)
        assert (streets["330999002"]["due"], streets["330999002"]["on_time_rate"]) == (1, 1.0)
        # an area filter and the scope give the same answer for the east street
        east = hazard_indicators(s, SYSTEM, area="330999002", now=NOW, **PERIOD)["rows"][0]
        _, street_actor = make_user(s, "east", "street", area_code="330999002")
        scoped = hazard_indicators(s, street_actor, now=NOW, **PERIOD)["rows"][0]
        assert east["due"] == scoped["due"] == 1 and scoped["found"] == 1
        s.rollback()
        assert "按期整改率" in hazard_indicators(s, SYSTEM, now=NOW, **PERIOD)["definitions"]["on_time_rate"]


def test_inspection_compliance_matches_the_hand_computed_values(sessionmaker, fixture):
    with sessionmaker() as s:
        total = inspection_compliance(s, SYSTEM, now=NOW, **PERIOD)["rows"][0]
        assert {k: total[k] for k in ("due", "on_time", "late", "missed", "pending")} == \
            {"due": 5, "on_time": 1, "late": 2, "missed": 1, "pending": 1}
        assert (total["on_time_rate"], total["done_rate"]) == (0.2, 0.6)
        types = {x["type"]: x for x in total["by_type"]}
        assert (types["fire"]["due"], types["fire"]["missed"], types["patrol"]["pending"]) == (3, 1, 1)
        rows = {r["group"]["code"]: r for r in inspection_compliance(s, SYSTEM, group_by="street", now=NOW,
                                                                      **PERIOD)["rows"]}
        assert (rows["330999001"]["due"], rows["330999001"]["on_time_rate"]) == (3, round(1 / 3, 4))
        assert (rows["330999002"]["late"], rows["330999002"]["pending"], rows["330999002"]["on_time_rate"]) == \
            (1, 1, 0.0)
        cells = {r["group"]["code"]: r["due"] for r in inspection_compliance(s, SYSTEM, group_by="cell", now=NOW,
                                                                             **PERIOD)["rows"]}
        assert cells == {CELL: 3, OTHER_CELL: 2}


def test_scorecards_carry_the_inspection_compliance(sessionmaker, fixture):
    from gridmap.analysis.scorecards import _inspections
    from gridmap.analysis.common import period

    with sessionmaker() as s:
        per = period("2026-03-01", "2026-03-19")  # up to yesterday of a real today: all these dates are past
        by_street = _inspections(s, SYSTEM, "street", per)
        west = area(s, "330999001").id
        assert (by_street[west]["due"], by_street[west]["on_time"], by_street[west]["late"],
                by_street[west]["missed"]) == (3, 1, 1, 1)
        by_worker = _inspections(s, SYSTEM, "worker", per)
        w2 = s.scalar(select(InspectionTask.worker_id).where(InspectionTask.due_date == dt.date(2026, 3, 19)))
        assert by_worker[w2]["due"] == 1 and by_worker[w2]["late"] == 1


# ----------------------------------------------------------------------------- refusals

def test_management_actions_refuse_bad_input(sessionmaker, fixture):
    with transaction(sessionmaker) as s:
        h2 = fixture["H2"]
        w = s.scalar(select(InspectionTask.worker_id).where(InspectionTask.cell_id == area(s, CELL).id).limit(1))
        head = Actor(name="网格长", role="head", area_id=area(s, "330999001001").id)
        cases = [
            (lambda: act.extend(s, h2, ADMIN, deadline="2026-04-30", reason="  ", now=NOW), 400, "reason"),
            (lambda: act.extend(s, h2, ADMIN, deadline="2026-03-05", reason="x", now=NOW), 400, "deadline"),
            (lambda: act.extend(s, h2, ADMIN, deadline="someday", reason="x", now=NOW), 400, "deadline"),
            (lambda: act.extend(s, h2, Actor(name="w", role="worker", worker_id=w), deadline="2026-04-30",
                                reason="x", now=NOW), 403, "action"),
            (lambda: act.extend(s, fixture["H3"], ADMIN, deadline="2026-04-30", reason="x", now=NOW), 409, "action"),
            (lambda: act.supervise(s, fixture["H4"], ADMIN, comment="again", now=NOW), 409, "action"),
            (lambda: act.supervise(s, h2, head, comment="督办", now=NOW), 403, "action"),
            (lambda: act.supervise(s, h2, ADMIN, comment="", now=NOW), 400, "reason"),
            (lambda: act.supervise(s, fixture["H1"], ADMIN, comment="x", now=NOW), 409, "action"),
            (lambda: act.assign_unit(s, h2, ADMIN, unit=" ", now=NOW), 400, "unit"),
            (lambda: act.assign_unit(s, h2, ADMIN, unit="x" * 201, now=NOW), 400, "unit"),
            (lambda: act.assign_unit(s, h2, ADMIN, unit="物业", expected_version=99, now=NOW), 409, "version"),
            (lambda: hz.apply_action(s, fixture["H1"], "reopen", ADMIN, comment=" ", now=NOW), 400, "comment"),
            (lambda: act.extend(s, 10 ** 6, ADMIN, deadline="2026-04-30", reason="x", now=NOW), 404, "hazard"),
        ]
        before = s.scalar(select(func.count(HazardEvent.id)))
        for fn, status, field in cases:
            with pytest.raises(hz.HazardError) as e:
                fn()
            assert (e.value.status, e.value.field) == (status, field), e.value.message
        assert s.scalar(select(func.count(HazardEvent.id))) == before
        # the rectifier may not verify (H3 was rectified by W001)
        wa = Actor(name="张伟", role="head", worker_id=s.scalar(select(HazardEvent.actor_worker_id).where(
            HazardEvent.hazard_id == fixture["H3"], HazardEvent.action == "rectify")), area_id=area(s, "330999001").id)
        with pytest.raises(hz.HazardError) as e:
            hz.apply_action(s, fixture["H3"], "verify", wa, now=NOW)
        assert e.value.status == 403 and "核查人不能是整改人" in e.value.message
        ok = act.assign_unit(s, h2, ADMIN, unit="幸福小区物业", person="王经理", now=NOW)
        assert (ok.responsible_unit, ok.responsible_person, ok.version) == ("幸福小区物业", "王经理", 2)


def test_indicator_and_compliance_api(app, sessionmaker, fixture):
    with transaction(sessionmaker) as s:
        make_user(s, "city", "city")
        make_user(s, "east", "street", area_code="330999002")
        tok = {u: make_token(s, u) for u in ("city", "east")}
    c = app.test_client()
    r = c.get("/api/v1/hazards/indicators?from=2026-03-01&to=2026-03-31&group=street", headers=auth(tok["city"]))
    assert r.status_code == 200, r.get_json()
    codes = {row["group"]["code"] for row in r.get_json()["rows"]}
    assert codes == {"330999001", "330999002"} and "按期整改率" in r.get_json()["definitions"]["on_time_rate"]
    r = c.get("/api/v1/hazards/indicators?from=2026-03-01&to=2026-03-31&group=street", headers=auth(tok["east"]))
    assert {row["group"]["code"] for row in r.get_json()["rows"]} == {"330999002"}
    for q, field in [("group=planet", "group"), ("from=2026-13-01", "from"), ("from=2026-03-31&to=2026-03-01", "from"),
                     ("area=330999001", "area"), ("colour=red", "colour")]:
        r = c.get(f"/api/v1/hazards/indicators?{q}", headers=auth(tok["east"]))
        assert r.status_code == 400 and r.get_json()["field"] == field, (q, r.get_json())
    r = c.get("/api/v1/hazards/compliance?from=2026-03-01&to=2026-03-31", headers=auth(tok["city"]))
    assert r.status_code == 200 and r.get_json()["rows"][0]["due"] >= 5  # today is later than the fixture's now
    assert c.get("/api/v1/hazards/compliance").status_code == 401
    # extension through the API: refused without a reason, the hazard unchanged
    r = c.post(f"/api/v1/hazards/{fixture['H2']}/extend", json={"deadline": "2030-01-01"}, headers=auth(tok["city"]))
    assert r.status_code == 400 and r.get_json()["field"] == "reason"
    r = c.post(f"/api/v1/hazards/{fixture['H2']}/supervise", json={"comment": "x"}, headers=auth(tok["east"]))
    assert r.status_code == 404  # out of the east street's scope: as if missing


def test_cli_indicators_and_compliance(app, fixture):
    from gridmap.hazards.cli import hazards_group

    if "hazards" not in app.cli.commands:
        app.cli.add_command(hazards_group)
    runner = app.test_cli_runner()
    r = runner.invoke(args=["hazards", "indicators", "--from", "2026-03-01", "--to", "2026-03-31", "--json"])
    assert r.exit_code == 0, r.output
    total = json.loads(r.output)["rows"][0]
    # judged now (after the fixture's 03-20): H6's extended deadline 03-25 has passed too → due 6
    assert (total["found"], total["rectified_on_time"], total["due"]) == (6, 2, 6)
    r = runner.invoke(args=["hazards", "indicators", "--group", "street", "--from", "2026-03-01",
                            "--to", "2026-03-31"])
    assert r.exit_code == 0 and "西街道" in r.output and "东街道" in r.output and "100.0%" in r.output
    r = runner.invoke(args=["hazards", "compliance", "--from", "2026-03-01", "--to", "2026-03-31", "--json"])
    total = json.loads(r.output)["rows"][0]
    # now, 03-22 is due as well and missed; 03-20 is missed instead of pending
    assert (total["due"], total["on_time"], total["late"], total["missed"], total["pending"]) == (6, 1, 2, 3, 0)
    r = runner.invoke(args=["hazards", "compliance", "--from", "2026-02-30"])
    assert r.exit_code == 1 and "from must be a date" in r.output
