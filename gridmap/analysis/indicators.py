"""The centre's indicator tree (指标一表): districts → streets → communities, one level at a time.

Owns: the quick periods (本月, 上月, 本季度, 本年, 近30天; default 近30天, because month-to-date
reads nearly all zeros early in a month), ``CentreFilter`` (category, status, overdue, period:
checked, each bad value named in ``problems`` and left out rather than answered with an empty
table), and ``indicator_rows``: the rows of the children of one area (or the top level of the
reader's scope), with every column following every filter:

- the life-cycle metrics (立案数, 应结案数, 结案数, 结案率, 按期结案率, 返工率, 自行处置数, 督办数,
  满意率) come from ``incidents.metrics.compute_metrics`` over the period (their own definitions and
  denominators, stated there), on the cases in scope of the category, status and overdue filter;
- 未结事件 / 超时未结: cases of the same filter, reported in the period, not closed now / and past
  their deadline (or flagged overdue).

A parent row is the subtotal of its children: the same query grouped one level up. Each call
answers one level only (one metrics query and one count query per level), so opening a district
of 40 streets costs the same whatever the size of the city.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.boundaries.models import Area
from gridmap.incidents.models import STATUSES, Case
from gridmap.timebounds import parse_day

QUICK_PERIODS = ("last30", "month", "last_month", "quarter", "year", "custom")
DEFAULT_PERIOD = "last30"
CLOSED = ("closed", "evaluated", "rejected")
OPEN_STATUSES = tuple(s for s in STATUSES if s not in CLOSED)
STATUS_CHOICES = ("all", "open") + STATUSES
CHILD_LEVEL = {"city": "district", "district": "street", "street": "community"}
LEVEL_COLUMN = {"district": Case.district_id, "street": Case.street_id, "community": Case.community_id}
#: the columns of the table, in order (key, the metric or count it shows)
COLUMNS = ("filed", "due", "closed", "closure_rate", "on_time_rate", "open", "overdue_open", "rework_rate",
           "self_handled", "supervised", "satisfaction_rate")


def quick_period(key: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """(first day, last day) of a quick period ending at or before ``today``."""
    if key == "last30":
        return today - dt.timedelta(days=29), today
    if key == "month":
        return today.replace(day=1), today
    if key == "last_month":
        last = today.replace(day=1) - dt.timedelta(days=1)
        return last.replace(day=1), last
    if key == "quarter":
        return dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today
    if key == "year":
        return dt.date(today.year, 1, 1), today
    raise ValueError(f"unknown quick period {key!r}")


@dataclass
class CentreFilter:
    """The centre page's filter, checked; ``problems`` are (field, code, value) of refused values."""

    period: str = DEFAULT_PERIOD
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    category: str | None = None
    category_ids: list[int] | None = None
    status: str = "all"
    overdue: bool = False
    problems: list[tuple[str, str, str]] = field(default_factory=list)

    def query(self) -> dict:
        """The filter as query parameters (for links, downloads and the JSON endpoints)."""
        out = {"period": self.period, "from": self.date_from.isoformat(), "to": self.date_to.isoformat()}
        if self.category:
            out["category"] = self.category
        if self.status != "all":
            out["status"] = self.status
        if self.overdue:
            out["overdue"] = "1"
        return out


def parse_filter(session: Session, args, today: dt.date, *, max_days: int = 3660) -> CentreFilter:
    """A ``CentreFilter`` from request arguments; a bad value goes to ``problems`` and is not applied."""
    from gridmap.incidents.queries import QueryError, category_ids_with_children

    f = CentreFilter()
    raw_period = (args.get("period") or "").strip()[:20]
    dates = {}
    for key in ("from", "to"):
        raw = (args.get(key) or "").strip()[:40]
        if raw:
            try:
                dates[key] = parse_day(raw, key)  # within 1900–2199: no overflow further on
            except ValueError:
                f.problems.append((key, "bad_date", raw))
    if raw_period and raw_period not in QUICK_PERIODS:
        f.problems.append(("period", "unknown_period", raw_period))
        raw_period = ""
    if raw_period in ("", "custom") and dates:
        f.period = "custom"
        d1 = dates.get("to") or today
        d0 = dates.get("from") or (d1 - dt.timedelta(days=29))
        if d0 > d1:
            f.problems.append(("from", "reversed", f"{d0} > {d1}"))
            d0, d1 = d1, d0
        if (d1 - d0).days > max_days:
            f.problems.append(("from", "too_long", str((d1 - d0).days)))
            d0 = d1 - dt.timedelta(days=max_days)
        f.date_from, f.date_to = d0, d1
    else:
        f.period = raw_period if raw_period not in ("", "custom") else DEFAULT_PERIOD
        f.date_from, f.date_to = quick_period(f.period, today)
    cat = (args.get("category") or "").strip()[:60]
    if cat:
        try:
            f.category_ids = category_ids_with_children(session, cat)
            f.category = cat
        except QueryError:
            f.problems.append(("category", "unknown_category", cat))
    status = (args.get("status") or "all").strip()[:20]
    if status in STATUS_CHOICES:
        f.status = status
    else:
        f.problems.append(("status", "unknown_status", status))
    overdue = (args.get("overdue") or "").strip()
    if overdue in ("1", "true", "on"):
        f.overdue = True
    elif overdue not in ("", "0", "false", "off"):
        f.problems.append(("overdue", "bad_flag", overdue[:20]))
    return f


