"""Escalation of overdue cases: one level per missed deadline, idempotent, version-checked."""
import datetime as dt
import json

import pytest
from sqlalchemy import event, select, text

from gridmap.assign.calendar import TIMEZONE, add_limit
from gridmap.assign.escalation import escalate_overdue
from gridmap.assign.models import Absence, Responsibility, Worker
from gridmap.boundaries.models import Area
from gridmap.db import transaction
from gridmap.incidents.models import Case, CaseEvent, Category

CELL = "330999001001001"
NOW = dt.datetime(2026, 3, 3, 10, 0, tzinfo=TIMEZONE)  # Tuesday


def aid(s, code):
    return s.scalar(select(Area.id).where(Area.code == code))


def wid(s, code):
    return s.scalar(select(Worker.id).where(Worker.code == code))


@pytest.fixture
def city(sessionmaker, loaded_city):
    from gridmap.assign.service import import_calendar_csv
    from gridmap.incidents.categories import DEFAULT_PATH

    with transaction(sessionmaker) as s:
        import_calendar_csv(s, DEFAULT_PATH.parent / "calendar" / "cn-2026.csv")  # working days need the year
        for code, name, role, area in [("W001", "张三", "worker", "330999001001"), ("W100", "钱七", "head", "330999001001"),
                                       ("W200", "周九", "street", "330999001"), ("W300", "吴十", "district", "330999")]:
            s.add(Worker(code=code, name=name, role=role, area_id=aid(s, area), active=True))
        s.flush()
        s.add(Responsibility(worker_id=wid(s, "W001"), cell_id=aid(s, CELL), role="primary",
                             valid_from=dt.date(2026, 1, 1)))
        s.add(Category(code="event.litter", name="暴露垃圾", kind="event", limit_value=4, limit_unit="urgent_hours"))
        s.add(Category(code="governance.visit", name="走访", kind="governance", limit_value=2,
                       limit_unit="working_days"))
        s.add(Category(code="service.other", name="其他服务", kind="service"))
    return sessionmaker


def mk_case(s, *, status="dispatched", deadline=NOW - dt.timedelta(hours=1), category="event.litter",
            level=0, overdue=False, number=None, cell=CELL):
    cat_id = s.scalar(select(Category.id).where(Category.code == category))
    c = Case(source="patrol", category_id=cat_id, description="路边暴露垃圾", status=status, number=number,
             cell_id=aid(s, cell), community_id=aid(s, cell[:12]), street_id=aid(s, cell[:9]),
             district_id=aid(s, cell[:6]), assignee_worker_id=wid(s, "W001"), assignee_level="cell",
             route_reason=f"cell {cell}: primary worker W001 张三", escalation_level=level, overdue=overdue,
             dispatched_at=NOW - dt.timedelta(days=1), deadline_at=deadline)
    s.add(c)
    s.flush()
    return c.id


def events(s, case_id):
    return s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)).all()


def test_overdue_case_goes_to_the_community_head(city):
    with transaction(city) as s:
        cid = mk_case(s, number="20260303-000001")
    with transaction(city) as s:
        out = escalate_overdue(s, NOW)
    assert len(out) == 1
    item = out[0]
    assert (item["case_id"], item["result"], item["from_level"], item["to_level"]) == (cid, "escalated", 0, 1)
    assert (item["from_worker"], item["to_worker"], item["assignee_level"]) == ("W001", "W100", "community")
    assert item["deadline_at"] == NOW + dt.timedelta(hours=4)  # the category's 4 urgent hours from now
    with city() as s:
        c = s.get(Case, cid)
        assert c.overdue and c.escalation_level == 1 and c.version == 2
        assert (c.assignee_worker_id, c.assignee_level) == (wid(s, "W100"), "community")
        assert c.route_reason.startswith("escalated: community 330999001001 head W100 钱七")
        assert c.deadline_at == NOW + dt.timedelta(hours=4)
        assert c.status == "dispatched"
        (ev,) = events(s, cid)
        assert (ev.action, ev.actor_name, ev.from_status, ev.to_status) == ("escalate", "system", "dispatched",
                                                                            "dispatched")
        assert ev.at == NOW
        data = json.loads(ev.data)
        assert (data["from_level"], data["to_level"]) == (0, 1)
        assert data["from_assignee"] == {"worker_id": wid(s, "W001"), "department_id": None, "level": "cell"}
        assert data["to_assignee"] == {"worker_id": wid(s, "W100"), "department_id": None, "level": "community"}


def test_running_twice_at_the_same_time_changes_nothing(city):
    with transaction(city) as s:
        cid = mk_case(s)
    with transaction(city) as s:
        assert len(escalate_overdue(s, NOW)) == 1
    with transaction(city) as s:
        assert escalate_overdue(s, NOW) == []
    with city() as s:
        c = s.get(Case, cid)
        assert (c.escalation_level, c.version) == (1, 2)
        assert len(events(s, cid)) == 1


def test_one_level_per_missed_deadline_up_to_the_district(city):
    with transaction(city) as s:
        cid = mk_case(s)
    now = NOW
    seen = []
    for _ in range(3):
        with transaction(city) as s:
            (item,) = escalate_overdue(s, now)
            seen.append((item["to_level"], item["to_worker"], item["assignee_level"]))
            assert escalate_overdue(s, now + dt.timedelta(hours=3)) == []  # the new deadline is not passed yet
        now = now + dt.timedelta(hours=5)  # past the new 4-hour deadline
    assert seen == [(1, "W100", "community"), (2, "W200", "street"), (3, "W300", "district")]
    with transaction(city) as s:  # never beyond the district
        assert escalate_overdue(s, now + dt.timedelta(days=30)) == []
    with city() as s:
        c = s.get(Case, cid)
        assert (c.escalation_level, c.overdue, c.version) == (3, True, 4)
        assert [json.loads(e.data)["to_level"] for e in events(s, cid)] == [1, 2, 3]


