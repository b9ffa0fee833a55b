"""Case metrics (考核指标), computed in SQL with GROUP BY, each with its denominator stated.

Owns: ``compute_metrics`` and ``definitions``. The period runs from 00:00 of ``date_from`` to 24:00
of ``date_to``, local time (Asia/Shanghai unless told otherwise); "in the period" below means the
named timestamp falls inside it.

- 立案数 ``filed``: cases filed (``filed_at``) in the period. Self-handled cases count: they are
  filed when they are handled.
- 应结案数 ``due`` (the denominator "due to close"): cases closed in the period, plus cases whose
  deadline fell in the period and that were not closed before the period began. Parked (挂账) and
  rejected cases are left out. A case due in one period and closed in a later one counts in both:
  once as not closed, once as closed.
- 结案率 ``closure_rate`` = closed / due, closed = cases closed (``closed_at``) in the period.
- 按期结案率 ``on_time_rate`` = closed on time / due; on time = ``closed_at <= deadline_at`` (the
  deadline after approved extensions; a case without deadline, i.e. self-handled, is on time).
  With ``exclude_extended`` cases with an approved extension leave numerator and denominator.
- 延期率 ``extension_rate`` = extended / due, extended = due cases with an approved extension.
- 返工率 ``rework_rate`` = reworked / handled; handled = cases whose (last) handling ``handled_at`` is
  in the period, reworked = those of them that failed a check at least once (``rework_count`` > 0).
- 回退率 ``return_rate`` = returned / received; returned = return (回退) events in the period;
  received = returned + cases whose current dispatch (``dispatched_at``) is in the period (a return
  clears the dispatch, so each hand-over is counted once).
- 核查通过率 ``verify_pass_rate`` = passed checks / checks: ``verify_pass`` events / (``verify_pass`` +
  ``verify_fail``) events in the period.
- ``avg_accept_hours``: mean hours dispatch → acceptance over cases accepted in the period;
  ``avg_handle_hours``: mean hours dispatch → handling over cases handled in the period (self-handled
  cases have no dispatch and are left out).
- 自行处置数 ``self_handled``: self-handled cases filed in the period.
- 满意度 ``satisfaction_mean`` / ``satisfaction_count``: over cases evaluated in the period.

Groups: ``none`` (one row), ``cell``, ``community``, ``street`` (the case's area), ``worker``: the
worker who handled the case, else its current assignee; return events count for the worker who
returned the case. Rates are None when their denominator is 0.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, extract, func, or_, select, true
from sqlalchemy.orm import Session

from gridmap.assign.models import Worker
from gridmap.boundaries.models import Area
from gridmap.incidents.models import Case, CaseEvent
from gridmap.timebounds import OutOfRange, check_day

GROUP_BY = ("none", "worker", "cell", "community", "street")
MAX_DAYS = 3660


class MetricsError(ValueError):
    """Bad parameters (HTTP 400)."""


def definitions(exclude_extended: bool = False) -> dict[str, str]:
    """Each metric and its denominator, in words (returned with every API answer)."""
    on_time = ("按期结案率 = closed on time (closed_at <= deadline_at after approved extensions; no deadline "
               "counts as on time) / due")
    if exclude_extended:
        on_time += "; cases with an approved extension are left out of numerator and denominator"
    return {
        "period": "from 00:00 of 'from' to 24:00 of 'to', local time; 'in the period' = the named time falls in it",
        "filed": "立案数 = cases filed (filed_at) in the period, self-handled cases included",
        "due": "应结案数 (due to close) = cases closed in the period + cases whose deadline fell in the period and "
               "that were not closed before it began; parked and rejected cases excluded",
        "closure_rate": "结案率 = closed / due; closed = cases closed (closed_at) in the period",
        "on_time_rate": on_time,
        "extension_rate": "延期率 = due cases with an approved extension / due",
        "rework_rate": "返工率 = reworked (failed a check at least once) / handled (last handled_at in the period)",
        "return_rate": "回退率 = returned (return events in the period) / received (returned + cases whose current "
                       "dispatch is in the period)",
        "verify_pass_rate": "核查通过率 = verify_pass events / (verify_pass + verify_fail) events in the period",
        "avg_accept_hours": "mean hours from dispatch to acceptance, cases accepted in the period",
        "avg_handle_hours": "mean hours from dispatch to handling, cases handled in the period (self-handled "
                            "cases excluded)",
        "self_handled": "自行处置数 = self-handled cases filed in the period",
        "satisfaction_mean": "mean satisfaction 1–5 over cases evaluated in the period (satisfaction_count of them)",
        "group_worker": "by worker: the worker who handled the case, else its current assignee; returns count "
                        "for the worker who returned the case",
    }


def period_bounds(date_from: dt.date, date_to: dt.date, tz: str = "Asia/Shanghai") -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC for the local dates ``date_from`` … ``date_to`` (both included)."""
    for name, d in (("date_from", date_from), ("date_to", date_to)):
        if not isinstance(d, dt.date) or isinstance(d, dt.datetime):
            raise MetricsError(f"{name} must be a date (YYYY-MM-DD), got {d!r}")
        try:
            check_day(d, name)
        except OutOfRange as e:
            raise MetricsError(str(e)) from None
    if date_to < date_from:
        raise MetricsError(f"the period ends ({date_to}) before it starts ({date_from})")
    if (date_to - date_from).days > MAX_DAYS:
        raise MetricsError(f"the period is longer than {MAX_DAYS} days")
    zone = ZoneInfo(tz)
    start = dt.datetime.combine(date_from, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)


