"""The hazard register as a page reads it (隐患台账查询): the selection, its order, its counts.

Owns: checking a page's filters one by one (every bad value is reported with its field, and the
others still apply: a page shows a message, never an error page), the sort orders a register
offers, and one selection with its total and its counts by status, grade and overdue, all within
the reader's scope (``service.filter_clauses``). The map and the exports of a page use the same
filters, so the count, the list, the map and the files show the same hazards.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.db import utcnow
from gridmap.hazards.models import GRADES, HAZARD_STATUSES, Hazard, HazardType
from gridmap.hazards.service import FILTER_KEYS, HazardError, filter_clauses, overdue_clause

#: sort key → column; the default is the newest found first
SORTS = {"found": Hazard.found_at, "deadline": Hazard.rectify_deadline, "grade": Hazard.grade,
         "status": Hazard.status, "type": HazardType.code, "number": Hazard.number,
         "unit": Hazard.responsible_unit}
PAGE_FILTERS = tuple(k for k in FILTER_KEYS if k != "bbox")
MAX_PER_PAGE = 200


@dataclass
class Selection:
    hazards: list[Hazard]
    total: int
    page: int
    per_page: int
    sort: str
    descending: bool
    filters: dict
    counts: dict = field(default_factory=dict)


def check_filters(session: Session, actor: Actor, raw: dict, *, now: dt.datetime | None = None
                  ) -> tuple[dict, list[HazardError]]:
    """(the filters that are valid, the refusals of the others): each is tried on its own."""
    good, bad = {}, []
    for key in PAGE_FILTERS:
        v = raw.get(key)
        if v is None or str(v).strip() == "":
            continue
        v = str(v).strip()[:200]
        try:
            filter_clauses(session, actor, {key: v}, now=now)
        except HazardError as e:
            bad.append(e)
            continue
        good[key] = v
    return good, bad


def parse_sort(sort: str | None, direction: str | None) -> tuple[str, bool, str | None]:
    """(sort key, descending, a message when the asked order was unknown)."""
    msg = None
    key = (sort or "found").strip()
    if key not in SORTS:
        msg = f"unknown sort {key[:20]!r}; sorts are {', '.join(SORTS)}"
        key = "found"
    d = (direction or "").strip().lower()
    if d not in ("", "asc", "desc"):
        msg = msg or f"unknown direction {d[:10]!r}; asc or desc"
        d = ""
    descending = d == "desc" if d else key == "found"
    return key, descending, msg


def select_hazards(session: Session, actor: Actor, filters: dict, *, sort: str = "found", descending: bool = True,
                   page: int = 1, per_page: int = 50, now: dt.datetime | None = None) -> Selection:
    """One page of the selection, its total and its counts (status, grade, overdue, 督办)."""
    now = now or utcnow()
    where = filter_clauses(session, actor, filters, now=now)
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    col = SORTS.get(sort, Hazard.found_at)
    order = col.desc() if descending else col.asc()
    nulls = case((col.is_(None), 1), else_=0)  # empty values last either way
    q = (select(Hazard).join(HazardType, HazardType.id == Hazard.type_id).where(*where)
         .order_by(nulls, order, Hazard.id.desc() if descending else Hazard.id.asc())
         .offset((max(page, 1) - 1) * per_page).limit(per_page))
    rows = list(session.scalars(q))
    counts = {"status": dict.fromkeys(HAZARD_STATUSES, 0), "grade": dict.fromkeys(GRADES, 0), "overdue": 0,
              "supervised": 0}
    total = 0
    for status, grade, n, over, sup in session.execute(
            select(Hazard.status, Hazard.grade, func.count(Hazard.id),
                   func.sum(case((overdue_clause(now), 1), else_=0)),
                   func.sum(case((Hazard.supervised.is_(True), 1), else_=0)))
            .where(*where).group_by(Hazard.status, Hazard.grade)):
        counts["status"][status] = counts["status"].get(status, 0) + int(n)
        counts["grade"][grade] = counts["grade"].get(grade, 0) + int(n)
        counts["overdue"] += int(over or 0)
        counts["supervised"] += int(sup or 0)
        total += int(n)
    return Selection(rows, total, max(page, 1), per_page, sort, descending, dict(filters), counts)
