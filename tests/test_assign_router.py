"""Routing on the test city: the cell's primary, leave and substitutes, backups, the fallback chain
(community head → street → district), departments by category, unroutable cases, escalation targets."""
import datetime as dt

import pytest
from sqlalchemy import select

from gridmap.assign.calendar import TIMEZONE
from gridmap.assign.models import Absence, Department, Responsibility, Worker
from gridmap.assign.router import Route, escalation_target, responsible_worker, route
from gridmap.boundaries.models import Area
from gridmap.db import transaction
from gridmap.incidents.models import Case, Category

CELL = "330999001001001"
CELL2 = "330999001001002"
COMMUNITY, STREET, DISTRICT = "330999001001", "330999001", "330999"
AT = dt.datetime(2026, 3, 3, 10, 0, tzinfo=TIMEZONE)  # a Tuesday morning


def aid(s, code):
    return s.scalar(select(Area.id).where(Area.code == code))


def worker(s, code, name, role="worker", area=None, *, active=True, employment="full_time"):
    w = Worker(code=code, name=name, role=role, employment=employment, active=active,
               area_id=aid(s, area) if area else None)
    s.add(w)
    s.flush()
    return w


def duty(s, w, cell=CELL, role="primary", valid_from=dt.date(2026, 1, 1), valid_to=None):
    s.add(Responsibility(worker_id=w.id, cell_id=aid(s, cell), role=role, valid_from=valid_from, valid_to=valid_to))
    s.flush()


def away(s, w, start=AT - dt.timedelta(days=1), end=AT + dt.timedelta(days=1), substitute=None):
    s.add(Absence(worker_id=w.id, start=start, end=end, substitute_id=substitute.id if substitute else None))
    s.flush()


@pytest.fixture
def city(sessionmaker, loaded_city):
    """W001 primary of CELL, W003/W004 backups, W100 head of the community, W200 street, W300 district."""
    with transaction(sessionmaker) as s:
        w1 = worker(s, "W001", "张三", area=COMMUNITY)
        duty(s, w1)
        duty(s, worker(s, "W004", "赵六", area=COMMUNITY), role="backup")
        duty(s, worker(s, "W003", "王五", area=COMMUNITY, employment="part_time"), role="backup")
        worker(s, "W007", "李四", area=COMMUNITY)
        worker(s, "W100", "钱七", "head", COMMUNITY)
        worker(s, "W101", "孙八", "community", COMMUNITY)
        worker(s, "W200", "周九", "street", STREET)
        worker(s, "W300", "吴十", "district", DISTRICT)
    return sessionmaker


def w(s, code):
    return s.scalars(select(Worker).where(Worker.code == code)).one()


def test_primary_worker(city):
    with city() as s:
        got, reason = responsible_worker(s, aid(s, CELL), AT)
        assert got.code == "W001"
        assert reason == "cell 330999001001001: primary worker W001 张三"
        r = route(s, cell_id=aid(s, CELL), category=None, at=AT)
        assert r == Route(got.id, None, "cell", reason, "cell.primary", {"cell": CELL, "worker": "W001 张三"})


def test_primary_on_leave_is_replaced_by_the_substitute(city):
    with transaction(city) as s:
        away(s, w(s, "W001"), substitute=w(s, "W007"))
    with city() as s:
        got, reason = responsible_worker(s, aid(s, CELL), AT)
        assert got.code == "W007"
        assert reason == "cell 330999001001001: primary W001 on leave, substitute W007 李四"
        # outside the absence the primary is back (end is exclusive)
        assert responsible_worker(s, aid(s, CELL), AT + dt.timedelta(days=1))[0].code == "W001"
        assert responsible_worker(s, aid(s, CELL), AT - dt.timedelta(days=1))[0].code == "W007"


def test_substitute_away_too_gives_the_first_backup_by_code(city):
    with transaction(city) as s:
        away(s, w(s, "W001"), substitute=w(s, "W007"))
        away(s, w(s, "W007"))
    with city() as s:
        got, reason = responsible_worker(s, aid(s, CELL), AT)
        assert got.code == "W003"
        assert "primary W001 on leave" in reason and "substitute W007 also away" in reason
        assert reason.endswith("backup W003 王五")


