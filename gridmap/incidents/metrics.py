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
- 按期处置率 ``on_time_handling_rate`` = handled on time / due to handle, judged at handling (apart from
  按期结案率, so a late check does not blame the handler): handled on time = cases whose (last)
  handling is in the period with ``handled_at <= deadline_at`` (``handled_on_time``; self-handled
  cases are on time); due to handle = cases handled in the period + cases whose deadline fell in the
  period and that were not handled before it began; parked and rejected cases excluded.
- 按时立案率 ``timely_filing_rate`` = file events in the period on time / file events in the period
  that were judged (``case_events.on_time`` not null: filing within ``GRIDMAP_FILING_LIMIT`` of the
  report, or of the on-site verification when the category needs one; self-handled cases have no
  file event).
- 按时派遣率 ``timely_dispatch_rate`` = dispatch events on time / judged dispatch events in the period
  (within ``GRIDMAP_DISPATCH_LIMIT`` of filing, or of the last return).
- 按时核查率 ``timely_verify_rate`` = checks (verify_pass + verify_fail events) on time / judged checks in
  the period (within ``GRIDMAP_CHECK_LIMIT`` of the handling they check).
- 按时核实率 ``timely_confirm_rate`` = on-site verifications (confirm + refute events) within the
  category's confirm limit / judged verifications in the period.
- 有效上报率 ``valid_report_rate`` = valid reports / decided reports, over cases reported
  (``reported_at``) in the period: valid = filed (``filed_at`` set; self-handled included) and not
  rejected; decided = filed or rejected (duplicates and refuted reports are rejected); reports still
  waiting for a decision are left out.
- 满意率 ``satisfaction_rate`` = satisfied / evaluated: cases evaluated (回访, ``evaluated_at``) in
  the period with satisfaction 4 or 5 (``lifecycle.SATISFIED_MIN``) / all cases evaluated in the
  period (``satisfaction_count``). The evaluation comes from a supervisor or the reporter, never
  from the handler (``incidents.lifecycle``).
- 督办数 ``supervised``: cases supervised (at least one ``supervise`` event) in the period, each
  counted once; ``supervised_open``: of them, those not closed now.

Groups: ``none`` (one row), ``cell``, ``community``, ``street``, ``district`` (the case's area), ``worker``: the
worker who handled the case, else its current assignee; return events count for the worker who
returned the case; ``department``: the case's current assignee department (cases with the grid
worker in the no-department row). Rates are None when their denominator is 0.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, extract, func, or_, select, true
from sqlalchemy.orm import Session

from gridmap.assign.models import Department, Worker
from gridmap.boundaries.models import Area
from gridmap.incidents.lifecycle import SATISFIED_MIN
from gridmap.incidents.models import Case, CaseEvent
from gridmap.timebounds import OutOfRange, check_day

