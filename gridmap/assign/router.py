"""The router: who answers for a case.

Owns: the one answer to "who is responsible for cell X at time T" (``responsible_worker``), the
routing order for a new case (``route``: category department 权责清单 → the cell's worker on duty →
the community's head → the street's staff → the district's staff, 属地兜底; no cell → "unroutable",
never dropped) and the target of an escalation (``escalation_target``). Every answer comes with a
reason that names the cell and the worker, stored on the case as its routing snapshot: an
English text (``reason``) and a code with parameters (``code``, ``params``; ``REASON_CODES``) that
the pages render per language (``gridmap.web.reasons``).

Dates of responsibilities are Asia/Shanghai calendar dates; absences are instants.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case as sql_case
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from gridmap.assign.calendar import require_aware, local_date
from gridmap.assign.models import Absence, Department, Responsibility, Worker
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.incidents.models import Case, Category

ROUTE_LEVELS = ("cell", "community", "street", "district", "department", "unroutable")
#: escalation level → the area level that takes the case over
ESCALATION_LEVELS = {1: "community", 2: "street", 3: "district"}
#: worker roles that answer for an area of each level, most senior first
STAFF_ROLES = {"community": ("head", "community"), "street": ("street",), "district": ("district",)}
MAX_REASON = 300  # cases.route_reason
#: every routing reason code and its parameters
REASON_CODES = {
    "department": ("category", "department"),
    "unplaced": (),
    "unplaced.low_confidence": ("threshold",),
    "cell.primary": ("cell", "worker"),
    "cell.substitute": ("cell", "primary", "worker"),
    "cell.backup": ("cell", "primary", "worker"),
    "cell.backup_no_primary": ("cell", "worker"),
    "cell.nobody": ("cell",),
    "fallback.staff": ("level", "area", "worker", "cell"),
    "fallback.queue": ("level", "area", "cell"),
    "escalated.staff": ("level", "area", "worker", "escalation"),
    "escalated.queue": ("level", "area", "escalation"),
    "escalated.no_area": ("escalation",),
    "returned": ("by", "reason"),
}


@dataclass
class Route:
    worker_id: int | None
    department_id: int | None
    level: str  # "cell", "community", "street", "district", "department", "unroutable"
    reason: str
    code: str | None = None  # REASON_CODES
    params: dict | None = None

    def columns(self, *, clip=None) -> dict:
        """The case columns of this routing snapshot (text, code and JSON parameters)."""
        import json

        reason = (clip or _clip)(self.reason)
        return {"route_reason": reason, "route_reason_code": self.code,
                "route_reason_params": json.dumps(self.params, ensure_ascii=False) if self.params else None}


def _who(w: Worker) -> str:
    return f"{w.code} {w.name}"


def _absences(session: Session, worker_ids, at: dt.datetime) -> dict[int, list[Absence]]:
    """Absences covering ``at`` per worker, latest start first."""
    ids = list({i for i in worker_ids if i is not None})
    if not ids:
        return {}
    out: dict[int, list[Absence]] = {}
    for a in session.scalars(select(Absence).where(Absence.worker_id.in_(ids), Absence.start <= at,
                                                   Absence.end > at)
                             .order_by(Absence.start.desc(), Absence.id.desc())):
        out.setdefault(a.worker_id, []).append(a)
    return out


def _absent_now(at: dt.datetime):
    """Subquery: ids of workers away at ``at``."""
    return select(Absence.worker_id).where(Absence.start <= at, Absence.end > at)


def responsible_worker(session: Session, cell_id: int, at: dt.datetime) -> tuple[Worker | None, str]:
    """The one worker on duty for ``cell_id`` at ``at``, and why (see ``responsible_worker_coded``)."""
    worker, reason, _code, _params = responsible_worker_coded(session, cell_id, at)
    return worker, reason


def responsible_worker_coded(session: Session, cell_id: int, at: dt.datetime
                             ) -> tuple[Worker | None, str, str, dict]:
    """The one worker on duty for ``cell_id`` at ``at``, and why.

    Among the responsibilities valid on ``at``'s local date: the primary (the smallest worker code
    when there are several, a data error the reason mentions); when the primary is away, the
    absence's substitute if he is active and not away himself, else the first backup on duty (by
    worker code). Inactive workers are skipped. ``(None, reason, …)`` when nobody is on duty.
    Returns (worker, English reason, reason code, its parameters).
    """
    require_aware(at, "at")
    day = local_date(at)
    cell = session.get(Area, cell_id)
    if cell is None:
        raise ValueError(f"no area with id {cell_id}")
    where = f"cell {cell.code}"
    rows = session.execute(
        select(Responsibility.role, Worker)
        .join(Worker, Worker.id == Responsibility.worker_id)
        .where(Responsibility.cell_id == cell_id, Responsibility.valid_from <= day,
               or_(Responsibility.valid_to.is_(None), Responsibility.valid_to > day))
        .order_by(Worker.code, Responsibility.role)
    ).all()
    if not rows:
        return None, f"{where}: no worker responsible on {day.isoformat()}", "cell.nobody", {"cell": cell.code}
    inactive = sorted({w.code for _, w in rows if not w.active})
    primaries = [w for role, w in rows if role == "primary" and w.active]
    primary_ids = {w.id for w in primaries}
    backups: list[Worker] = []
    for role, w in rows:  # the other primaries (data error) act as backups, then the backups
        if w.active and w.id not in primary_ids and all(b.id != w.id for b in backups):
            backups.append(w)
    note = f" (inactive: {', '.join(inactive)})" if inactive else ""

    if primaries:
        primary, others = primaries[0], primaries[1:]
        if others:
            note += (f" (several primaries: {', '.join(w.code for w in primaries)}; "
                     f"took the smallest code)")
            backups = others + backups
        away = _absences(session, [primary.id] + [b.id for b in backups], at)
        if primary.id not in away:
            return (primary, f"{where}: primary worker {_who(primary)}{note}", "cell.primary",
                    {"cell": cell.code, "worker": _who(primary)})
        lead = f"{where}: primary {primary.code} on leave"
        tried: list[str] = []
        for absence in away[primary.id]:
            if absence.substitute_id is None:
                continue
            sub = session.get(Worker, absence.substitute_id)
            if sub is None or not sub.active:
                tried.append(f"substitute {sub.code if sub else absence.substitute_id} inactive")
                continue
            if sub.id in away or _absences(session, [sub.id], at):
                tried.append(f"substitute {sub.code} also away")
                continue
            return (sub, f"{lead}, substitute {_who(sub)}{note}", "cell.substitute",
                    {"cell": cell.code, "primary": primary.code, "worker": _who(sub)})
        extra = f" ({'; '.join(tried)})" if tried else ""
        for b in backups:
            if b.id not in away:
                return (b, f"{lead}{extra}, backup {_who(b)}{note}", "cell.backup",
                        {"cell": cell.code, "primary": primary.code, "worker": _who(b)})
        return None, f"{lead}{extra}, no substitute or backup on duty{note}", "cell.nobody", {"cell": cell.code}

    away = _absences(session, [b.id for b in backups], at)
    for b in backups:
        if b.id not in away:
            return (b, f"{where}: no active primary, backup {_who(b)}{note}", "cell.backup_no_primary",
                    {"cell": cell.code, "worker": _who(b)})
    return None, f"{where}: no active primary and no backup on duty{note}", "cell.nobody", {"cell": cell.code}



#: the level of an answer of the responsible-worker rule, by its reason code
LEVEL_OF_CODE = {"cell.primary": "primary", "cell.substitute": "substitute", "cell.backup": "substitute",
                 "cell.backup_no_primary": "substitute", "cell.nobody": "none"}


def responsible_on_duty(session: Session, cell_id: int, at: dt.datetime) -> tuple[Worker | None, str, str]:
    """The one worker on duty for ``cell_id`` at ``at``, the level of the answer ("primary", or
    "substitute" for an absence's substitute or a backup, "none") and why."""
    worker, reason, code, _params = responsible_worker_coded(session, cell_id, at)
    return worker, LEVEL_OF_CODE.get(code, "none"), reason


def cell_fallback(session: Session, cell_id: int, at: dt.datetime, why: str) -> Route:
    """属地兜底 for a cell nobody is on duty for: its community's head, the street's, the district's staff."""
    return _fallback(session, _ancestors(session, cell_id), ("community", "street", "district"), at, "fallback", why)


def _ancestors(session: Session, area_id: int) -> dict[str, Area]:
    """The area and its parents keyed by level (cell, community, street, district)."""
    a0, a1, a2, a3 = (aliased(Area) for _ in range(4))
    row = session.execute(
        select(a0, a1, a2, a3).where(a0.id == area_id)
        .outerjoin(a1, a1.id == a0.parent_id).outerjoin(a2, a2.id == a1.parent_id)
        .outerjoin(a3, a3.id == a2.parent_id)
    ).first()
    if row is None:
        raise ValueError(f"no area with id {area_id}")
    return {a.level: a for a in row if a is not None}


def _staff_on_duty(session: Session, area: Area, at: dt.datetime) -> Worker | None:
    """The most senior active staff member of ``area`` (head before community staff, then by code)
    who is not away at ``at``."""
    roles = STAFF_ROLES[area.level]
    seniority = sql_case({r: i for i, r in enumerate(roles)}, value=Worker.role)
    return session.scalars(
        select(Worker).where(Worker.area_id == area.id, Worker.role.in_(roles), Worker.active.is_(True),
                             Worker.id.not_in(_absent_now(at)))
        .order_by(seniority, Worker.code).limit(1)
    ).first()


def _staff_label(w: Worker) -> str:
    return "head" if w.role == "head" else "staff"


def _fallback(session: Session, areas: dict[str, Area], levels: tuple[str, ...], at: dt.datetime,
              prefix: str, why: str, extra: dict | None = None) -> Route:
    """The first level in ``levels`` with a staff member on duty; the top level's queue otherwise."""
    skipped: list[str] = []
    for level in levels:
        area = areas.get(level)
        if area is None:
            continue
        w = _staff_on_duty(session, area, at)
        if w is not None:
            gap = f"; {', '.join(skipped)}" if skipped else ""
            return Route(w.id, None, level, _clip(f"{prefix}: {level} {area.code} {_staff_label(w)} {_who(w)} "
                                                  f"({why}{gap})"),
                         f"{prefix}.staff", {"level": level, "area": f"{area.code} {area.name}", "worker": _who(w),
                                             **(extra or {})})
        skipped.append(f"no staff on duty in {level} {area.code}")
    top = next((areas[lv] for lv in reversed(levels) if lv in areas), None)
    if top is None:
        return Route(None, None, "unroutable", _clip(f"{prefix}: no area above the cell ({why})"),
                     "escalated.no_area" if prefix == "escalated" else "unplaced", dict(extra or {}))
    return Route(None, None, top.level, _clip(f"{prefix}: {top.level} {top.code} queue, nobody on duty "
                                              f"(属地兜底; {why}; {', '.join(skipped)})"),
                 f"{prefix}.queue", {"level": top.level, "area": f"{top.code} {top.name}", **(extra or {})})


def _clip(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def route(session: Session, *, cell_id: int | None, category: Category | None, at: dt.datetime) -> Route:
    """Route a case: the category's department (权责清单), else the cell's worker on duty, else the
    community's head, the street's staff, the district's staff. No cell: level "unroutable"."""
    require_aware(at, "at")
    if category is not None and category.department_id is not None:
        dep = session.get(Department, category.department_id)
        return Route(None, category.department_id, "department",
                     _clip(f"category {category.code} → department {dep.code if dep else category.department_id}"
                           f" (权责清单)"), "department",
                     {"category": category.name, "department": dep.name if dep else str(category.department_id)})
    if cell_id is None:
        return Route(None, None, "unroutable", "no cell: waiting for manual placement", "unplaced", {})
    areas = _ancestors(session, cell_id)
    cell = areas.get("cell")
    if cell is None:
        raise ValueError(f"area {cell_id} is a {session.get(Area, cell_id).level}, not a cell")
    worker, reason, code, params = responsible_worker_coded(session, cell_id, at)
    if worker is not None:
        return Route(worker.id, None, "cell", _clip(reason), code, params)
    return _fallback(session, areas, ("community", "street", "district"), at, "fallback",
                     f"no worker on duty for cell {cell.code}: {reason.split(': ', 1)[-1]}", {"cell": cell.code})


def escalation_target(session: Session, case: Case, level: int, *, at: dt.datetime | None = None) -> Route:
    """Who takes ``case`` over at escalation ``level`` (1 community, 2 street, 3 district).

    The staff of that level's area on duty at ``at`` (default now): for a community its head
    (网格长) first. When nobody is on duty there the next level up takes it; at the top the
    district's queue. The areas come from the case (community_id, street_id, district_id), else
    from its cell.
    """
    if level not in ESCALATION_LEVELS:
        raise ValueError(f"escalation level must be 1 (community), 2 (street) or 3 (district), got {level!r}")
    at = at or utcnow()
    require_aware(at, "at")
    areas: dict[str, Area] = {}
    if case.cell_id is not None:
        areas = _ancestors(session, case.cell_id)
    for lv, area_id in (("community", case.community_id), ("street", case.street_id),
                        ("district", case.district_id)):
        if area_id is not None and (lv not in areas or areas[lv].id != area_id):
            found = session.get(Area, area_id)
            if found is not None:
                areas[lv] = found
    levels = tuple(ESCALATION_LEVELS[i] for i in range(level, 4))
    if not any(lv in areas for lv in levels):
        return Route(None, None, "unroutable", f"escalation to level {level}: the case has no "
                                               f"{ESCALATION_LEVELS[level]} or higher area",
                     "escalated.no_area", {"escalation": level})
    first = areas.get(ESCALATION_LEVELS[level])
    where = f"cell {areas['cell'].code}" if "cell" in areas else f"case {case.id}"
    why = f"overdue at {where}, escalation level {level}"
    if first is None:
        why += f"; no {ESCALATION_LEVELS[level]} known"
    return _fallback(session, areas, levels, at, "escalated", why, {"escalation": level})