def test_no_substitute_and_backups_away_falls_back_to_the_community_head(city):
    with transaction(city) as s:
        for code in ("W001", "W003", "W004"):
            away(s, w(s, code))
    with city() as s:
        got, reason = responsible_worker(s, aid(s, CELL), AT)
        assert got is None and "no substitute or backup on duty" in reason
        r = route(s, cell_id=aid(s, CELL), category=None, at=AT)
        assert (r.level, r.worker_id) == ("community", w(s, "W100").id)
        assert r.reason.startswith("fallback: community 330999001001 head W100 钱七 (no worker on duty for "
                                   "cell 330999001001001")


def test_fallback_climbs_past_absent_and_inactive_staff(city):
    with transaction(city) as s:
        for code in ("W001", "W003", "W004", "W100"):
            away(s, w(s, code))
    with city() as s:  # head away → the community's other staff
        r = route(s, cell_id=aid(s, CELL), category=None, at=AT)
        assert (r.level, r.worker_id) == ("community", w(s, "W101").id)
        assert "staff W101" in r.reason
    with transaction(city) as s:
        w(s, "W101").active = False
    with city() as s:
        r = route(s, cell_id=aid(s, CELL), category=None, at=AT)
        assert (r.level, r.worker_id) == ("street", w(s, "W200").id)
        assert "no staff on duty in community 330999001001" in r.reason
    with transaction(city) as s:
        away(s, w(s, "W200"))
    with city() as s:
        r = route(s, cell_id=aid(s, CELL), category=None, at=AT)
        assert (r.level, r.worker_id) == ("district", w(s, "W300").id)
    with transaction(city) as s:
        w(s, "W300").active = False
    with city() as s:  # nobody anywhere: the district's queue, never dropped
        r = route(s, cell_id=aid(s, CELL), category=None, at=AT)
        assert (r.level, r.worker_id, r.department_id) == ("district", None, None)
        assert r.reason.startswith("fallback: district 330999 queue") and "属地兜底" in r.reason


def test_cell_without_any_responsibility(city):
    with city() as s:
        worker_, reason = responsible_worker(s, aid(s, CELL2), AT)
        assert worker_ is None and reason == "cell 330999001001002: no worker responsible on 2026-03-03"
        r = route(s, cell_id=aid(s, CELL2), category=None, at=AT)
        assert r.level == "community" and r.worker_id == w(s, "W100").id


def test_several_primaries_take_the_smallest_code(city):
    with transaction(city) as s:
        duty(s, w(s, "W007"), cell=CELL, role="primary")
        duty(s, worker(s, "W000", "郑一", area=COMMUNITY), cell=CELL, role="primary")
    with city() as s:
        got, reason = responsible_worker(s, aid(s, CELL), AT)
        assert got.code == "W000"
        assert "several primaries: W000, W001, W007; took the smallest code" in reason
    with transaction(city) as s:  # the smallest away: the other primaries act as backups first
        away(s, w(s, "W000"))
    with city() as s:
        got, reason = responsible_worker(s, aid(s, CELL), AT)
        assert got.code == "W001" and "primary W000 on leave" in reason


def test_inactive_primary_is_skipped(city):
    with transaction(city) as s:
        w(s, "W001").active = False
    with city() as s:
        got, reason = responsible_worker(s, aid(s, CELL), AT)
        assert got.code == "W003"
        assert reason == "cell 330999001001001: no active primary, backup W003 王五 (inactive: W001)"


def test_inactive_substitute_is_skipped(city):
    with transaction(city) as s:
        away(s, w(s, "W001"), substitute=w(s, "W007"))
        w(s, "W007").active = False
    with city() as s:
        got, reason = responsible_worker(s, aid(s, CELL), AT)
        assert got.code == "W003" and "substitute W007 inactive" in reason