def overdue_clause(now: dt.datetime):
    """A case is overdue: flagged, or past its deadline and not closed, or closed late."""
    return or_(Case.overdue.is_(True), and_(Case.deadline_at < now, Case.closed_at.is_(None),
                                           Case.status.notin_(CLOSED)),
               Case.closed_on_time.is_(False))


def case_clause(session: Session, actor: Actor | None, f: CentreFilter, now: dt.datetime):
    """The cases the table counts (scope, category, status, overdue), before the period."""
    from gridmap.accounts.scope import case_filter

    parts = [case_filter(session, actor)] if actor is not None else []
    if f.category_ids is not None:
        parts.append(Case.category_id.in_(f.category_ids))
    if f.status == "open":
        parts.append(Case.status.in_(OPEN_STATUSES))
    elif f.status != "all":
        parts.append(Case.status == f.status)
    if f.overdue:
        parts.append(overdue_clause(now))
    return and_(true(), *parts)


def top_areas(session: Session, actor: Actor | None) -> list[Area]:
    """The top rows: the current districts the reader may see (by code)."""
    from gridmap.accounts.scope import area_ids_in_scope

    q = select(Area).where(Area.level == "district", Area.retired_at.is_(None)).order_by(Area.code)
    scope = area_ids_in_scope(session, actor) if actor is not None else None
    if scope is not None:
        q = q.where(Area.id.in_(scope))
    return list(session.scalars(q))


def child_areas(session: Session, actor: Actor | None, parent: Area) -> list[Area]:
    from gridmap.accounts.scope import area_ids_in_scope

    q = (select(Area).where(Area.parent_id == parent.id, Area.retired_at.is_(None),
                            Area.level == CHILD_LEVEL.get(parent.level, "")).order_by(Area.code))
    scope = area_ids_in_scope(session, actor) if actor is not None else None
    if scope is not None:
        q = q.where(Area.id.in_(scope))
    return list(session.scalars(q))


def _counts(session: Session, clause, f: CentreFilter, per_start, per_end, level: str | None, ids, now):
    """{key: (open, overdue open)} of the filter's cases reported in the period; key None = all."""
    over = overdue_clause(now)
    where = [clause, Case.reported_at >= per_start, Case.reported_at < per_end, Case.status.notin_(CLOSED)]
    cols = [func.count(Case.id), func.sum(sql_case((over, 1), else_=0))]
    if level is None:
        n, o = session.execute(select(*cols).where(*where)).one()
        return {None: (int(n or 0), int(o or 0))}
    col = LEVEL_COLUMN[level]
    rows = session.execute(select(col, *cols).where(*where, col.in_(ids)).group_by(col))
    return {k: (int(n or 0), int(o or 0)) for k, n, o in rows}


def _row(area: Area | None, level: str | None, m: dict | None, counts: tuple[int, int], has_children: bool) -> dict:
    m = m or {}
    out = {"id": area.id if area else None, "code": area.code if area else None,
           "name": area.name if area else None, "level": level, "has_children": has_children,
           "open": counts[0], "overdue_open": counts[1]}
    for key in ("filed", "due", "closed", "self_handled", "supervised"):
        out[key] = int(m.get(key) or 0)
    for key in ("closure_rate", "on_time_rate", "rework_rate", "satisfaction_rate"):
        out[key] = m.get(key)
    out["satisfaction_count"] = int(m.get("satisfaction_count") or 0)
    return out


def indicator_rows(session: Session, actor: Actor | None, f: CentreFilter, *, parent: Area | None = None,
                   tz: str = "Asia/Shanghai", now: dt.datetime | None = None) -> list[dict]:
    """The rows of ``parent``'s children (districts when None), each a subtotal of its own children."""
    from gridmap.incidents.metrics import compute_metrics, period_bounds

    now = now or dt.datetime.now(dt.timezone.utc)
    areas = top_areas(session, actor) if parent is None else child_areas(session, actor, parent)
    if not areas:
        return []
    level = areas[0].level
    clause = case_clause(session, actor, f, now)
    if parent is not None:
        clause = and_(clause, LEVEL_COLUMN[parent.level] == parent.id)
    metrics = {r["group"]["id"]: r for r in compute_metrics(session, group_by=level, date_from=f.date_from,
                                                             date_to=f.date_to, scope_filter=clause, tz=tz)}
    start, end = period_bounds(f.date_from, f.date_to, tz)
    counts = _counts(session, clause, f, start, end, level, [a.id for a in areas], now)
    return [_row(a, level, metrics.get(a.id), counts.get(a.id, (0, 0)), level in CHILD_LEVEL) for a in areas]


def indicator_total(session: Session, actor: Actor | None, f: CentreFilter, *, tz: str = "Asia/Shanghai",
                    now: dt.datetime | None = None) -> dict:
    """The 合计 row: every case of the filter in the reader's scope."""
    from gridmap.incidents.metrics import compute_metrics, period_bounds

    now = now or dt.datetime.now(dt.timezone.utc)
    clause = case_clause(session, actor, f, now)
    [m] = compute_metrics(session, group_by="none", date_from=f.date_from, date_to=f.date_to, scope_filter=clause,
                          tz=tz)
    start, end = period_bounds(f.date_from, f.date_to, tz)
    counts = _counts(session, clause, f, start, end, None, None, now)[None]
    row = _row(None, None, m, counts, False)
    row["any_cases"] = bool(row["filed"] or row["due"] or row["closed"] or row["open"] or m.get("handled")
                            or m.get("received") or row["satisfaction_count"] or row["supervised"])
    return row