GROUP_BY = ("none", "worker", "cell", "community", "street", "district", "department")
#: event actions whose ``on_time`` makes a timeliness rate
TIMELY_EVENTS = {"timely_filing": ("file",), "timely_dispatch": ("dispatch",),
                 "timely_verify": ("verify_pass", "verify_fail"), "timely_confirm": ("confirm", "refute")}
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
        "satisfaction_rate": "满意率 = satisfied (satisfaction 4 or 5) / evaluated (satisfaction_count: cases evaluated "
                             "in the period, by a supervisor or the reporter, never the handler)",
        "supervised": "督办数 = cases supervised (督办, a supervise event) in the period, each counted once; "
                      "supervised_open = those of them not closed now",
        "group_worker": "by worker: the worker who handled the case, else its current assignee; returns count "
                        "for the worker who returned the case",
        "group_department": "by department: the case's current assignee department (no department: the grid "
                            "worker's cases)",
        "on_time_handling_rate": "按期处置率 = handled on time (handled_at <= deadline_at, judged at handling; "
                                 "self-handled on time) / due to handle (handled in the period + deadline in the "
                                 "period and not handled before it; parked and rejected excluded)",
        "timely_filing_rate": "按时立案率 = file events on time / judged file events in the period (within "
                              "GRIDMAP_FILING_LIMIT of the report, or of the on-site verification)",
        "timely_dispatch_rate": "按时派遣率 = dispatch events on time / judged dispatch events in the period "
                                "(within GRIDMAP_DISPATCH_LIMIT of filing or of the last return)",
        "timely_verify_rate": "按时核查率 = checks (verify_pass + verify_fail) on time / judged checks in the period "
                              "(within GRIDMAP_CHECK_LIMIT of the handling checked)",
        "timely_confirm_rate": "按时核实率 = on-site verifications (confirm + refute) within the category's limit / "
                               "judged verifications in the period",
        "valid_report_rate": "有效上报率 = valid reports (filed and not rejected) / decided reports (filed or "
                             "rejected), over cases reported in the period; undecided reports left out",
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
            "cell": Case.cell_id, "community": Case.community_id, "street": Case.street_id,
            "district": Case.district_id, "department": Case.assignee_department_id}[group_by]


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
    live = Case.status.notin_(("parked", "rejected"))
    due_handle = and_(live, or_(handled, and_(within(Case.deadline_at),
                                              or_(Case.handled_at.is_(None), Case.handled_at >= start))))
    reported = within(Case.reported_at)
    decided = and_(reported, or_(Case.filed_at.isnot(None), Case.status == "rejected"))
    valid = and_(reported, Case.filed_at.isnot(None), Case.status != "rejected")

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
        n(due_handle).label("due_handle"),
        n(and_(due_handle, handled, Case.handled_on_time.is_(True))).label("handled_on_time"),
        n(decided).label("reports_decided"),
        n(valid).label("reports_valid"),
        n(and_(evaluated, Case.satisfaction >= SATISFIED_MIN)).label("satisfied"),
    ]
    any_in_period = or_(*(within(c) for c in (Case.filed_at, Case.deadline_at, Case.closed_at, Case.handled_at,
                                               Case.dispatched_at, Case.accepted_at, Case.evaluated_at,
                                               Case.reported_at)))
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
    timely = []
    for name, actions in TIMELY_EVENTS.items():
        judged = and_(CaseEvent.action.in_(actions), CaseEvent.on_time.isnot(None))
        timely += [n(judged).label(f"{name}_judged"), n(and_(judged, CaseEvent.on_time.is_(True))).label(f"{name}_ok")]
    ev_actions = {"return", "verify_pass", "verify_fail"} | {a for acts in TIMELY_EVENTS.values() for a in acts}
    eq = (select(*([ev_key.label("k")] if ev_key is not None else []),
                 n(CaseEvent.action == "return").label("returned"),
                 n(CaseEvent.action == "verify_pass").label("verify_passed"),
                 n(CaseEvent.action.in_(("verify_pass", "verify_fail"))).label("verified"), *timely,
                 func.count(func.distinct(case((CaseEvent.action == "supervise", CaseEvent.case_id))))
                 .label("supervised"),
                 func.count(func.distinct(case((and_(CaseEvent.action == "supervise",
                                                     Case.status.notin_(("closed", "evaluated", "rejected"))),
                                                CaseEvent.case_id)))).label("supervised_open"))
          .select_from(CaseEvent).join(Case, Case.id == CaseEvent.case_id)
          .where(scope, within(CaseEvent.at), CaseEvent.action.in_(sorted(ev_actions | {"supervise"}))))
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
    model = {"worker": Worker, "department": Department}.get(group_by, Area)
    return {i: (code, name) for i, code, name in
            session.execute(select(model.id, model.code, model.name).where(model.id.in_(ids)))}


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _hours(seconds) -> float | None:
    return None if seconds is None else float(seconds) / 3600.0


def _row(group_by: str, k, labels: dict, r: dict, e: dict) -> dict:
    c = {name: int(r.get(name) or 0) for name in ("filed", "due", "closed", "closed_on_time", "on_time_due",
                                                  "extended", "handled", "reworked", "dispatched",
                                                  "self_handled", "satisfaction_count", "satisfied", "due_handle",
                                                  "handled_on_time", "reports_decided", "reports_valid")}
    tm = {name: (int(e.get(f"{name}_ok") or 0), int(e.get(f"{name}_judged") or 0)) for name in TIMELY_EVENTS}
    returned, verified, passed, supervised, supervised_open = (
        int(e.get(x) or 0) for x in ("returned", "verified", "verify_passed", "supervised", "supervised_open"))
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
        "due_to_handle": c["due_handle"], "handled_on_time": c["handled_on_time"],
        "on_time_handling_rate": _ratio(c["handled_on_time"], c["due_handle"]),
        **{f"{name}_count": ok for name, (ok, _j) in tm.items()},
        **{f"{name}_denominator": j for name, (_ok, j) in tm.items()},
        **{f"{name}_rate": _ratio(ok, j) for name, (ok, j) in tm.items()},
        "reports_decided": c["reports_decided"], "reports_valid": c["reports_valid"],
        "valid_report_rate": _ratio(c["reports_valid"], c["reports_decided"]),
        "satisfied": c["satisfied"],
        "satisfaction_rate": _ratio(c["satisfied"], c["satisfaction_count"]),
        "supervised": supervised, "supervised_open": supervised_open,
    }