def test_responsibility_dates_are_shanghai_dates(city):
    with transaction(city) as s:
        r = s.scalars(select(Responsibility).join(Worker).where(Worker.code == "W001")).one()
        r.valid_to = dt.date(2026, 3, 2)
        duty(s, w(s, "W007"), valid_from=dt.date(2026, 3, 2))
    utc = dt.timezone.utc
    with city() as s:
        # 2026-03-01 23:30 in Shanghai: still W001's day
        assert responsible_worker(s, aid(s, CELL), dt.datetime(2026, 3, 1, 15, 30, tzinfo=utc))[0].code == "W001"
        # 2026-03-02 00:30 in Shanghai (still 1 March in UTC): W007's
        got, reason = responsible_worker(s, aid(s, CELL), dt.datetime(2026, 3, 1, 16, 30, tzinfo=utc))
        assert got.code == "W007" and reason == "cell 330999001001001: primary worker W007 李四"
        # before anybody's responsibility began
        assert responsible_worker(s, aid(s, CELL), dt.datetime(2025, 12, 1, tzinfo=utc))[0] is None


def test_category_with_a_department_goes_to_the_department(city):
    with transaction(city) as s:
        dep = Department(code="LABOUR", name="人力社保局劳动监察大队")
        s.add(dep)
        s.flush()
        s.add(Category(code="dispute.labour", name="劳资纠纷", kind="dispute", department_id=dep.id))
        s.add(Category(code="event.litter", name="暴露垃圾", kind="event"))
    with city() as s:
        labour = s.scalars(select(Category).where(Category.code == "dispute.labour")).one()
        r = route(s, cell_id=aid(s, CELL), category=labour, at=AT)
        assert r == Route(None, labour.department_id, "department",
                          "category dispute.labour → department LABOUR (权责清单)", "department",
                          {"category": "劳资纠纷", "department": "人力社保局劳动监察大队"})
        litter = s.scalars(select(Category).where(Category.code == "event.litter")).one()
        assert route(s, cell_id=aid(s, CELL), category=litter, at=AT).worker_id == w(s, "W001").id


def test_no_cell_is_unroutable_not_dropped(city):
    with city() as s:
        r = route(s, cell_id=None, category=None, at=AT)
        assert (r.level, r.worker_id, r.department_id) == ("unroutable", None, None)
        assert "manual placement" in r.reason


def test_bad_input_is_refused(city):
    with city() as s:
        with pytest.raises(ValueError, match="naive"):
            route(s, cell_id=aid(s, CELL), category=None, at=dt.datetime(2026, 3, 3, 10))
        with pytest.raises(ValueError, match="not a cell"):
            route(s, cell_id=aid(s, COMMUNITY), category=None, at=AT)
        with pytest.raises(ValueError, match="no area with id"):
            responsible_worker(s, 999999, AT)


def _case(s, cell=CELL):
    cat = Category(code="event.litter", name="暴露垃圾", kind="event")
    s.add(cat)
    s.flush()
    c = Case(source="patrol", category_id=cat.id, description="垃圾", status="dispatched", cell_id=aid(s, cell),
             community_id=aid(s, cell[:12]), street_id=aid(s, cell[:9]), district_id=aid(s, cell[:6]))
    s.add(c)
    s.flush()
    return c


def test_escalation_targets_by_level(city):
    with transaction(city) as s:
        case = _case(s)
        t1 = escalation_target(s, case, 1, at=AT)
        assert (t1.level, t1.worker_id) == ("community", w(s, "W100").id)
        assert t1.reason.startswith("escalated: community 330999001001 head W100 钱七 (overdue at cell "
                                    "330999001001001, escalation level 1")
        t2 = escalation_target(s, case, 2, at=AT)
        assert (t2.level, t2.worker_id) == ("street", w(s, "W200").id)
        t3 = escalation_target(s, case, 3, at=AT)
        assert (t3.level, t3.worker_id) == ("district", w(s, "W300").id)
        away(s, w(s, "W200"))  # street staff away: the district takes it
        t2 = escalation_target(s, case, 2, at=AT)
        assert (t2.level, t2.worker_id) == ("district", w(s, "W300").id)
        assert "no staff on duty in street 330999001" in t2.reason
        with pytest.raises(ValueError, match="escalation level"):
            escalation_target(s, case, 4, at=AT)


def test_escalation_target_of_a_case_without_a_cell_uses_its_areas(city):
    with transaction(city) as s:
        case = _case(s)
        case.cell_id = None
        case.community_id = None
        s.flush()
        t = escalation_target(s, case, 1, at=AT)  # no community known: the street takes it
        assert (t.level, t.worker_id) == ("street", w(s, "W200").id)
        case.street_id = case.district_id = None
        assert escalation_target(s, case, 1, at=AT).level == "unroutable"
