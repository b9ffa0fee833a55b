"""Hazard indicators (隐患指标) and inspection compliance (巡检执行情况), each with its denominator stated.

Owns: ``hazard_indicators`` and ``inspection_compliance`` (plain functions over a session, within
the reader's scope) and their ``DEFINITIONS``. The period runs from 00:00 of ``date_from`` to
24:00 of ``date_to``, local time (Asia/Shanghai); "now" is the time of the question (a test passes it).

Hazard indicators, per group (none, district, street, community, cell) and, inside each group,
per grade (一般 / 重大) and per type:

- ``found``: hazards found (``found_at``) in the period.
- ``open`` / ``overdue``: hazards waiting for rectification (待整改) now / of them, past their deadline now.
- ``rectified``: hazards whose standing rectification (``rectified_at``; a failed check or a reopen
  clears it) falls in the period; ``rectified_on_time``: of them, ``rectified_at <= rectify_deadline``
  (the deadline after approved extensions).
- ``due`` (应整改数, the denominator): hazards rectified in the period, plus hazards whose deadline
  fell in the period (before now) and that were not rectified before the period began. Counted once.
- 按期整改率 ``on_time_rate`` = rectified_on_time / due (None when due is 0).
- ``reopened``: hazards with a reopen event in the period; ``extended``: with an extension event in
  the period; ``supervised``: hazards not closed that are under 督办 now.

Inspection compliance, per area (district, street, community, cell of the task's cell) and per
hazard type (``patrol`` for a cell's own patrol schedule), over the inspection TASKS whose due date
lies in the period and is not after today:

- ``due``: those tasks; ``on_time``: done on or before their due date (local date of ``done_at``);
  ``late``: done after it; ``missed``: not done and their due date has passed; ``pending``: due
  today and not done yet. due = on_time + late + missed + pending.
- 按时巡检率 ``on_time_rate`` = on_time / due; 巡检完成率 ``done_rate`` = (on_time + late) / due.
Tasks are made by ``hazards.inspections.generate_due`` (run daily): an inspection for which no task
was generated is not counted.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from gridmap.accounts.actor import Actor
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.hazards.models import GRADE_ZH, GRADES, Hazard, HazardEvent, HazardType, InspectionTask
from gridmap.hazards.service import TIMEZONE, HazardError, hazard_filter

GROUPS = ("none", "district", "street", "community", "cell")
MAX_DAYS = 3660
DEFINITIONS = {
    "period": "from 00:00 of 'from' to 24:00 of 'to', local time (Asia/Shanghai)",
    "found": "hazards found (found_at) in the period",
    "open": "hazards waiting for rectification (待整改) now",
    "overdue": "open hazards past their rectification deadline now",
    "rectified": "hazards whose standing rectification (rectified_at) falls in the period",
    "rectified_on_time": "rectified hazards with rectified_at <= rectify_deadline (after approved extensions)",
    "due": "应整改数 = hazards rectified in the period + hazards whose deadline fell in the period (before now) "
           "and that were not rectified before the period began; each hazard once",
    "on_time_rate": "按期整改率 = rectified_on_time / due",
    "reopened": "hazards reopened (reopen event) in the period",
    "extended": "hazards whose deadline was extended (extend event) in the period",
    "supervised": "hazards not closed under 督办 now",
    "inspections_due": "inspection tasks due in the period, up to today",
    "inspections_on_time": "of them, done on or before the due date (local date of done_at)",
    "inspections_late": "of them, done after the due date",
    "inspections_missed": "of them, not done and the due date has passed",
    "inspections_pending": "of them, due today and not done yet",
    "inspection_on_time_rate": "按时巡检率 = on time / due",
    "inspection_done_rate": "巡检完成率 = (on time + late) / due",
}


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def local_period(date_from, date_to, *, today: dt.date) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
    """(from, to, start UTC, end UTC) of local days; default the current month up to today."""
    def as_date(v, key):
        if v in (None, ""):
            return None
        if isinstance(v, dt.date):
            return v
        try:
            return dt.date.fromisoformat(str(v).strip())
        except ValueError:
            raise HazardError(key, f"{key} must be a date YYYY-MM-DD, got {str(v)[:20]!r}", 400) from None

    d1 = as_date(date_to, "to") or today
    d0 = as_date(date_from, "from") or d1.replace(day=1)
    if d0 > d1:
        raise HazardError("from", f"the period starts ({d0}) after it ends ({d1})", 400)
    if (d1 - d0).days > MAX_DAYS:
        raise HazardError("from", f"the period is longer than {MAX_DAYS} days", 400)
    start = dt.datetime.combine(d0, dt.time(), TIMEZONE).astimezone(dt.timezone.utc)
    end = dt.datetime.combine(d1 + dt.timedelta(days=1), dt.time(), TIMEZONE).astimezone(dt.timezone.utc)
    return d0, d1, start, end


def _area(session: Session, actor: Actor, code: str | None) -> Area | None:
    if code in (None, ""):
        return None
    a = session.scalar(select(Area).where(Area.code == str(code).strip()))
    if a is not None:
        from gridmap.accounts.scope import area_ids_in_scope

        scope = area_ids_in_scope(session, actor)
        if scope is None or a.id in scope:
            return a
    raise HazardError("area", f"no area with code {str(code).strip()[:32]!r}", 400)


def _check_group(group_by: str) -> str:
    if group_by not in GROUPS:
        raise HazardError("group", f"group must be one of {', '.join(GROUPS)}, got {str(group_by)[:20]!r}", 400)
    return group_by


_HAZARD_COL = {"district": Hazard.district_id, "street": Hazard.street_id, "community": Hazard.community_id,
               "cell": Hazard.cell_id}


def _names(session: Session, ids) -> dict[int, tuple[str, str]]:
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    return {i: (c, n) for i, c, n in session.execute(select(Area.id, Area.code, Area.name).where(Area.id.in_(ids)))}


def hazard_indicators(session: Session, actor: Actor, *, group_by: str = "none", date_from=None, date_to=None,
                      area: str | None = None, now: dt.datetime | None = None) -> dict:
    """The hazard indicators of the period per group, each group split by grade and by type."""
    now = now or utcnow()
    _check_group(group_by)
    d0, d1, start, end = local_period(date_from, date_to, today=now.astimezone(TIMEZONE).date())
    where = [hazard_filter(session, actor)]
    a = _area(session, actor, area)
    if a is not None:
        where.append(_HAZARD_COL[a.level] == a.id)
    cut = min(end, now)
    found = and_(Hazard.found_at >= start, Hazard.found_at < end)
    is_open = Hazard.status == "open"
    overdue = and_(is_open, Hazard.rectify_deadline < now)
    rectified = and_(Hazard.rectified_at >= start, Hazard.rectified_at < end)
    on_time = and_(rectified, or_(Hazard.rectify_deadline.is_(None), Hazard.rectified_at <= Hazard.rectify_deadline))
    fell_due = and_(Hazard.rectify_deadline >= start, Hazard.rectify_deadline < cut,
                    or_(Hazard.rectified_at.is_(None), Hazard.rectified_at >= start))
    due = or_(rectified, fell_due)
    supervised = and_(Hazard.supervised.is_(True), Hazard.status != "closed")

    def n(cond):
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    gcol = _HAZARD_COL.get(group_by)
    keys = [gcol.label("g")] if gcol is not None else []
    q = (select(*keys, Hazard.grade, Hazard.type_id, n(found).label("found"), n(is_open).label("open"),
                n(overdue).label("overdue"), n(rectified).label("rectified"),
                n(on_time).label("rectified_on_time"), n(due).label("due"), n(supervised).label("supervised"))
         .where(*where).group_by(*keys, Hazard.grade, Hazard.type_id))
    counted = ("found", "open", "overdue", "rectified", "rectified_on_time", "due", "supervised")
    events = {}
    for action, key in (("reopen", "reopened"), ("extend", "extended")):
        hq = (select(*keys, Hazard.grade, Hazard.type_id, func.count(func.distinct(Hazard.id)).label("n"))
              .join(HazardEvent, HazardEvent.hazard_id == Hazard.id)
              .where(*where, HazardEvent.action == action, HazardEvent.at >= start, HazardEvent.at < end)
              .group_by(*keys, Hazard.grade, Hazard.type_id))
        for r in session.execute(hq):
            events[(r.g if gcol is not None else None, r.grade, r.type_id, key)] = int(r.n)
    types = {t.id: t for t in session.scalars(select(HazardType))}
    fields = counted + ("reopened", "extended")

    def empty():
        return dict.fromkeys(fields, 0)

    groups: dict = defaultdict(lambda: {"total": empty(), "by_grade": defaultdict(empty), "by_type": defaultdict(empty)})
    seen = set()
    for r in session.execute(q):
        g = r.g if gcol is not None else None
        vals = {k: int(getattr(r, k)) for k in counted}
        for key in ("reopened", "extended"):
            vals[key] = events.get((g, r.grade, r.type_id, key), 0)
        seen.add((g, r.grade, r.type_id))
        tcode = types[r.type_id].code if r.type_id in types else str(r.type_id)
        for bucket in (groups[g]["total"], groups[g]["by_grade"][r.grade], groups[g]["by_type"][tcode]):
            for k, v in vals.items():
                bucket[k] += v
    names = _names(session, groups.keys())

    def finish(b: dict) -> dict:
        return {**b, "on_time_rate": _rate(b["rectified_on_time"], b["due"])}

    rows = []
    for g, data in groups.items():
        row = {"group": None if gcol is None else ({"id": g, "code": names.get(g, (None,))[0],
                                                   "name": names.get(g, (None, None))[1]} if g else None),
               **finish(data["total"]),
               "by_grade": [{"grade": gr, "grade_name": GRADE_ZH[gr], **finish(data["by_grade"][gr])}
                            for gr in GRADES if gr in data["by_grade"]],
               "by_type": [{"type": tc, "type_name": next((t.name for t in types.values() if t.code == tc), tc),
                            **finish(b)} for tc, b in sorted(data["by_type"].items())]}
        rows.append(row)
    rows.sort(key=lambda r: (r["group"] is None and gcol is not None, (r["group"] or {}).get("code") or ""))
    if gcol is None and not rows:
        rows = [{"group": None, **finish(empty()), "by_grade": [], "by_type": []}]
    return {"group_by": group_by, "period": {"from": d0.isoformat(), "to": d1.isoformat(), "timezone": "Asia/Shanghai"},
            "now": now.isoformat(), "area": a.code if a is not None else None, "rows": rows,
            "definitions": {k: v for k, v in DEFINITIONS.items() if not k.startswith("inspection")}}


# ----------------------------------------------------------------------------- inspection compliance

def inspection_compliance(session: Session, actor: Actor, *, group_by: str = "none", date_from=None, date_to=None,
                          area: str | None = None, now: dt.datetime | None = None) -> dict:
    """Inspections due / on time / late / missed / pending in the period, per area and per hazard type."""
    from gridmap.hazards.inspections import task_filter

    now = now or utcnow()
    _check_group(group_by)
    today = now.astimezone(TIMEZONE).date()
    d0, d1, _start, _end = local_period(date_from, date_to, today=today)
    last = min(d1, today)
    a = _area(session, actor, area)
    cell, comm, street, dist = aliased(Area), aliased(Area), aliased(Area), aliased(Area)
    q = (select(InspectionTask.due_date, InspectionTask.done_at, cell.id.label("cell"), comm.id.label("community"),
                street.id.label("street"), dist.id.label("district"), HazardType.code.label("type"))
         .join(cell, cell.id == InspectionTask.cell_id)
         .outerjoin(comm, comm.id == cell.parent_id).outerjoin(street, street.id == comm.parent_id)
         .outerjoin(dist, dist.id == street.parent_id)
         .outerjoin(Hazard, Hazard.id == InspectionTask.hazard_id)
         .outerjoin(HazardType, HazardType.id == Hazard.type_id)
         .where(task_filter(session, actor), InspectionTask.due_date >= d0, InspectionTask.due_date <= last))
    if a is not None:
        q = q.where({"cell": cell.id, "community": comm.id, "street": street.id, "district": dist.id}[a.level] == a.id)
    fields = ("due", "on_time", "late", "missed", "pending")

    def empty():
        return dict.fromkeys(fields, 0)

    groups: dict = defaultdict(lambda: {"total": empty(), "by_type": defaultdict(empty)})
    for r in session.execute(q):
        if r.done_at is not None:
            kind = "on_time" if r.done_at.astimezone(TIMEZONE).date() <= r.due_date else "late"
        else:
            kind = "missed" if r.due_date < today else "pending"
        g = getattr(r, group_by) if group_by != "none" else None
        for b in (groups[g]["total"], groups[g]["by_type"][r.type or "patrol"]):
            b["due"] += 1
            b[kind] += 1
    names = _names(session, groups.keys())
    tnames = dict(session.execute(select(HazardType.code, HazardType.name)).all())
    tnames["patrol"] = "网格巡查"

    def finish(b):
        return {**b, "on_time_rate": _rate(b["on_time"], b["due"]), "done_rate": _rate(b["on_time"] + b["late"], b["due"])}

    rows = []
    for g, data in groups.items():
        rows.append({"group": None if group_by == "none" else {"id": g, "code": names.get(g, (None,))[0],
                                                                "name": names.get(g, (None, None))[1]},
                     **finish(data["total"]),
                     "by_type": [{"type": t, "type_name": tnames.get(t, t), **finish(b)}
                                 for t, b in sorted(data["by_type"].items())]})
    rows.sort(key=lambda r: (r["group"] or {}).get("code") or "")
    if group_by == "none" and not rows:
        rows = [{"group": None, **finish(empty()), "by_type": []}]
    defs = {k.replace("inspections_", "").replace("inspection_", ""): v for k, v in DEFINITIONS.items()
            if k.startswith("inspection")}
    return {"group_by": group_by, "period": {"from": d0.isoformat(), "to": d1.isoformat(), "counted_to": last.isoformat(),
                                             "timezone": "Asia/Shanghai"},
            "now": now.isoformat(), "area": a.code if a is not None else None, "rows": rows, "definitions": defs}


def compliance_by_worker(session: Session, actor: Actor | None, *, date_from: dt.date, date_to: dt.date,
                         now: dt.datetime | None = None) -> dict[int, dict]:
    """Inspection compliance per assigned worker (for the scorecards): worker id → counts and rates."""
    from gridmap.hazards.inspections import task_filter

    now = now or utcnow()
    today = now.astimezone(TIMEZONE).date()
    last = min(date_to, today)
    q = select(InspectionTask.worker_id, InspectionTask.due_date, InspectionTask.done_at).where(
        InspectionTask.due_date >= date_from, InspectionTask.due_date <= last, InspectionTask.worker_id.isnot(None))
    if actor is not None:
        q = q.where(task_filter(session, actor))
    out: dict[int, dict] = defaultdict(lambda: dict.fromkeys(("due", "on_time", "late", "missed", "pending"), 0))
    for wid, due, done in session.execute(q):
        if done is not None:
            kind = "on_time" if done.astimezone(TIMEZONE).date() <= due else "late"
        else:
            kind = "missed" if due < today else "pending"
        out[wid]["due"] += 1
        out[wid][kind] += 1
    return {w: {**b, "on_time_rate": _rate(b["on_time"], b["due"])} for w, b in out.items()}
