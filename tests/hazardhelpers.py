"""The hazard fixture of tests/test_hazard_indicators.py (its docstring gives the hand-computed values),
shared with the page and browser tests: seven hazards and seven inspection tasks in the test city."""
from __future__ import annotations

import datetime as dt


from gridmap.accounts.actor import SYSTEM
from gridmap.db import transaction
from gridmap.hazards import actions as act
from gridmap.hazards import service as hz
from gridmap.hazards.models import InspectionSchedule, InspectionTask
from tests.casehelpers import ADMIN, CELL, OTHER_CELL, area, make_worker, worker_actor

CST = dt.timezone(dt.timedelta(hours=8))
IN_CELL = (122.005, 30.035)
IN_OTHER = (122.045, 30.035)


def t(month, day, hour=9, minute=0):
    return dt.datetime(2026, month, day, hour, minute, tzinfo=CST)


def mk(s, title, *, type="fire", grade="general", where=IN_CELL, found):
    return hz.create_hazard(s, {"type": type, "title": title, "grade": grade, "lon": where[0], "lat": where[1],
                                "found_at": found.isoformat()}, SYSTEM, now=found)


def build_fixture(sessionmaker) -> dict:
    """The fixture's hazards and tasks (the caller has loaded the test city); their ids by name."""
    with transaction(sessionmaker) as s:
        w = make_worker(s, "W001", name="张伟")
        w2 = make_worker(s, "W002", cell_code=OTHER_CELL, name="李娜")
        hz.load_types(s)
        wa, wa2 = worker_actor(w), worker_actor(w2)
        ids = {}
        h = mk(s, "H1", found=t(3, 2))
        hz.apply_action(s, h.id, "rectify", wa, comment="已清理", now=t(3, 5))
        hz.apply_action(s, h.id, "verify", ADMIN, now=t(3, 6))
        hz.apply_action(s, h.id, "close", ADMIN, now=t(3, 7))
        ids["H1"] = h.id
        ids["H2"] = mk(s, "H2", found=t(3, 2)).id
        h = mk(s, "H3", type="gas", found=t(3, 10))
        hz.apply_action(s, h.id, "rectify", wa, comment="更换软管", now=t(3, 15))
        ids["H3"] = h.id
        h = mk(s, "H4", grade="major", found=t(3, 10))
        act.supervise(s, h.id, ADMIN, comment="限期治理，每周报告进展", now=t(3, 11))
        ids["H4"] = h.id
        h = mk(s, "H5", type="gas", found=t(2, 20))
        hz.apply_action(s, h.id, "rectify", wa, comment="已整改", now=t(2, 22))
        hz.apply_action(s, h.id, "verify", ADMIN, now=t(2, 23))
        hz.apply_action(s, h.id, "close", ADMIN, now=t(2, 24))
        hz.apply_action(s, h.id, "reopen", ADMIN, comment="复查发现软管再次老化", now=t(3, 12))
        ids["H5"] = h.id
        h = mk(s, "H6", type="gas", found=t(3, 16))
        act.extend(s, h.id, ADMIN, deadline="2026-03-25", reason="等待燃气公司上门更换", now=t(3, 18))
        ids["H6"] = h.id
        h = mk(s, "H7", where=IN_OTHER, found=t(3, 3))
        hz.apply_action(s, h.id, "rectify", wa2, comment="已疏通", now=t(3, 4))
        ids["H7"] = h.id
        # inspections
        sa = InspectionSchedule(hazard_id=ids["H2"], title="巡检 H2", interval_days=7, start_date=dt.date(2026, 2, 22),
                                active=True)
        sb = InspectionSchedule(cell_id=area(s, OTHER_CELL).id, title="巡查", interval_days=1,
                                start_date=dt.date(2026, 3, 19), active=True)
        s.add_all([sa, sb])
        s.flush()
        cell, other = area(s, CELL).id, area(s, OTHER_CELL).id
        for sched, cid, due, done in [(sa, cell, (2, 22), None), (sa, cell, (3, 1), t(3, 1, 10)),
                                      (sa, cell, (3, 8), t(3, 9, 10)), (sa, cell, (3, 15), None),
                                      (sa, cell, (3, 22), None), (sb, other, (3, 19), t(3, 20, 0, 30)),
                                      (sb, other, (3, 20), None)]:
            s.add(InspectionTask(schedule_id=sched.id, hazard_id=sched.hazard_id, cell_id=cid,
                                 due_date=dt.date(2026, *due), worker_id=w.id if cid == cell else w2.id,
                                 done_at=done, result="ok" if done else None))
        s.flush()
    return ids


