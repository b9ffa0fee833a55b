"""The demo city opens on believable work for every role (counts read back from the database)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from gridmap.accounts.models import User
from gridmap.boundaries.models import Area
from gridmap.demo_cases import TEXTS
from gridmap.incidents.models import Case, CaseEvent, Category

OPEN = ("dispatched", "in_progress")


def test_the_demo_opens_on_believable_work(runner, sessionmaker):
    """One load of the demo city per backend (it takes a while), then every check on it."""
    res = runner.invoke(args=["demo", "--cases", "12"])
    assert res.exit_code == 0, res.output
    assert "(0 refused)" in res.output
    _every_role_opens_on_work(sessionmaker)
    _cases_cover_the_whole_life_cycle(sessionmaker)
    _histories_are_genuine(sessionmaker)
    _reports_at_working_hours_over_months_with_matching_descriptions(sessionmaker)


def _count(s, *where):
    return s.scalar(select(func.count()).select_from(Case).where(*where))


def _area(s, code):
    return s.scalar(select(Area.id).where(Area.code == code))


def _every_role_opens_on_work(demo):
    with demo() as s:
        wangge = s.scalar(select(User).where(User.username == "wangge"))
        assert wangge is not None and wangge.worker_id is not None
        assert _count(s, Case.assignee_worker_id == wangge.worker_id, Case.status.in_(OPEN)) >= 2
        # the head of 中昌社区: feedback to check and an extension to approve
        zc = _area(s, "330903003003")
        assert _count(s, Case.community_id == zc, Case.status == "handled") >= 2
        assert _count(s, Case.community_id == zc, Case.extension_pending.is_(True)) >= 1
        # 解放街道: checks, a returned case waiting for dispatch, overdue cases
        jf = _area(s, "330902001")
        assert _count(s, Case.street_id == jf, Case.status == "handled") >= 2
        assert _count(s, Case.street_id == jf, Case.status == "filed", Case.return_count > 0) >= 1
        assert _count(s, Case.street_id == jf, Case.overdue.is_(True), Case.status.in_(OPEN)) >= 2
        # 定海区 (dinghai): a boundary change submitted by 解放街道, waiting for review
        from gridmap import redraw
        from gridmap.accounts.actor import Actor

        dinghai = s.scalar(select(User).where(User.username == "dinghai"))
        drafts = redraw.list_drafts(s, Actor(name="dinghai", role="district", user_id=dinghai.id,
                                             area_id=dinghai.area_id), status="submitted")
        assert len(drafts) == 1 and drafts[0].created_by_user_id == s.scalar(
            select(User.id).where(User.username == "jiefang"))
        # the centre: overdue open cases across the city, escalated by the real escalation step
        assert _count(s, Case.overdue.is_(True), Case.status.in_(OPEN), Case.escalation_level >= 1) >= 3


def _cases_cover_the_whole_life_cycle(demo):
    with demo() as s:
        assert _count(s, Case.status == "closed", Case.closed_on_time.is_(True)) + \
            _count(s, Case.status == "evaluated", Case.closed_on_time.is_(True)) >= 5
        assert _count(s, Case.closed_on_time.is_(False)) >= 1  # closed late
        assert _count(s, Case.status == "evaluated", Case.satisfaction.between(1, 5)) >= 1
        assert _count(s, Case.self_handled.is_(True), Case.status.in_(("closed", "evaluated"))) >= 1
        assert _count(s, Case.return_count > 0) >= 2
        assert _count(s, Case.extension_count > 0) + _count(s, Case.extension_pending.is_(True)) >= 2
        statuses = set(s.scalars(select(Case.status).distinct()))
        assert {"dispatched", "in_progress", "handled", "closed", "evaluated", "filed"} <= statuses
        total = _count(s)
        closed = _count(s, Case.status.in_(("closed", "evaluated")))
        assert 0.2 < closed / total < 0.9  # rates read neither 0 % nor 100 %


def _histories_are_genuine(demo):
    with demo() as s:
        closed = s.scalars(select(Case).where(Case.status.in_(("closed", "evaluated")))).all()
        assert closed
        for case in closed:
            events = s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)).all()
            actions = [e.action for e in events]
            assert actions[0] == "report"
            assert "verify_pass" in actions
            assert any(a in actions for a in ("feedback", "self_handle"))
            times = [e.at for e in events]
            assert times == sorted(times)
            handler = [e for e in events if e.action in ("feedback", "self_handle")][-1]
            verifier = [e for e in events if e.action == "verify_pass"][-1]
            assert verifier.actor_worker_id != handler.actor_worker_id
            if case.closed_on_time:
                assert case.deadline_at is None or case.closed_at <= case.deadline_at
            else:
                assert case.closed_at > case.deadline_at


def _reports_at_working_hours_over_months_with_matching_descriptions(demo):
    tz = ZoneInfo("Asia/Shanghai")
    with demo() as s:
        rows = s.execute(select(Case.reported_at, Case.description, Category.code)
                         .join(Category, Category.id == Case.category_id)).all()
        assert len(rows) >= 30
        for at, text, code in rows:
            local = at.astimezone(tz)
            assert local.weekday() < 5, local
            assert dt.time(8, 30) <= local.time() <= dt.time(17, 30), local
            assert text in TEXTS[code], (code, text)
        span = max(r[0] for r in rows) - min(r[0] for r in rows)
        assert span > dt.timedelta(days=60)
        assert len({r[2] for r in rows}) >= 8
