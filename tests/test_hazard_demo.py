"""The hazard demo (gridmap.hazards.demo) on the test city, both backends: every type in every status,
some overdue, some extended and supervised, some linked to cases, inspections done, late and missed."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from gridmap.db import transaction
from gridmap.hazards import service as hz
from gridmap.hazards.demo import STATES, demo_hazards
from gridmap.hazards.models import Hazard, HazardCase, HazardEvent, HazardType, InspectionTask
from tests.casehelpers import CELL, OTHER_CELL, make_case, make_category, make_worker

NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.timezone.utc)


def test_demo_hazards_cover_every_type_and_status(sessionmaker, loaded_city):
    from gridmap.assign.service import import_calendar_csv
    from gridmap.incidents.categories import DEFAULT_PATH

    with transaction(sessionmaker) as s:
        import_calendar_csv(s, DEFAULT_PATH.parent / "calendar" / "cn-2026.csv")  # working days need the year
        w = make_worker(s, "W001", name="张伟")
        make_worker(s, "W002", cell_code=OTHER_CELL, name="李娜")
        hz.load_types(s)
        cat = make_category(s, "test.x", name="测试")
        for cell, worker in ((CELL, w), (OTHER_CELL, None)):
            make_case(s, "reported", category=cat, cell_code=cell, worker=worker)
    msg = demo_hazards(sessionmaker, n=70, now=NOW, echo=print)
    assert "(0 refused)" in msg, msg
    assert msg.startswith("hazards: ")
    with sessionmaker() as s:
        n_types = s.scalar(select(func.count(HazardType.id)))
        assert s.scalar(select(func.count(Hazard.id))) >= n_types * len(STATES)
        statuses = {(t, st) for t, st in s.execute(select(HazardType.code, Hazard.status)
                                                   .join(HazardType, HazardType.id == Hazard.type_id))}
        for code, in s.execute(select(HazardType.code)):
            for st in ("open", "rectified", "verified", "closed"):
                assert (code, st) in statuses, (code, st)
        overdue = s.scalar(select(func.count(Hazard.id)).where(hz.overdue_clause(NOW)))
        assert overdue > 0
        assert s.scalar(select(func.count(Hazard.id)).where(Hazard.grade == "major")) > 0
        assert s.scalar(select(func.count(Hazard.id)).where(Hazard.supervised.is_(True))) > 0
        assert s.scalar(select(func.count(Hazard.id)).where(Hazard.reopen_count > 0)) > 0
        assert s.scalar(select(func.count()).select_from(HazardCase)) > 0
        actions = {a for a, in s.execute(select(HazardEvent.action).distinct())}
        assert {"register", "rectify", "verify", "close", "reopen", "extend", "supervise", "link_case"} <= actions
        today = NOW.date()
        missed = s.scalar(select(func.count(InspectionTask.id)).where(InspectionTask.done_at.is_(None),
                                                                      InspectionTask.due_date < today))
        done = s.scalar(select(func.count(InspectionTask.id)).where(InspectionTask.done_at.isnot(None)))
        assert missed > 0 and done > missed
        first = s.scalar(select(func.min(Hazard.found_at)))
        assert first < NOW - dt.timedelta(days=60)  # spread over the past months