def test_case_already_at_the_district_is_only_marked_overdue(city):
    with transaction(city) as s:
        cid = mk_case(s, level=3)
    with transaction(city) as s:
        (item,) = escalate_overdue(s, NOW)
        assert (item["result"], item["from_level"], item["to_level"]) == ("overdue", 3, 3)
    with transaction(city) as s:
        assert escalate_overdue(s, NOW + dt.timedelta(days=1)) == []
    with city() as s:
        c = s.get(Case, cid)
        assert (c.escalation_level, c.overdue, c.version, c.assignee_worker_id) == (3, True, 2, wid(s, "W001"))
        assert [e.action for e in events(s, cid)] == ["overdue"]


def test_only_running_cases_past_their_deadline_escalate(city):
    with transaction(city) as s:
        running = [mk_case(s, status="dispatched"), mk_case(s, status="in_progress")]
        still = [mk_case(s, status=st) for st in ("handled", "verifying", "closed", "parked", "rejected", "reported")]
        still.append(mk_case(s, deadline=NOW + dt.timedelta(minutes=1)))  # not yet due
        still.append(mk_case(s, deadline=NOW))  # due exactly now: not past
        still.append(mk_case(s, deadline=None))
    with transaction(city) as s:
        out = escalate_overdue(s, NOW)
    assert sorted(i["case_id"] for i in out) == running
    with city() as s:
        for cid in still:
            c = s.get(Case, cid)
            assert (c.escalation_level, c.overdue, c.version) == (0, False, 1), c.status


def test_new_deadline_follows_the_category_limit_and_calendar(city):
    with transaction(city) as s:
        visit = mk_case(s, category="governance.visit")
        nolimit = mk_case(s, category="service.other")
    with transaction(city) as s:
        out = {i["case_id"]: i for i in escalate_overdue(s, NOW)}
        assert out[visit]["deadline_at"] == add_limit(s, NOW, 2, "working_days")
        assert out[visit]["deadline_at"] == dt.datetime(2026, 3, 5, 17, 30, tzinfo=TIMEZONE)
        # no limit on the category: the default next check, one working day
        assert out[nolimit]["deadline_at"] == dt.datetime(2026, 3, 4, 17, 30, tzinfo=TIMEZONE)


def test_absent_head_sends_the_escalation_to_the_street(city):
    with transaction(city) as s:
        cid = mk_case(s)
        s.add(Absence(worker_id=wid(s, "W100"), start=NOW - dt.timedelta(days=1), end=NOW + dt.timedelta(days=1)))
    with transaction(city) as s:
        (item,) = escalate_overdue(s, NOW)
    assert (item["to_level"], item["to_worker"], item["assignee_level"]) == (1, "W200", "street")
    with city() as s:
        assert s.get(Case, cid).escalation_level == 1


def test_a_concurrent_change_is_not_overwritten(city, engine):
    with transaction(city) as s:
        raced = mk_case(s, number="RACE")
        calm = mk_case(s, number="CALM")

    def bump_after_candidate_query(state):
        """Run the candidate query, then let another connection act on one case before we update it."""
        if not (state.is_select and "cases" in str(state.statement)):
            return None
        event.remove(s, "do_orm_execute", bump_after_candidate_query)
        frozen = state.invoke_statement().freeze()
        with engine.begin() as other:
            other.execute(text("UPDATE cases SET status = 'in_progress', version = version + 1 WHERE id = :id"),
                          {"id": raced})
        return frozen()

    with transaction(city) as s:
        event.listen(s, "do_orm_execute", bump_after_candidate_query)
        out = {i["case_id"]: i for i in escalate_overdue(s, NOW)}
    assert out[raced]["result"] == "conflict" and "changed concurrently" in out[raced]["reason"]
    assert out[calm]["result"] == "escalated"
    with city() as s:
        r, c = s.get(Case, raced), s.get(Case, calm)
        assert (r.status, r.version, r.escalation_level, r.overdue) == ("in_progress", 2, 0, False)
        assert events(s, raced) == []
        assert (c.version, c.escalation_level) == (2, 1)
    with transaction(city) as s:  # the next run picks the raced case up
        (item,) = escalate_overdue(s, NOW)
        assert (item["case_id"], item["result"]) == (raced, "escalated")
    with city() as s:
        assert s.get(Case, raced).version == 3


def test_naive_now_is_refused(city):
    with city() as s, pytest.raises(ValueError, match="naive"):
        escalate_overdue(s, dt.datetime(2026, 3, 3, 10))


def test_escalate_command(city, app):
    from gridmap.assign.cli import escalate_cmd

    with transaction(city) as s:
        cid = mk_case(s, number="20260303-000007")
    runner = app.test_cli_runner()
    res = runner.invoke(escalate_cmd, ["--now", "2026-03-03T10:00"])
    assert res.exit_code == 0, res.output
    assert "case 20260303-000007: cell → community, W001 → W100" in res.output
    assert "1 escalated, 0 marked overdue at the top level, 0 skipped" in res.output
    res = runner.invoke(escalate_cmd, ["--now", "2026-03-03T10:00"])
    assert res.exit_code == 0 and "0 escalated" in res.output
    with city() as s:
        assert s.get(Case, cid).escalation_level == 1
    res = runner.invoke(escalate_cmd, ["--now", "yesterday"])
    assert res.exit_code == 2 and "not an ISO time" in res.output
