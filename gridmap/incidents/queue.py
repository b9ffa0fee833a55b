"""The manual-placement queue: cases reported by an address the register could not match with
confidence, waiting for a supervisor to place them by hand.

Owns: which queued cases a supervisor sees (city and admin: all of them; district, street,
community staff and grid heads: those whose best register candidates lie in their area; a case
with no candidate at all only at city level) and the candidates shown for each (the register's
best matches, with score, point and cell). Placing goes through ``intake.place_case``, which
locates the chosen point, routes the case and records the step as usual.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.boundaries.models import Area
from gridmap.incidents.intake import PLACEABLE_STATUSES, PLACING_ROLES
from gridmap.incidents.models import Case
from gridmap.registry.addresses import match_address

#: queued cases looked at per page view (the newest first)
QUEUE_LIMIT = 500
AREA_COLUMNS = {"district": "district_id", "street": "street_id", "community": "community_id"}


def _actor_area(session: Session, actor: Actor) -> Area | None:
    return session.get(Area, actor.area_id) if actor.area_id else None


def queued_cases(session: Session, actor: Actor, *, candidates: int = 3) -> list[dict]:
    """The queued cases ``actor`` may place, newest first, each with its best candidates."""
    if actor.role not in PLACING_ROLES:
        return []
    everything = actor.role in ("city", "admin")
    area = None if everything else _actor_area(session, actor)
    if not everything and (area is None or area.level not in AREA_COLUMNS):
        return []
    cases = list(session.scalars(select(Case).where(Case.placement == "queue", Case.cell_id.is_(None),
                                                    Case.status.in_(PLACEABLE_STATUSES))
                                 .order_by(Case.reported_at.desc(), Case.id.desc()).limit(QUEUE_LIMIT)))
    cells = {}
    out = []
    for c in cases:
        found = match_address(session, c.address or "", limit=candidates) if c.address else []
        mine = everything or any(getattr(a, AREA_COLUMNS[area.level]) == area.id for a, _ in found)
        if not mine:
            continue
        cells.update({a.cell_id: None for a, _ in found if a.cell_id})
        out.append({"case": c, "candidates": [{"address": a, "score": s} for a, s in found]})
    if cells:
        names = dict(session.execute(select(Area.id, Area.name).where(Area.id.in_(list(cells)))).all())
        for row in out:
            for cand in row["candidates"]:
                cand["cell_name"] = names.get(cand["address"].cell_id)
    return out
