"""What a user may see: the scope rules, as SQL filters the services add to their queries.

Owns: worker → the cells they are responsible for now (and cases assigned to them);
head/community → their community; street → their street; district → their district;
city/admin/system → everything; department → cases routed to it. A case outside the scope is
answered as if it did not exist (404), so ids cannot be probed.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import false, or_, select, true
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.assign.models import Responsibility
from gridmap.boundaries.models import Area
from gridmap.incidents.models import Case

_LEVEL_COLUMN = {"community": Case.community_id, "street": Case.street_id, "district": Case.district_id}


def worker_cell_ids(session: Session, worker_id: int, today: dt.date | None = None) -> list[int]:
    today = today or dt.date.today()
    return list(session.scalars(
        select(Responsibility.cell_id).where(
            Responsibility.worker_id == worker_id, Responsibility.valid_from <= today,
            or_(Responsibility.valid_to.is_(None), Responsibility.valid_to > today))))


def case_filter(session: Session, actor: Actor):
    """A WHERE clause restricting Case rows to what ``actor`` may see."""
    role = actor.role
    if role in ("city", "admin", "system"):
        return true()
    if role == "worker":
        if actor.worker_id is None:
            return false()
        cells = worker_cell_ids(session, actor.worker_id)
        return or_(Case.assignee_worker_id == actor.worker_id,
                   Case.cell_id.in_(cells) if cells else false())
    if role == "department":
        return Case.assignee_department_id == actor.department_id if actor.department_id else false()
    if actor.area_id is None:
        return false()
    area = session.get(Area, actor.area_id)
    if area is None or area.level not in _LEVEL_COLUMN:
        return false()
    return _LEVEL_COLUMN[area.level] == area.id


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