def _seconds(dialect: str, later, earlier):
    """``later - earlier`` in seconds (whole seconds on SQLite, where julianday() loses precision)."""
    if dialect == "postgresql":
        return extract("epoch", later - earlier)
    return (cast(func.strftime("%s", later), Integer) - cast(func.strftime("%s", earlier), Integer)) * 1.0


def _case_key(group_by: str):
    return {"none": None, "worker": func.coalesce(Case.handled_by_worker_id, Case.assignee_worker_id),
            "cell": Case.cell_id, "community": Case.community_id, "street": Case.street_id}[group_by]


def compute_metrics(session: Session, *, group_by: str = "none", date_from: dt.date, date_to: dt.date,
                    scope_filter=None, exclude_extended: bool = False, tz: str = "Asia/Shanghai") -> list[dict]:
    """One dict per group (see the module docstring for every definition)."""
    if group_by not in GROUP_BY:
        raise MetricsError(f"unknown group_by {group_by!r}; use one of {', '.join(GROUP_BY)}")
    start, end = period_bounds(date_from, date_to, tz)
    scope = true() if scope_filter is None else scope_filter
    dialect = session.get_bind().dialect.name

    def within(col):
        return and_(col >= start, col < end)

    def n(cond):
        return func.count(case((cond, 1)))

    closed = within(Case.closed_at)
    due = and_(Case.status.notin_(("parked", "rejected")),
               or_(closed, and_(within(Case.deadline_at), or_(Case.closed_at.is_(None), Case.closed_at >= start))))
    on_time = and_(closed, Case.closed_on_time.is_(True))
    extended = Case.extension_count > 0
    on_time_due = and_(due, ~extended) if exclude_extended else due
    on_time_num = and_(on_time, ~extended) if exclude_extended else on_time
    handled = within(Case.handled_at)
    accepted = and_(within(Case.accepted_at), Case.dispatched_at.isnot(None))
    handled_dispatched = and_(handled, Case.dispatched_at.isnot(None), Case.self_handled.is_(False))
    evaluated = and_(within(Case.evaluated_at), Case.satisfaction.isnot(None))

    key = _case_key(group_by)
    measures = [
        n(within(Case.filed_at)).label("filed"),
        n(due).label("due"),
        n(closed).label("closed"),
        n(on_time_num).label("closed_on_time"),
        n(on_time_due).label("on_time_due"),
        n(and_(due, extended)).label("extended"),
        n(handled).label("handled"),
        n(and_(handled, Case.rework_count > 0)).label("reworked"),
        n(within(Case.dispatched_at)).label("dispatched"),
        n(and_(within(Case.filed_at), Case.self_handled.is_(True))).label("self_handled"),
        func.avg(case((accepted, _seconds(dialect, Case.accepted_at, Case.dispatched_at)))).label("accept_s"),
        func.avg(case((handled_dispatched, _seconds(dialect, Case.handled_at, Case.dispatched_at)))).label("handle_s"),
        func.avg(case((evaluated, Case.satisfaction))).label("satisfaction_mean"),
        n(evaluated).label("satisfaction_count"),
    ]
    any_in_period = or_(*(within(c) for c in (Case.filed_at, Case.deadline_at, Case.closed_at, Case.handled_at,
                                               Case.dispatched_at, Case.accepted_at, Case.evaluated_at)))
    q = select(*([key.label("k")] if key is not None else []), *measures).where(scope, any_in_period)
    if key is not None:
        q = q.group_by(key)
    rows: dict = {}
    for r in session.execute(q).mappings():
        rows[r.get("k")] = dict(r)

    # events: returns and checks
    ev_key = key
    if group_by == "worker":
        ev_key = case((CaseEvent.action == "return", CaseEvent.actor_worker_id), else_=key)
    eq = (select(*([ev_key.label("k")] if ev_key is not None else []),
                 n(CaseEvent.action == "return").label("returned"),
                 n(CaseEvent.action == "verify_pass").label("verify_passed"),
                 n(CaseEvent.action.in_(("verify_pass", "verify_fail"))).label("verified"))
          .select_from(CaseEvent).join(Case, Case.id == CaseEvent.case_id)
          .where(scope, within(CaseEvent.at), CaseEvent.action.in_(("return", "verify_pass", "verify_fail"))))
    if ev_key is not None:
        eq = eq.group_by(ev_key)
    events = {r.get("k"): dict(r) for r in session.execute(eq).mappings()}

    keys = [None] if key is None else sorted(set(rows) | set(events), key=lambda k: (k is None, k or 0))
    labels = _labels(session, group_by, [k for k in keys if k is not None])
    out = []
    for k in keys:
        out.append(_row(group_by, k, labels, rows.get(k, {}), events.get(k, {})))
    if key is not None:
        out.sort(key=lambda r: (r["group"]["code"] is None, r["group"]["code"] or ""))
    return out


