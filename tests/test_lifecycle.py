"""The case life-cycle: every allowed transition, forbidden ones, who may act, and concurrent actions.

Real PostGIS and SpatiaLite (the ``backend`` fixture), cases driven through the real life-cycle.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass

import pytest
from sqlalchemy import event, func, select

from gridmap.accounts.actor import SYSTEM, Actor
from gridmap.assign.calendar import add_limit
from gridmap.db import transaction
from gridmap.incidents.lifecycle import (
    PREVIOUS, TRANSITIONS, ActionInputError, CaseNotFound, ConflictError, PermissionDenied, TransitionError,
    allowed_actions, apply_action)
from gridmap.incidents.models import Case, CaseEvent
from tests.casehelpers import (CELL, OTHER_CELL, T0, make_case, make_category, make_department,
                               make_user, make_worker, worker_actor)

H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


@dataclass
class World:
    cat_id: int
    w1: int          # primary worker of CELL (with a user)
    w2: int          # backup worker of CELL
    w3: int          # worker of OTHER_CELL
    w1_actor: Actor
    w2_actor: Actor
    street: Actor    # supervisor of the west street (CELL is in it)
    east: Actor      # supervisor of the east street
    head: Actor      # grid head of CELL's community, who is also a worker
    head_worker: int
    reporter: Actor  # a department user who reported cases


@pytest.fixture
def world(sessionmaker, loaded_city) -> World:
    with transaction(sessionmaker) as s:
        cat = make_category(s, "test.litter", limit=(2, "natural_days"))
        w1 = make_worker(s, "W1", cell_code=CELL, name="张伟")
        w2 = make_worker(s, "W2", cell_code=CELL, name="李娜", responsibility="backup")
        w3 = make_worker(s, "W3", cell_code=OTHER_CELL, name="王芳")
        hw = make_worker(s, "H1", cell_code=None, role="head", name="赵刚", area_code=CELL[:12])
        _, a1 = make_user(s, "zhangwei", "worker", worker=w1)
        _, street = make_user(s, "west", "street", area_code=CELL[:9])
        _, east = make_user(s, "east", "street", area_code=OTHER_CELL[:9])
        _, head = make_user(s, "zhaogang", "head", worker=hw, area_code=CELL[:12])
        dept = make_department(s, "hotline", "12345热线")
        _, rep = make_user(s, "resident-desk", "department", department=dept)
        return World(cat.id, w1.id, w2.id, w3.id, a1, worker_actor(w2), street, east, head, hw.id, rep)


def _case(s, world: World, state: str, **kw) -> Case:
    from gridmap.assign.models import Worker
    from gridmap.incidents.models import Category

    return make_case(s, state, category=s.get(Category, world.cat_id), worker=s.get(Worker, world.w1),
                     worker_as=world.w1_actor, **kw)


def _events(s, case_id: int) -> list[CaseEvent]:
    return list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)))


# --------------------------------------------------------------------------- every allowed transition
PAIRS = [(action, frm) for action, table in TRANSITIONS.items() for frm in table]


def _prepare(s, world: World, action: str, frm: str, now: dt.datetime) -> tuple[Case, dict]:
    """A case in ``frm`` ready for ``action`` (extension pending where needed), and the data to send."""
    case = _case(s, world, frm, reporter_user_id=world.reporter.user_id)
    data: dict = {}
    if action in ("approve_extension", "deny_extension"):
        apply_action(s, case.id, "request_extension", world.w1_actor, comment="需要协调物业", now=now - H)
    if action in ("reassign", "escalate"):
        data = {"worker_id": world.w2, "level": "cell", "reason": "backup worker takes over"}
    if action == "mark_duplicate":
        original = _case(s, world, "filed")
        data = {"duplicate_of_id": original.id}
    if action == "evaluate":
        data = {"satisfaction": 5}
    if action in ("confirm", "refute"):  # a report waiting for on-site verification by W1
        case.confirm_worker_id, case.confirm_deadline_at = world.w1, now + H
        s.flush()
        if action == "confirm":
            from gridmap.incidents.models import CasePhoto

            photo = CasePhoto(case_id=case.id, filename="x.jpg", content_type="image/jpeg", size=3, sha256="0" * 64,
                              stored_path="x.jpg")
            s.add(photo)
            s.flush()
            data = {"photo_id": photo.id}
    if action == "supervise":
        data = {"deadline": (now + 5 * D).isoformat()}
    return case, data


def _actors(world: World, tr) -> list[tuple[str, Actor]]:
    by = {"assignee": world.w1_actor, "worker": world.w1_actor, "supervisor": world.street, "system": SYSTEM,
          "reporter": world.reporter, "confirmer": world.w1_actor, "overseer": world.street}
    return [(token, by[token]) for token in sorted(tr.who)]


def _check_effect(s, world: World, action: str, frm: str, before: dict, case: Case, now: dt.datetime) -> None:
    if action == "file":
        assert case.filed_at == now
    elif action == "dispatch":
        assert case.dispatched_at == now and case.deadline_at == now + 2 * D
        assert case.assignee_worker_id == world.w1 and case.accepted_at is None
    elif action == "accept":
        assert case.accepted_at == now
    elif action == "return":
        assert case.return_count == 1 and case.assignee_worker_id is None
        assert case.dispatched_at is None and case.deadline_at is None and case.accepted_at is None
    elif action == "reassign":
        assert case.assignee_worker_id == world.w2 and case.accepted_at is None
        assert case.deadline_at == before["deadline_at"] and case.escalation_level == 0
    elif action == "escalate":
        assert case.assignee_worker_id == world.w2 and case.escalation_level == 1
        assert case.deadline_at == now + 2 * D  # a new limit from now at the new level
        assert (case.accepted_at is None) == (frm == "dispatched") and case.status == frm
    elif action == "request_extension":
        assert case.extension_pending and case.extension_count == 0
    elif action == "approve_extension":
        assert not case.extension_pending and case.extension_count == 1
        assert case.deadline_at == before["deadline_at"] + 2 * D
    elif action == "deny_extension":
        assert not case.extension_pending and case.extension_count == 0
        assert case.deadline_at == before["deadline_at"]
    elif action == "park":
        pass
    elif action == "unpark":
        park = [e for e in _events(s, case.id) if e.action == "park"][-1]
        assert case.status == park.from_status == "in_progress"
        assert case.deadline_at == before["deadline_at"] + (now - park.at)
    elif action == "feedback":
        assert case.handled_at == now and case.handled_by_worker_id == world.w1
    elif action == "self_handle":
        assert case.self_handled and case.handled_by_worker_id == world.w1 == case.assignee_worker_id
        assert case.filed_at == case.handled_at == now and case.deadline_at is None
    elif action == "verify_pass":
        assert case.closed_at == now and case.closed_on_time is True
    elif action == "verify_fail":
        assert case.rework_count == 1 and case.handled_at is None and case.assignee_worker_id == world.w1
    elif action == "evaluate":
        assert case.satisfaction == 5 and case.evaluated_at == now
    elif action == "supervise":
        assert case.supervised is True and case.deadline_at == now + 5 * D and case.status == frm
        ev = _events(s, case.id)[-1]
        assert json.loads(ev.data)["deadline_at"] and json.loads(ev.data)["note"] == "supervise 测试"
    elif action == "mark_duplicate":
        assert case.duplicate_of_id is not None and case.duplicate_of_id != case.id
    elif action == "confirm":
        assert case.confirmed_at == now and case.status == "reported"
        assert _events(s, case.id)[-1].on_time is True  # within the hour it was given
    elif action == "refute":
        assert case.confirmed_at == now and case.status == "rejected"
    elif action in ("reject", "submit"):
        pass
    else:  # a new action must get a check here
        raise AssertionError(f"no effect check for {action}")


def test_every_allowed_transition(sessionmaker, world):
    done = set()
    for action, frm in PAIRS:
        tr = TRANSITIONS[action][frm]
        for token, actor in _actors(world, tr):
            with transaction(sessionmaker) as s:
                now = T0 + 1 * D
                case, data = _prepare(s, world, action, frm, now)
                assert case.status == frm, (action, frm)
                before = {"version": case.version, "deadline_at": case.deadline_at}
                n_events = len(_events(s, case.id))
                assert action in allowed_actions(case, actor), (action, frm, token)
                apply_action(s, case.id, action, actor, comment=f"{action} 测试", data=data, now=now,
                             lon=122.005, lat=30.035)
                s.refresh(case)
                expected = "in_progress" if tr.to == PREVIOUS else tr.to
                assert case.status == expected, (action, frm, token)
                assert case.version == before["version"] + 1
                evs = _events(s, case.id)
                assert len(evs) == n_events + 1
                ev = evs[-1]
                assert (ev.action, ev.from_status, ev.to_status) == (action, frm, expected)
                assert ev.at == now and ev.actor_name == actor.name and ev.actor_user_id == actor.user_id
                assert (ev.lon, ev.lat) == (122.005, 30.035) and ev.comment == f"{action} 测试"
                _check_effect(s, world, action, frm, before, case, now)
                done.add((action, frm, token))
    assert {(a, f) for a, f, _ in done} == set(PAIRS)
    assert len(done) == sum(len(tr.who) for t in TRANSITIONS.values() for tr in t.values())


# --------------------------------------------------------------------------- forbidden transitions
def _unchanged(sessionmaker, case_id: int, version: int, n_events: int) -> None:
    with sessionmaker() as s:
        assert s.get(Case, case_id).version == version
        assert s.scalar(select(func.count()).where(CaseEvent.case_id == case_id)) == n_events


def test_forbidden_transitions_change_nothing(sessionmaker, world):
    with transaction(sessionmaker) as s:
        reported = _case(s, world, "reported").id
        dispatched = _case(s, world, "dispatched").id
        in_progress = _case(s, world, "in_progress").id
        closed = _case(s, world, "closed").id
    cases = {reported: (1, 1), dispatched: (3, 3), in_progress: (4, 4), closed: (6, 6)}

    def refused(exc, case_id, action, actor, match, **kw):
        with sessionmaker() as s:
            with pytest.raises(exc, match=match):
                apply_action(s, case_id, action, actor, **kw)
            s.rollback()
        _unchanged(sessionmaker, case_id, *cases[case_id])

    # close from reported: there is no "close" action, and verify_pass needs a handled case
    refused(ActionInputError, reported, "close", world.street, "unknown action 'close'")
    refused(TransitionError, reported, "verify_pass", world.street, "it is reported")
    refused(TransitionError, closed, "accept", world.w1_actor, "allowed only from dispatched")
    # accept by a worker who sees the case (backup of the cell) but is not the assignee
    refused(PermissionDenied, dispatched, "accept", world.w2_actor, "only the assignee")
    # a worker of another cell, a supervisor of another street: the case does not exist for them
    with sessionmaker() as s:
        from gridmap.assign.models import Worker

        w3 = worker_actor(s.get(Worker, world.w3))
    refused(CaseNotFound, dispatched, "accept", w3, "no case")
    refused(CaseNotFound, dispatched, "reassign", world.east, "no case", data={"worker_id": world.w2})
    # workers do not file, the system does not check
    refused(PermissionDenied, reported, "file", world.w1_actor, "only")
    refused(PermissionDenied, closed, "evaluate", world.w1_actor, "may not evaluate",
            data={"satisfaction": 5})
    # missing reason / bad data
    refused(ActionInputError, in_progress, "feedback", world.w1_actor, "needs a comment")
    refused(ActionInputError, in_progress, "return", world.w1_actor, "needs a comment", comment="  ")
    refused(ActionInputError, closed, "evaluate", world.street, "satisfaction from 1", data={"satisfaction": 6})
    refused(ActionInputError, dispatched, "reassign", world.street, "already assigned",
            data={"worker_id": world.w1})
    refused(ActionInputError, dispatched, "reassign", world.street, "no worker with id",
            data={"worker_id": 999999})
    refused(TransitionError, dispatched, "approve_extension", world.street, "no extension request")
    refused(ActionInputError, in_progress, "feedback", world.w1_actor, "lon must be", comment="done", lon=500.0)


def test_the_verifier_must_not_be_the_handler(sessionmaker, world):
    with transaction(sessionmaker) as s:
        from gridmap.assign.models import Worker
        from gridmap.incidents.models import Category

        # the community head is assigned (fallback), handles it, then tries to check their own work
        case = make_case(s, "handled", category=s.get(Category, world.cat_id), worker=s.get(Worker, world.head_worker),
                         worker_as=world.head)
        cid = case.id
        assert "verify_pass" not in allowed_actions(case, world.head)
        assert "verify_pass" in allowed_actions(case, world.street)
    by_worker = world.head
    # same user, acting without the worker link: caught by the user id of the feedback event
    by_user = Actor(name="赵刚", role="community", user_id=world.head.user_id, area_id=world.head.area_id)
    for actor in (by_worker, by_user):
        for action in ("verify_pass", "verify_fail"):
            with sessionmaker() as s:
                with pytest.raises(TransitionError, match="verifier must not be the handler") as ei:
                    apply_action(s, cid, action, actor, comment="复核")
                assert not isinstance(ei.value, ConflictError)
                s.rollback()
    with sessionmaker() as s:
        with pytest.raises(PermissionDenied):
            apply_action(s, cid, "verify_pass", SYSTEM)
    with transaction(sessionmaker) as s:
        apply_action(s, cid, "verify_pass", world.street, now=T0 + 5 * H)
    with sessionmaker() as s:
        assert s.get(Case, cid).status == "closed"


def test_allowed_actions_follow_role_and_state(sessionmaker, world):
    with transaction(sessionmaker) as s:
        case = _case(s, world, "dispatched")
        assert allowed_actions(case, world.w1_actor) == ["accept", "return", "request_extension"]
        assert allowed_actions(case, world.w2_actor) == []          # sees it, may do nothing
        assert set(allowed_actions(case, world.street)) == {"reassign", "escalate", "park", "supervise"}
        assert allowed_actions(case, world.east) == []              # out of scope
        assert "supervise" not in allowed_actions(case, world.head)  # 督办 comes from the community up
        assert set(allowed_actions(case, SYSTEM)) == {"reassign", "escalate"}
        apply_action(s, case.id, "request_extension", world.w1_actor, comment="等待配件", now=T0 + 5 * H)
        assert "request_extension" not in allowed_actions(case, world.w1_actor)
        assert {"approve_extension", "deny_extension"} <= set(allowed_actions(case, world.street))


# --------------------------------------------------------------------------- a whole life with history
def test_full_life_with_extension_rework_and_history(sessionmaker, world):
    from gridmap.assign.service import import_calendar_csv
    from gridmap.incidents.categories import DEFAULT_PATH

    with transaction(sessionmaker) as s:
        from gridmap.incidents.models import Category

        import_calendar_csv(s, DEFAULT_PATH.parent / "calendar" / "cn-2026.csv")  # working days need the year
        cat = make_category(s, "test.dispute", kind="dispute", limit=(3, "working_days"))
        child = make_category(s, "test.dispute.neighbour", kind="dispute", limit=None, parent=cat)
        case = _case(s, world, "reported")
        case.category_id = child.id
        s.flush()
        s.expire(case, ["category"])
        cid = case.id
        fri = dt.datetime(2026, 3, 6, 2, 0, tzinfo=dt.timezone.utc)  # Friday 10:00 Shanghai
        apply_action(s, cid, "file", SYSTEM, now=fri)
        apply_action(s, cid, "dispatch", SYSTEM, now=fri)
        expected_deadline = add_limit(s, fri, 3, "working_days")   # inherited from the parent
        assert s.get(Case, cid).deadline_at == expected_deadline
        assert expected_deadline.weekday() == 2  # Wednesday (3 working days after a Friday)
        apply_action(s, cid, "accept", world.w1_actor, now=fri + H)
        apply_action(s, cid, "request_extension", world.w1_actor, comment="双方不在家", now=fri + 2 * H)
        apply_action(s, cid, "approve_extension", world.street, now=fri + 3 * H)
        extended = add_limit(s, expected_deadline, 3, "working_days")
        assert s.get(Case, cid).deadline_at == extended
        apply_action(s, cid, "feedback", world.w1_actor, comment="已调解", now=fri + 4 * H, lon=122.01, lat=30.03)
        apply_action(s, cid, "verify_fail", world.street, comment="一方不认可", now=fri + 5 * H)
        apply_action(s, cid, "feedback", world.w1_actor, comment="再次调解，签协议", now=fri + 6 * H)
        apply_action(s, cid, "submit", SYSTEM, now=fri + 7 * H)
        late = extended + H
        apply_action(s, cid, "verify_pass", world.street, now=late)
        c = apply_action(s, cid, "evaluate", world.street, data={"satisfaction": "4"}, now=late + D)
        assert (c.status, c.rework_count, c.extension_count, c.satisfaction) == ("evaluated", 1, 1, 4)
        assert c.closed_on_time is False and c.overdue is True and c.closed_at == late
        evs = _events(s, cid)
        assert [e.seq for e in evs] == list(range(1, len(evs) + 1))
        assert [e.action for e in evs] == ["report", "file", "dispatch", "accept", "request_extension",
                                           "approve_extension", "feedback", "verify_fail", "feedback", "submit",
                                           "verify_pass", "evaluate"]
        dispatch = json.loads(evs[2].data)
        assert dispatch["limit"] == {"value": 3.0, "unit": "working_days", "from_category": "test.dispute"}
        assert [e.to_status for e in evs][-4:] == ["handled", "verifying", "closed", "evaluated"]
        assert c.version == len(evs)  # one version per action (+1 at creation)


def test_return_clears_the_assignee_and_redispatch_needs_one(sessionmaker, world):
    with transaction(sessionmaker) as s:
        case = _case(s, world, "in_progress")
        cid = case.id
        apply_action(s, cid, "return", world.w1_actor, comment="不属于本网格", now=T0 + 5 * H)
        with pytest.raises(TransitionError, match="has no assignee"):
            apply_action(s, cid, "dispatch", world.street, now=T0 + 6 * H)
        # the west street may not name (nor dispatch to) the east street's worker: as if unknown
        with pytest.raises(ActionInputError, match=f"no worker with id {world.w3}"):
            apply_action(s, cid, "dispatch", world.street, data={"worker_id": world.w3}, now=T0 + 6 * H)
        city = Actor(name="市中心", role="city")
        c = apply_action(s, cid, "dispatch", city, data={"worker_id": world.w3, "reason": "东街道网格"},
                         now=T0 + 6 * H)
        assert (c.status, c.assignee_worker_id, c.return_count) == ("dispatched", world.w3, 1)
        assert c.deadline_at == T0 + 6 * H + 2 * D
        ret = [e for e in _events(s, cid) if e.action == "return"][0]
        assert json.loads(ret.data)["returned_from_worker_id"] == world.w1


def test_escalate_climbs_one_level_per_limit(sessionmaker, world):
    with transaction(sessionmaker) as s:
        case = _case(s, world, "in_progress")
        cid, first_deadline = case.id, case.deadline_at
        late = first_deadline + H
        c = apply_action(s, cid, "escalate", SYSTEM, now=late)  # no new assignee: the worker keeps it
        assert (c.status, c.escalation_level, c.overdue, c.assignee_worker_id) == ("in_progress", 1, True, world.w1)
        assert c.deadline_at == late + 2 * D
        with pytest.raises(ActionInputError, match="at most 3, got 5"):
            apply_action(s, cid, "escalate", SYSTEM, data={"escalation_level": 5}, now=late + H)
        c = apply_action(s, cid, "escalate", SYSTEM, data={"escalation_level": 3, "worker_id": world.w3,
                                                           "level": "district", "reason": "属地兜底"}, now=late + H)
        assert (c.escalation_level, c.assignee_worker_id, c.assignee_level) == (3, world.w3, "district")
        with pytest.raises(TransitionError, match="already escalated to the district"):
            apply_action(s, cid, "escalate", SYSTEM, now=late + 2 * H)
        ev = json.loads(_events(s, cid)[-1].data)
        assert (ev["from_level"], ev["to_level"], ev["from_worker_id"], ev["to_worker_id"]) == (1, 3, world.w1, world.w3)


def test_self_handle_mark_duplicate_and_unpark(sessionmaker, world):
    with transaction(sessionmaker) as s:
        from gridmap.assign.models import Worker
        from gridmap.incidents.models import Category

        c = make_case(s, "closed", category=s.get(Category, world.cat_id), worker=s.get(Worker, world.w1),
                      worker_as=world.w1_actor, self_handled=True)
        assert c.self_handled and c.closed_on_time is True and c.dispatched_at is None
        first = _case(s, world, "filed")
        dup = _case(s, world, "reported")
        with pytest.raises(ActionInputError, match="itself"):
            apply_action(s, dup.id, "mark_duplicate", world.street, data={"duplicate_of_id": dup.id})
        apply_action(s, dup.id, "mark_duplicate", world.street, data={"duplicate_of_id": first.id})
        assert (dup.status, dup.duplicate_of_id) == ("rejected", first.id)
        # parked from filed comes back to filed
        apply_action(s, first.id, "park", world.street, comment="需专项资金", now=T0 + D)
        assert first.status == "parked"
        apply_action(s, first.id, "unpark", world.street, now=T0 + 3 * D)
        assert first.status == "filed" and first.deadline_at is None


# --------------------------------------------------------------------------- concurrency
def test_two_sessions_same_version_only_one_wins(sessionmaker, world):
    with transaction(sessionmaker) as s:
        cid = _case(s, world, "dispatched").id
    with sessionmaker() as s1, sessionmaker() as s2:
        c1, c2 = s1.get(Case, cid), s2.get(Case, cid)
        v = c1.version
        assert c2.version == v  # both have read the case at the same version
        apply_action(s1, cid, "accept", world.w1_actor, expected_version=v)
        s1.commit()
        with pytest.raises(ConflictError, match=f"you expected {v}"):
            apply_action(s2, cid, "accept", world.w1_actor, expected_version=v)
        s2.rollback()
    with sessionmaker() as s:
        c = s.get(Case, cid)
        assert (c.status, c.version) == ("in_progress", v + 1)
        assert [e.action for e in _events(s, cid)].count("accept") == 1


def test_the_guarded_update_loses_to_a_write_between_read_and_update(sessionmaker, world):
    """Session 2 reads the case, then session 1 accepts and commits just before session 2's UPDATE
    runs: the UPDATE matches no row (version and status changed) and nothing of session 2 is written."""
    with transaction(sessionmaker) as s:
        cid = _case(s, world, "dispatched").id
    interleaved = []

    def other_wins_first(state):
        if state.is_update and not interleaved:
            interleaved.append(True)
            with transaction(sessionmaker) as s1:
                apply_action(s1, cid, "accept", world.w1_actor, comment="我来")

    with sessionmaker() as s2:
        event.listen(s2, "do_orm_execute", other_wins_first)
        v = s2.get(Case, cid).version
        with pytest.raises(ConflictError, match=f"changed by another action .*version {v}, dispatched"):
            apply_action(s2, cid, "accept", world.w1_actor, comment="我也来", expected_version=v)
        s2.rollback()
    assert interleaved == [True]
    with sessionmaker() as s:
        c = s.get(Case, cid)
        assert (c.status, c.version) == ("in_progress", v + 1)
        accepts = [e for e in _events(s, cid) if e.action == "accept"]
        assert [e.comment for e in accepts] == ["我来"]


@pytest.mark.parametrize("backend", ["postgis"], indirect=True)
def test_threads_racing_on_postgis_only_one_wins(sessionmaker, world, backend):
    with transaction(sessionmaker) as s:
        cids = [_case(s, world, "filed").id for _ in range(3)]
    n = 4
    for cid in cids:
        barrier = threading.Barrier(n)
        results: list[str] = []
        lock = threading.Lock()

        def run():
            with sessionmaker() as s:
                v = s.get(Case, cid).version
                barrier.wait()
                try:
                    apply_action(s, cid, "dispatch", SYSTEM, expected_version=v)
                    s.commit()
                    out = "ok"
                except ConflictError:
                    s.rollback()
                    out = "conflict"
                except Exception as e:  # noqa: BLE001 - reported in the assertion
                    s.rollback()
                    out = f"{type(e).__name__}: {e}"
            with lock:
                results.append(out)

        threads = [threading.Thread(target=run) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == ["conflict"] * (n - 1) + ["ok"], results
        with sessionmaker() as s:
            assert [e.action for e in _events(s, cid)].count("dispatch") == 1
            assert s.get(Case, cid).version == 3


def test_supervision_by_an_overseer_with_note_and_new_deadline(sessionmaker, world):
    now = T0 + 1 * D
    with transaction(sessionmaker) as s:
        cid = _case(s, world, "dispatched").id
        old_deadline = s.get(Case, cid).deadline_at
    for who, exc, match, kw in (
            (world.head, PermissionDenied, "only a community, street, district or city user", {"comment": "请加快"}),
            (world.w1_actor, PermissionDenied, "may not supervise", {"comment": "请加快"}),
            (world.east, CaseNotFound, "no case", {"comment": "请加快"}),
            (world.street, ActionInputError, "needs a comment", {}),
            (world.street, ActionInputError, "data.deadline must be a date", {"comment": "x", "data": {"deadline": "soon"}}),
            (world.street, ActionInputError, "must be in the future", {"comment": "x", "data": {"deadline": "2020-01-01"}}),
            (world.street, ActionInputError, "within a year", {"comment": "x", "data": {"deadline": "2099-01-01"}})):
        with sessionmaker() as s:
            with pytest.raises(exc, match=match):
                apply_action(s, cid, "supervise", who, now=now, **kw)
            s.rollback()
        with sessionmaker() as s:
            c = s.get(Case, cid)
            assert not c.supervised and c.deadline_at == old_deadline
    with transaction(sessionmaker) as s:
        c = apply_action(s, cid, "supervise", world.street, comment="群众反映强烈，限期办结", now=now)
        assert c.supervised and c.deadline_at == old_deadline and c.status == "dispatched"
        day = (now + 3 * D).date().isoformat()  # a date: 24:00 of that day in Shanghai
        c = apply_action(s, cid, "supervise", world.street, comment="再次督办", data={"deadline": day}, now=now + H)
        expected = dt.datetime.combine((now + 4 * D).date(), dt.time(), tzinfo=dt.timezone(dt.timedelta(hours=8)))
        assert c.deadline_at == expected
        evs = [e for e in _events(s, cid) if e.action == "supervise"]
        assert [e.comment for e in evs] == ["群众反映强烈，限期办结", "再次督办"]
        assert json.loads(evs[0].data)["first"] is True and json.loads(evs[1].data)["first"] is False


def test_the_evaluation_never_comes_from_the_handler(sessionmaker, world):
    """回访: a supervisor or the reporter records it; the head who handled the case may not, even as a supervisor."""
    with transaction(sessionmaker) as s:
        from gridmap.assign.models import Worker
        from gridmap.incidents.models import Category

        case = make_case(s, "closed", category=s.get(Category, world.cat_id), worker=s.get(Worker, world.head_worker),
                         worker_as=world.head, reporter_user_id=world.reporter.user_id)
        cid = case.id
        assert "evaluate" not in allowed_actions(case, world.head)
        assert "evaluate" in allowed_actions(case, world.reporter)
    with sessionmaker() as s:
        with pytest.raises(TransitionError, match="not the handler"):
            apply_action(s, cid, "evaluate", world.head, data={"satisfaction": 5}, now=T0 + 2 * D)
        s.rollback()
    with transaction(sessionmaker) as s:
        c = apply_action(s, cid, "evaluate", world.reporter, data={"satisfaction": 4}, now=T0 + 2 * D)
        assert c.status == "evaluated" and c.satisfaction == 4
