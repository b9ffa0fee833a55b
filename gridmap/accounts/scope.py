"""What a user may see: the scope rules, as SQL filters the services add to their queries.

Owns: worker → the cells they are responsible for now (and cases assigned to them);
head/community → their community; street → their street; district → their district;
city/admin/system → everything; department → cases routed to it. A case outside the scope is
answered as if it did not exist (404), so ids cannot be probed. Workers, too: an area role sees
the workers of its subtree (their home area or a cell they answer for lies in it), a worker those
of their own cells, a department its own staff (``worker_filter``, ``worker_visible``).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import false, or_, select, true
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.assign.models import Responsibility, Worker
from gridmap.boundaries.models import Area
from gridmap.incidents.models import Case

def worker_cell_ids(session: Session, worker_id: int, today: dt.date | None = None) -> list[int]:
    """Cells the worker is responsible for today (primary or backup)."""
    today = today or dt.date.today()
    return list(session.scalars(
        select(Responsibility.cell_id).where(
            Responsibility.worker_id == worker_id, Responsibility.valid_from <= today,
            or_(Responsibility.valid_to.is_(None), Responsibility.valid_to > today))))


def scope_filter(session: Session, actor: Actor, *, cell, community, street, district, assignee_worker,
                 assignee_department=None):
    """A WHERE clause restricting rows of any table that carries the area columns (cases,
    hazards, …) to what ``actor`` may see. The columns are passed in, the rules live here."""
    role = actor.role
    if role in ("city", "admin", "system"):
        return true()
    if role == "worker":
        if actor.worker_id is None:
            return false()
        cells = worker_cell_ids(session, actor.worker_id)
        return or_(assignee_worker == actor.worker_id, cell.in_(cells) if cells else false())
    if role == "department":
        if assignee_department is None or not actor.department_id:
            return false()
        return assignee_department == actor.department_id
    if actor.area_id is None:
        return false()
    area = session.get(Area, actor.area_id)
    by_level = {"community": community, "street": street, "district": district}
    if area is None or area.level not in by_level:
        return false()
    return by_level[area.level] == area.id


def case_filter(session: Session, actor: Actor):
    """A WHERE clause restricting Case rows to what ``actor`` may see."""
    return scope_filter(session, actor, cell=Case.cell_id, community=Case.community_id, street=Case.street_id,
                        district=Case.district_id, assignee_worker=Case.assignee_worker_id,
                        assignee_department=Case.assignee_department_id)


def area_ids_in_scope(session: Session, actor: Actor) -> set[int] | None:
    """Ids of every area (any level) the actor may see; None means everything."""
    if actor.role in ("city", "admin", "system"):
        return None
    if actor.role == "worker":
        cells = set(worker_cell_ids(session, actor.worker_id)) if actor.worker_id else set()
        return cells | _ancestors(session, cells)
    if actor.area_id is None:
        return set()
    ids = {actor.area_id}
    frontier = {actor.area_id}
    while frontier:
        frontier = set(session.scalars(select(Area.id).where(Area.parent_id.in_(frontier))))
        ids |= frontier
    return ids | _ancestors(session, {actor.area_id})


def _ancestors(session: Session, ids: set[int]) -> set[int]:
    out: set[int] = set()
    frontier = set(ids)
    while frontier:
        parents = set(session.scalars(select(Area.parent_id).where(Area.id.in_(frontier), Area.parent_id.isnot(None))))
        frontier = parents - out
        out |= parents
    return out


def subtree_ids(session: Session, area_id: int) -> set[int]:
    """The area and every area below it."""
    ids = {area_id}
    frontier = {area_id}
    while frontier:
        frontier = set(session.scalars(select(Area.id).where(Area.parent_id.in_(frontier)))) - ids
        ids |= frontier
    return ids


def _current_responsible(cells, today: dt.date):
    return select(Responsibility.worker_id).where(
        Responsibility.cell_id.in_(cells), Responsibility.valid_from <= today,
        or_(Responsibility.valid_to.is_(None), Responsibility.valid_to > today))


def worker_filter(session: Session, actor: Actor):
    """A WHERE clause restricting Worker rows to the workers ``actor`` may see (and name, and
    dispatch to): see the module docstring."""
    role = actor.role
    if role in ("city", "admin", "system"):
        return true()
    today = dt.date.today()
    if role == "worker":
        if actor.worker_id is None:
            return false()
        cells = worker_cell_ids(session, actor.worker_id, today)
        return or_(Worker.id == actor.worker_id,
                   Worker.id.in_(_current_responsible(cells, today)) if cells else false())
    if role == "department":
        return Worker.department_id == actor.department_id if actor.department_id else false()
    if actor.area_id is None:
        return Worker.id == actor.worker_id if actor.worker_id else false()
    areas = subtree_ids(session, actor.area_id)
    return or_(Worker.area_id.in_(areas), Worker.id.in_(_current_responsible(areas, today)),
               *([Worker.id == actor.worker_id] if actor.worker_id else []))


def worker_visible(session: Session, actor: Actor, worker_id: int | None) -> bool:
    if worker_id is None:
        return False
    if actor.role in ("city", "admin", "system") or actor.is_system:
        return True
    return session.scalar(select(Worker.id).where(Worker.id == worker_id, worker_filter(session, actor))) is not None