def _labels(session: Session, group_by: str, ids: list[int]) -> dict[int, tuple[str, str]]:
    if not ids or group_by == "none":
        return {}
    model = Worker if group_by == "worker" else Area
    return {i: (code, name) for i, code, name in
            session.execute(select(model.id, model.code, model.name).where(model.id.in_(ids)))}


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _hours(seconds) -> float | None:
    return None if seconds is None else float(seconds) / 3600.0


def _row(group_by: str, k, labels: dict, r: dict, e: dict) -> dict:
    c = {name: int(r.get(name) or 0) for name in ("filed", "due", "closed", "closed_on_time", "on_time_due",
                                                  "extended", "handled", "reworked", "dispatched",
                                                  "self_handled", "satisfaction_count")}
    returned, verified, passed = (int(e.get(x) or 0) for x in ("returned", "verified", "verify_passed"))
    received = returned + c["dispatched"]
    group = None
    if group_by != "none":
        code, name = labels.get(k, (None, None))
        group = {"level": group_by, "id": k, "code": code, "name": name if k is not None else "未分配 unassigned"}
    mean = r.get("satisfaction_mean")
    return {
        "group": group,
        "filed": c["filed"], "due": c["due"], "closed": c["closed"], "closed_on_time": c["closed_on_time"],
        "on_time_denominator": c["on_time_due"], "extended": c["extended"], "handled": c["handled"],
        "reworked": c["reworked"], "received": received, "returned": returned, "verified": verified,
        "verify_passed": passed, "self_handled": c["self_handled"],
        "closure_rate": _ratio(c["closed"], c["due"]),
        "on_time_rate": _ratio(c["closed_on_time"], c["on_time_due"]),
        "extension_rate": _ratio(c["extended"], c["due"]),
        "rework_rate": _ratio(c["reworked"], c["handled"]),
        "return_rate": _ratio(returned, received),
        "verify_pass_rate": _ratio(passed, verified),
        "avg_accept_hours": _hours(r.get("accept_s")),
        "avg_handle_hours": _hours(r.get("handle_s")),
        "satisfaction_mean": None if mean is None else float(mean),
        "satisfaction_count": c["satisfaction_count"],
    }
