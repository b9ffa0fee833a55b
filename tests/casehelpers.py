"""Shared test helpers: categories, workers responsible for a cell, users with tokens, cases in a state.

Built on the ``loaded_city`` fixture (district 330999 → streets 330999001/002 → communities
330999001001 … → cells 330999001001001 …). Every helper takes an open Session and flushes; the
caller commits. Cases are driven to their state through the real life-cycle
(``gridmap.incidents.lifecycle.apply_action``) with chosen times, so their history and timestamps
are what production would write.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import SYSTEM, Actor
from gridmap.accounts.models import User
from gridmap.accounts.service import actor_for, create_token, create_user
from gridmap.assign.models import Department, Responsibility, Worker
from gridmap.boundaries.models import Area
from gridmap.incidents.history import append_event
from gridmap.incidents.lifecycle import apply_action
from gridmap.incidents.models import Case, Category

UTC = dt.timezone.utc
CELL = "330999001001001"        # west street, north-west community, first cell
OTHER_CELL = "330999002001001"  # east street
#: Monday 2 March 2026, 09:00 Asia/Shanghai
T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
#: an actor with the whole city in scope, for steps a test does not care about
ADMIN = Actor(name="测试管理员", role="admin")

#: the actions that bring a new (reported) case to each state
PATHS: dict[str, list[str]] = {
    "reported": [],
    "filed": ["file"],
    "rejected": ["reject"],
    "dispatched": ["file", "dispatch"],
    "in_progress": ["file", "dispatch", "accept"],
    "parked": ["file", "dispatch", "accept", "park"],
    "handled": ["file", "dispatch", "accept", "feedback"],
    "verifying": ["file", "dispatch", "accept", "feedback", "submit"],
    "closed": ["file", "dispatch", "accept", "feedback", "verify_pass"],
    "evaluated": ["file", "dispatch", "accept", "feedback", "verify_pass", "evaluate"],
}
_SELF_HANDLED = {"handled": ["self_handle"], "verifying": ["self_handle", "submit"],
                 "closed": ["self_handle", "verify_pass"], "evaluated": ["self_handle", "verify_pass", "evaluate"]}


def area(session: Session, code: str) -> Area:
    a = session.scalar(select(Area).where(Area.code == code))
    assert a is not None, f"no area {code}: is the loaded_city fixture in use?"
    return a


def area_chain(session: Session, cell_code: str) -> dict[str, Area]:
    """The cell and its community, street and district."""
    out = {}
    a: Area | None = area(session, cell_code)
    while a is not None:
        out[a.level] = a
        a = a.parent
    return out


def make_department(session: Session, code: str = "labour", name: str = "劳动保障监察大队") -> Department:
    d = Department(code=code, name=name)
    session.add(d)
    session.flush()
    return d


def make_category(session: Session, code: str = "test.litter", *, name: str | None = None, kind: str = "event",
                  limit: tuple[float, str] | None = (2, "natural_days"), parent: Category | None = None,
                  department: Department | None = None) -> Category:
    cat = Category(code=code, name=name or code, kind=kind, parent_id=parent.id if parent else None,
                   limit_value=limit[0] if limit else None, limit_unit=limit[1] if limit else None,
                   department_id=department.id if department else None, active=True)
    session.add(cat)
    session.flush()
    return cat


def make_worker(session: Session, code: str, *, cell_code: str | None = CELL, role: str = "worker",
                name: str | None = None, responsibility: str = "primary", area_code: str | None = None,
                valid_from: dt.date = dt.date(2020, 1, 1)) -> Worker:
    """A worker; with ``cell_code``, responsible for that cell (primary or backup) from ``valid_from``.

    The worker's area is ``area_code``, else the community of the cell.
    """
    home = area(session, area_code) if area_code else (area(session, cell_code).parent if cell_code else None)
    w = Worker(code=code, name=name or f"网格员{code}", role=role, employment="full_time",
               area_id=home.id if home else None, active=True)
    session.add(w)
    session.flush()
    if cell_code:
        session.add(Responsibility(worker_id=w.id, cell_id=area(session, cell_code).id, role=responsibility,
                                   valid_from=valid_from))
        session.flush()
    return w


def worker_actor(worker: Worker, user: User | None = None) -> Actor:
    """The actor of a worker acting on their phone (with their user, when given)."""
    if user is not None:
        return actor_for(user)
    return Actor(name=worker.name, role=worker.role, worker_id=worker.id,
                 area_id=None if worker.role == "worker" else worker.area_id, department_id=worker.department_id)


def make_user(session: Session, username: str, role: str, *, worker: Worker | None = None,
              area_code: str | None = None, department: Department | None = None) -> tuple[User, Actor]:
    """A user made by the accounts service, and its actor."""
    user = create_user(session, username, role, password="correct horse battery", area_code=area_code,
                       worker_code=worker.code if worker else None,
                       department_code=department.code if department else None)
    return user, actor_for(user)


def make_token(session: Session, username: str) -> str:
    return create_token(session, username, name="test")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_case(session: Session, state: str = "reported", *, category: Category, cell_code: str | None = CELL,
              worker: Worker | None = None, worker_as: Actor | None = None, supervisor: Actor = ADMIN,
              self_handled: bool = False, at: dt.datetime = T0, step: dt.timedelta = dt.timedelta(hours=1),
              times: dict[str, dt.datetime] | None = None, satisfaction: int = 4, **fields) -> Case:
    """A case reported at ``at`` and driven to ``state`` through the life-cycle.

    ``worker`` is the assignee (and handler); ``worker_as`` overrides the actor the worker acts as
    (e.g. with their user). File and dispatch are done by SYSTEM, accept/feedback/self_handle by the
    worker, the rest by ``supervisor``. Step i happens at ``times[action]`` or ``at + i * step``.
    ``fields`` are extra Case columns (source, reporter_user_id, …).
    """
    path = _SELF_HANDLED[state] if self_handled and state in _SELF_HANDLED else PATHS[state]
    if self_handled and state not in _SELF_HANDLED:
        raise ValueError(f"a self-handled case is at least handled, not {state}")
    if worker is None and any(a in path for a in ("dispatch", "self_handle")):
        raise ValueError(f"a {state} case needs a worker")
    chain = area_chain(session, cell_code) if cell_code else {}
    values = {"source": "patrol", "description": f"测试事件 ({state})", "placement": "point",
              "reported_at": at, "updated_at": at, "status": "reported", "version": 1,
              "cell_id": chain["cell"].id if chain else None,
              "community_id": chain["community"].id if chain else None,
              "street_id": chain["street"].id if chain else None,
              "district_id": chain["district"].id if chain else None,
              "assignee_worker_id": worker.id if worker and not self_handled else None,
              "assignee_level": "cell" if worker and not self_handled else None,
              "route_reason": f"cell {cell_code}, primary worker {worker.name}" if worker and not self_handled else None,
              **fields}
    case = Case(category_id=category.id, **values)
    session.add(case)
    session.flush()
    append_event(session, case, "report", SYSTEM, to_status="reported", at=at)
    w_actor = worker_as or (worker_actor(worker) if worker else None)
    times = times or {}
    for i, action in enumerate(path, start=1):
        now = times.get(action, at + i * step)
        actor = {"file": SYSTEM, "dispatch": SYSTEM, "accept": w_actor, "feedback": w_actor,
                 "self_handle": w_actor}.get(action, supervisor)
        apply_action(session, case.id, action, actor, now=now, comment=f"测试：{action}",
                     data={"satisfaction": satisfaction} if action == "evaluate" else None)
    return case
