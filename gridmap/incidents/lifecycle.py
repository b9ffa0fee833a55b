"""The case life-cycle: the one transition table and its enforcement.

Owns: ``TRANSITIONS`` (action → from-status → ``Transition``: the status it leads to, who may do
it, whether a comment is required, whether the actor must not be the handler), ``apply_action``
(check state, actor, scope and data, then change the case with one guarded UPDATE and append one
history event) and ``allowed_actions`` (what a UI may offer).

Main path (GB/T 30428): reported →file→ filed →dispatch→ dispatched →accept→ in_progress
→feedback→ handled [→submit→ verifying] →verify_pass→ closed →evaluate→ evaluated.
``verify_pass``/``verify_fail`` work from ``handled`` (the supervisor checks the feedback) and from
``verifying`` (a check on site was sent out with ``submit``). Side paths:

- ``reject`` (reported/filed → rejected, reason required); ``mark_duplicate`` (→ rejected with
  ``duplicate_of_id``);
- ``return`` 回退 (dispatched/in_progress → filed, by the assignee, reason required):
  ``return_count`` + 1, and the assignee, ``dispatched_at``, ``accepted_at`` and ``deadline_at``
  are cleared: the case waits in ``filed`` for a supervisor to dispatch it anew (new deadline);
  a supervisor who wants another worker uses ``reassign`` instead;
- ``reassign`` (dispatched/in_progress → dispatched, new assignee in ``data``: the new assignee
  must accept; the dispatch time and deadline are kept);
- ``escalate`` (dispatched/in_progress, status kept): ``escalation_level`` one up (or
  ``data.escalation_level``; 1 community, 2 street, 3 district), the upper level's assignee from
  ``data`` when given (else the assignee stays), ``overdue`` set when past the deadline, and a new
  deadline (the category's limit from now) so an overdue case climbs one level per limit, as
  ``gridmap.assign.escalation`` does;
- 延期 ``request_extension`` (assignee) → ``approve_extension`` (supervisor: ``deadline_at`` moves
  by the category's limit again, ``extension_count`` + 1) or ``deny_extension``; the status stays;
- ``verify_fail`` 返工 (→ in_progress, ``rework_count`` + 1, ``handled_at`` cleared);
- ``self_handle`` 自行处置 (reported → handled by a grid worker on the spot: ``self_handled``,
  ``filed_at`` = ``handled_at`` = now, the worker becomes assignee and handler; no deadline);
- ``park`` 挂账 (filed/dispatched/in_progress → parked) and ``unpark`` (back to the status it was
  parked from; the deadline moves by the time spent parked: the clock stops while parked);
- 核实 ``confirm`` (reported, status kept, ``confirmed_at`` set; needs ``data.photo_id``, a photo of the
  case taken on site) and ``refute`` (reported → rejected, reason required), by the worker named in
  ``confirm_worker_id`` or a supervisor, only for a report waiting for on-site verification
  (``confirm_deadline_at`` set at intake); until then the system may not ``file`` it.

Timeliness: ``feedback``/``self_handle`` set ``handled_on_time`` (handled_at <= deadline_at: 按期处置,
judged at handling); ``confirm``/``refute``, ``file``, ``dispatch`` and the checks write ``on_time`` on
their history event (``gridmap.incidents.timeliness``). A deadline that needs a year without calendar
data raises ``CalendarRefused`` (409, naming the year) unless GRIDMAP_CALENDAR_FALLBACK; an approved
extension adds ``data.extension`` or GRIDMAP_EXTENSION_LIMIT ("VALUE UNIT"), else the category's limit.
- 督办 ``supervise`` (any open status, status kept; by an "overseer": a community, street,
  district or city user, or admin, with the case in scope; a note is required): ``supervised`` is
  set and, with ``data.deadline`` (ISO date or date-time, local time when naive, after now and
  within a year), the deadline moves there (``overdue``, once set, stays); a case may be supervised again (a new note,
  another deadline), each time one history row;
- ``evaluate`` 回访 (closed → evaluated, ``data.satisfaction`` 1–5; satisfied = 4 or 5): by a
  supervisor or the reporter, never by whoever handled the case (the same handler check as the
  verifier's).

Who: "assignee" = the assigned worker (or a department user of the assigned department);
"supervisor" = head, community, street, district, city, admin; "overseer" = community, street,
district, city, admin (督办 comes from above the cell); "worker" = a grid worker or head
(self_handle); "reporter" = the user who reported the case; "system" = ``SYSTEM`` (automatic
steps: file and dispatch on intake, submit, escalate, reassign on re-routing). Everyone but the
system and the reporter must also have the case in their scope (``gridmap.accounts.scope``);
a case outside it is answered as not found. The verifier must not be the handler (worker id and
user id of the last feedback/self_handle are compared).

Atomicity: the change is ``UPDATE cases SET …, version = version + 1 WHERE id = :id AND version = :v
AND status = :s``; zero rows means another action won between our read and our write:
``ConflictError``, nothing written. The case is read fresh from the database; ``expected_version``
(the version the user saw) must match it, else ``ConflictError`` at once. Timestamps: ``filed_at``,
``dispatched_at`` + ``deadline_at`` (``gridmap.assign.calendar.add_limit`` from the category's
effective limit), ``accepted_at``, ``handled_at``, ``closed_at`` + ``closed_on_time`` (closed_at <=
deadline_at; a case without a deadline is on time), ``evaluated_at``.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session

from gridmap.accounts.actor import SYSTEM, Actor
from gridmap.accounts.scope import case_filter, worker_visible
from gridmap.assign.models import Department, Worker
from gridmap.db import MAX_ID, utcnow
from gridmap.incidents.categories import effective_limit
from gridmap.incidents.history import append_event
from gridmap.assign.calendar import CalendarGap, add_limit
from gridmap.config import setting
from gridmap.incidents.models import Case, CaseEvent, CasePhoto
from gridmap.incidents.timeliness import Judgement, judge, judge_confirm, parse_limit

SUPERVISOR_ROLES = frozenset({"head", "community", "street", "district", "city", "admin"})
SELF_HANDLE_ROLES = frozenset({"worker", "head"})
OVERSEER_ROLES = frozenset({"community", "street", "district", "city", "admin"})
OPEN_STATUSES = "filed dispatched in_progress handled verifying parked"
SATISFIED_MIN = 4  # satisfaction 4 (satisfied) or 5 (very satisfied) counts as satisfied (满意)
#: ``unpark`` leads back to the status the case was parked from
PREVIOUS = "<previous>"
MAX_ESCALATION_LEVEL = 3  # 1 community, 2 street, 3 district
HANDLING_ACTIONS = ("feedback", "self_handle")


class TransitionError(Exception):
    """The action is not allowed: wrong state (409), or see the subclasses."""

    status = 409


class PermissionDenied(TransitionError):
    """This actor may not do this action on this case (HTTP 403)."""

    status = 403


class ConflictError(TransitionError):
    """Another action changed the case first (HTTP 409); reload and retry."""

    status = 409


class CaseNotFound(TransitionError):
    """No such case, or not in the actor's scope (HTTP 404: ids cannot be probed)."""

    status = 404


class CalendarRefused(TransitionError):
    """No deadline can be set: a year without calendar data (HTTP 409; the message names the year)."""

    status = 409


class ActionInputError(TransitionError):
    """Unknown action, missing comment or bad ``data`` (HTTP 400)."""

    status = 400


@dataclass(frozen=True)
class Transition:
    to: str                      # target status, or PREVIOUS
    who: frozenset[str]          # assignee, supervisor, worker, reporter, system
    comment: bool = False        # a comment (reason) is required
    not_handler: bool = False    # the actor must not be who handled the case


def _t(froms: str, to: str, who: str, **kw) -> dict[str, Transition]:
    """Rows of the table; ``to="="`` keeps the status."""
    return {f: Transition(f if to == "=" else to, frozenset(who.split()), **kw) for f in froms.split()}


TRANSITIONS: dict[str, dict[str, Transition]] = {
    "confirm":           _t("reported", "=", "confirmer supervisor"),
    "refute":            _t("reported", "rejected", "confirmer supervisor", comment=True),
    "file":              _t("reported", "filed", "supervisor system"),
    "reject":            _t("reported filed", "rejected", "supervisor", comment=True),
    "mark_duplicate":    _t("reported filed", "rejected", "supervisor"),
    "dispatch":          _t("filed", "dispatched", "supervisor system"),
    "accept":            _t("dispatched", "in_progress", "assignee"),
    "return":            _t("dispatched in_progress", "filed", "assignee", comment=True),
    "reassign":          _t("dispatched in_progress", "dispatched", "supervisor system"),
    "escalate":          _t("dispatched in_progress", "=", "supervisor system"),
    "request_extension": _t("dispatched in_progress", "=", "assignee", comment=True),
    "approve_extension": _t("dispatched in_progress", "=", "supervisor"),
    "deny_extension":    _t("dispatched in_progress", "=", "supervisor", comment=True),
    "park":              _t("filed dispatched in_progress", "parked", "supervisor", comment=True),
    "unpark":            _t("parked", PREVIOUS, "supervisor"),
    "feedback":          _t("in_progress", "handled", "assignee", comment=True),
    "self_handle":       _t("reported", "handled", "worker", comment=True),
    "submit":            _t("handled", "verifying", "supervisor system"),
    "verify_pass":       _t("handled verifying", "closed", "supervisor", not_handler=True),
    "verify_fail":       _t("handled verifying", "in_progress", "supervisor", comment=True, not_handler=True),
    "evaluate":          _t("closed", "evaluated", "supervisor reporter", not_handler=True),
    "supervise":         _t(OPEN_STATUSES, "=", "overseer", comment=True),
}
ACTIONS = tuple(TRANSITIONS)

_WHO_TEXT = {"assignee": "the assignee", "supervisor": "a supervisor (" + ", ".join(sorted(SUPERVISOR_ROLES)) + ")",
             "worker": "a grid worker or head responsible for the cell", "reporter": "the reporter",
             "system": "the system", "confirmer": "the worker asked to verify the report on site",
             "overseer": "a community, street, district or city user"}


# ------------------------------------------------------------------------------ who and scope
def _is(token: str, case: Case, actor: Actor) -> bool:
    if token == "system":
        return actor.is_system
    if token == "supervisor":
        return actor.role in SUPERVISOR_ROLES
    if token == "overseer":
        return actor.role in OVERSEER_ROLES
    if token == "assignee":
        if actor.worker_id is not None and actor.worker_id == case.assignee_worker_id:
            return True
        return (actor.role == "department" and actor.department_id is not None
                and actor.department_id == case.assignee_department_id)
    if token == "worker":
        return actor.role in SELF_HANDLE_ROLES and actor.worker_id is not None
    if token == "reporter":
        return actor.user_id is not None and actor.user_id == case.reporter_user_id
    if token == "confirmer":
        return actor.worker_id is not None and actor.worker_id == case.confirm_worker_id
    raise AssertionError(f"unknown who-token {token!r}")


def _visible(session: Session, case: Case, actor: Actor) -> bool:
    if actor.is_system or (actor.user_id is not None and actor.user_id == case.reporter_user_id):
        return True
    return session.scalar(select(Case.id).where(Case.id == case.id, case_filter(session, actor))) is not None


def _last_handling(session: Session, case: Case) -> CaseEvent | None:
    return session.scalar(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                                  CaseEvent.action.in_(HANDLING_ACTIONS))
                          .order_by(CaseEvent.seq.desc()).limit(1))


def _handler_of(session: Session, case: Case, actor: Actor) -> str | None:
    """Who handled the case, when ``actor`` is that person (by worker id or user id); else None."""
    ev = _last_handling(session, case)
    workers = {case.handled_by_worker_id, ev.actor_worker_id if ev else None} - {None}
    same_worker = actor.worker_id is not None and actor.worker_id in workers
    same_user = ev is not None and actor.user_id is not None and actor.user_id == ev.actor_user_id
    if not (same_worker or same_user):
        return None
    return ev.actor_name if ev is not None else f"worker {case.handled_by_worker_id}"


def _permission_problem(case: Case, actor: Actor, action: str, tr: Transition) -> str | None:
    if any(_is(token, case, actor) for token in tr.who):
        return None
    who = " or ".join(_WHO_TEXT[t] for t in sorted(tr.who))
    if "assignee" in tr.who:
        if case.assignee_worker_id is not None:
            who += f" (worker {case.assignee_worker_id})"
        elif case.assignee_department_id is not None:
            who += f" (department {case.assignee_department_id})"
    return f"{actor.name} ({actor.role}) may not {action} case {case.id}: only {who} may"


def _guard_problem(session: Session, case: Case, actor: Actor, action: str, tr: Transition) -> str | None:
    """State conditions beyond the status (shared by apply_action and allowed_actions)."""
    if action == "request_extension" and case.extension_pending:
        return f"case {case.id} already has an extension request waiting for approval"
    if action in ("approve_extension", "deny_extension") and not case.extension_pending:
        return f"case {case.id} has no extension request to {action.split('_')[0]}"
    if action in ("confirm", "refute") and case.confirm_deadline_at is None:
        return f"case {case.id} does not wait for on-site verification (its category files at once)"
    if action in ("confirm", "refute") and case.confirmed_at is not None:
        return f"case {case.id} was verified on site already"
    if (action == "file" and actor.is_system and case.confirm_deadline_at is not None
            and case.confirmed_at is None):
        return (f"case {case.id} waits for on-site verification (核实) by the cell's worker until "
                f"{case.confirm_deadline_at.isoformat()} before it can be filed")
    if action == "escalate" and (case.escalation_level or 0) >= MAX_ESCALATION_LEVEL:
        return f"case {case.id} is already escalated to the district (level {MAX_ESCALATION_LEVEL})"
    if tr.not_handler:
        by = _handler_of(session, case, actor)
        if by:
            what = "evaluate" if action == "evaluate" else "check"
            who = "the evaluation (回访) comes from a supervisor or the reporter" if action == "evaluate" else \
                "the verifier must not be the handler"
            return f"{actor.name} may not {what} case {case.id}: {who}, not the handler (handled by {by})"

    return None


# ------------------------------------------------------------------------------ effects
class _Effect(NamedTuple):
    values: dict[str, Any]
    details: dict[str, Any]
    to: str | None = None  # overrides the table's target (unpark)
    on_time: bool | None = None  # the step's timeliness (confirm, file, dispatch, check), on its event


def _int(data: dict, key: str, what: str) -> int | None:
    v = data.get(key)
    if v is None:
        return None
    if isinstance(v, str) and re.fullmatch(r"\s*-?[0-9]{1,19}\s*", v):  # ASCII digits: int("²") fails
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ID:
        return v
    raise ActionInputError(f"data.{key} ({what}) must be a whole number from 1 to {MAX_ID}, got {str(v)[:30]!r}")


def _assignee_from_data(session: Session, data: dict, action: str, actor: Actor) -> dict[str, Any] | None:
    """New assignee fields from ``data`` (worker_id, department_id, level, reason), or None.

    A worker outside the actor's scope is answered word for word like an unknown one."""
    wid = _int(data, "worker_id", "the worker's id")
    did = _int(data, "department_id", "the department's id")
    if wid is None and did is None:
        return None
    if wid is not None:
        w = session.get(Worker, wid)
        if w is None or not (actor.is_system or worker_visible(session, actor, wid)):
            raise ActionInputError(f"{action}: no worker with id {wid}")
        if not w.active:
            raise ActionInputError(f"{action}: worker {w.code} {w.name} is not active")
    if did is not None and session.get(Department, did) is None:
        raise ActionInputError(f"{action}: no department with id {did}")
    level = data.get("level") or ("department" if wid is None else None)
    reason = data.get("reason")
    return {"assignee_worker_id": wid, "assignee_department_id": did, "assignee_level": level,
            "route_reason": str(reason)[:300] if reason else None, "route_reason_code": None,
            "route_reason_params": None}


def _deadline(session: Session, case: Case, start: dt.datetime, *, limit: tuple[float, str] | None = None
              ) -> tuple[dt.datetime | None, dict]:
    """The deadline ``limit`` (default: the category's effective limit) after ``start``; a year
    without calendar data is refused (TransitionError naming it) unless the fallback is on, whose
    warning goes into the details."""
    if limit is None:
        lim = effective_limit(case.category) if case.category is not None else None
        if lim is None:
            return None, {"limit": None}
        value, unit, about = lim.value, lim.unit, {"from_category": lim.from_code}
    else:
        (value, unit), about = limit, {"from_setting": "GRIDMAP_EXTENSION_LIMIT"}
    warnings: list[str] = []
    try:
        deadline = add_limit(session, start, value, unit, warnings=warnings)
    except CalendarGap as e:
        raise CalendarRefused(f"case {case.id}: {e}") from None
    details = {"limit": {"value": value, "unit": unit, **about}}
    if warnings:
        details["calendar_warning"] = "; ".join(warnings)
    return deadline, details


def _fx_confirm(session, case, actor, comment, data, now):
    photo_id = _int(data, "photo_id", "a photo of this case taken on site")
    if photo_id is None:
        raise ActionInputError("confirm (核实) needs data.photo_id: upload the on-site photo to the case first")
    photo = session.get(CasePhoto, photo_id)
    if photo is None or photo.case_id != case.id:
        raise ActionInputError(f"confirm: case {case.id} has no photo {photo_id}")
    j = judge_confirm(case, now)
    return _Effect({"confirmed_at": now}, {"photo_id": photo_id, **j.details("confirm")}, on_time=j.on_time)


def _fx_refute(session, case, actor, comment, data, now):
    j = judge_confirm(case, now)
    return _Effect({"confirmed_at": now}, {"reason": comment, **j.details("confirm")}, on_time=j.on_time)


def _judge_step(session, case, actor, data, step, now):
    """The step's timeliness; not judged for the system's filing of imported history (``data.imported``
    honoured from the system only: a user cannot opt out of being judged)."""
    if actor.is_system and data.get("imported"):
        return Judgement(None, None, None)
    return judge(session, case, step, now)


def _fx_file(session, case, actor, comment, data, now):
    j = _judge_step(session, case, actor, data, "file", now)
    return _Effect({"filed_at": now}, j.details("file"), on_time=j.on_time)


def _fx_reject(session, case, actor, comment, data, now):
    return _Effect({}, {"reason": comment})


def _fx_mark_duplicate(session, case, actor, comment, data, now):
    oid = _int(data, "duplicate_of_id", "the original case's id")
    if oid is None:
        raise ActionInputError("mark_duplicate needs data.duplicate_of_id (the original case)")
    if oid == case.id:
        raise ActionInputError(f"case {case.id} cannot be a duplicate of itself")
    original = session.get(Case, oid)
    if original is None or not _visible(session, original, actor):  # out of scope == unknown: no oracle
        raise ActionInputError(f"mark_duplicate: no case with id {oid}")
    if original.duplicate_of_id == case.id:
        raise ActionInputError(f"case {oid} is already marked a duplicate of case {case.id}")
    return _Effect({"duplicate_of_id": oid}, {"duplicate_of_id": oid, "duplicate_of_number": original.number})


def _fx_dispatch(session, case, actor, comment, data, now):
    new = _assignee_from_data(session, data, "dispatch", actor)
    if new is None:
        if case.assignee_worker_id is None and case.assignee_department_id is None:
            raise TransitionError(f"case {case.id} has no assignee (it is unroutable or was returned): "
                                  "give data.worker_id or data.department_id")
        new = {"assignee_worker_id": case.assignee_worker_id, "assignee_department_id": case.assignee_department_id,
               "assignee_level": case.assignee_level, "route_reason": case.route_reason,
               "route_reason_code": case.route_reason_code, "route_reason_params": case.route_reason_params}
    deadline, details = _deadline(session, case, now)
    values = {**new, "dispatched_at": now, "deadline_at": deadline, "accepted_at": None, "overdue": False,
              "extension_pending": False}
    j = _judge_step(session, case, actor, data, "dispatch", now)
    return _Effect(values, {**details, **j.details("dispatch"), "deadline_at": deadline,
                            "assignee_worker_id": new["assignee_worker_id"],
                            "assignee_department_id": new["assignee_department_id"],
                            "level": new["assignee_level"], "reason": new["route_reason"]}, on_time=j.on_time)


def _fx_accept(session, case, actor, comment, data, now):
    return _Effect({"accepted_at": now}, {})


def _fx_return(session, case, actor, comment, data, now):
    values = {"assignee_worker_id": None, "assignee_department_id": None, "assignee_level": None,
              "route_reason": f"returned by {actor.name}: {comment}"[:300], "route_reason_code": "returned",
              "route_reason_params": json.dumps({"by": actor.name, "reason": (comment or "")[:200]}, ensure_ascii=False),
              "dispatched_at": None,
              "accepted_at": None, "deadline_at": None, "extension_pending": False,
              "return_count": (case.return_count or 0) + 1}
    return _Effect(values, {"returned_from_worker_id": case.assignee_worker_id,
                            "returned_from_department_id": case.assignee_department_id,
                            "return_count": values["return_count"]})


def _reassign_values(session, case, data, action, actor):
    new = _assignee_from_data(session, data, action, actor)
    if new is None:
        raise ActionInputError(f"{action} needs data.worker_id or data.department_id (the new assignee)")
    if (new["assignee_worker_id"], new["assignee_department_id"]) == (case.assignee_worker_id,
                                                                      case.assignee_department_id):
        raise ActionInputError(f"{action}: case {case.id} is already assigned there")
    details = {"from_worker_id": case.assignee_worker_id, "from_department_id": case.assignee_department_id,
               "to_worker_id": new["assignee_worker_id"], "to_department_id": new["assignee_department_id"],
               "level": new["assignee_level"], "reason": new["route_reason"]}
    return {**new, "accepted_at": None}, details


def _fx_reassign(session, case, actor, comment, data, now):
    values, details = _reassign_values(session, case, data, "reassign", actor)
    return _Effect(values, details)


def _fx_escalate(session, case, actor, comment, data, now):
    current = case.escalation_level or 0
    level = _int(data, "escalation_level", "1 community, 2 street, 3 district")
    level = current + 1 if level is None else level
    if not current < level <= MAX_ESCALATION_LEVEL:
        raise ActionInputError(f"escalate: case {case.id} is at level {current}; the new level must be above it "
                               f"and at most {MAX_ESCALATION_LEVEL}, got {level}")
    # escalation sends a case upwards, to someone above the actor's own area: no subtree check
    new = _assignee_from_data(session, data, "escalate", SYSTEM)
    values: dict[str, Any] = dict(new) if new else {}
    overdue = bool(case.overdue or (case.deadline_at is not None and now > case.deadline_at))
    deadline, details = _deadline(session, case, now)
    values.update(escalation_level=level, overdue=overdue, deadline_at=deadline or case.deadline_at)
    return _Effect(values, {**details, "from_level": current, "to_level": level, "overdue": overdue,
                            "from_worker_id": case.assignee_worker_id, "from_department_id": case.assignee_department_id,
                            "to_worker_id": values.get("assignee_worker_id", case.assignee_worker_id),
                            "to_department_id": values.get("assignee_department_id", case.assignee_department_id),
                            "previous_deadline": case.deadline_at, "deadline_at": values["deadline_at"]})


def _fx_request_extension(session, case, actor, comment, data, now):
    return _Effect({"extension_pending": True}, {"reason": comment, "deadline_at": case.deadline_at})


def _extension_limit(data: dict) -> tuple[float, str] | None:
    """How long an extension adds: ``data.extension`` ("VALUE UNIT", the approver's choice), else
    GRIDMAP_EXTENSION_LIMIT, else None (the category's limit once more)."""
    raw = data.get("extension")
    if raw is None or raw == "":
        raw = setting("EXTENSION_LIMIT")
        if not raw:
            return None
    try:
        return parse_limit(raw, "data.extension" if data.get("extension") else "GRIDMAP_EXTENSION_LIMIT")
    except ValueError as e:
        raise ActionInputError(str(e)) from None


def _fx_approve_extension(session, case, actor, comment, data, now):
    base = case.deadline_at or now
    deadline, details = _deadline(session, case, base, limit=_extension_limit(data))
    if deadline is None:
        raise TransitionError(f"case {case.id}: its category has no time limit, so there is no deadline to extend")
    count = (case.extension_count or 0) + 1
    values = {"deadline_at": deadline, "extension_count": count, "extension_pending": False,
              "overdue": bool(case.overdue and now > deadline)}
    return _Effect(values, {**details, "old_deadline_at": case.deadline_at, "deadline_at": deadline,
                            "extension_count": count})


def _fx_deny_extension(session, case, actor, comment, data, now):
    return _Effect({"extension_pending": False}, {"reason": comment})


def _fx_park(session, case, actor, comment, data, now):
    return _Effect({}, {"parked_from": case.status, "reason": comment})


def _fx_unpark(session, case, actor, comment, data, now):
    ev = session.scalar(select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.action == "park")
                        .order_by(CaseEvent.seq.desc()).limit(1))
    prev = ev.from_status if ev is not None and ev.from_status in TRANSITIONS["park"] else None
    if prev is None:  # parked outside this module (import): back to where it can be picked up
        prev = "dispatched" if case.assignee_worker_id or case.assignee_department_id else "filed"
    values: dict[str, Any] = {}
    details: dict[str, Any] = {"restored_status": prev}
    if ev is not None and case.deadline_at is not None and prev in ("dispatched", "in_progress"):
        parked_for = max(now - ev.at, dt.timedelta(0))
        values["deadline_at"] = case.deadline_at + parked_for
        details.update(parked_seconds=int(parked_for.total_seconds()), old_deadline_at=case.deadline_at,
                       deadline_at=values["deadline_at"])
    return _Effect(values, details, to=prev)


def _fx_feedback(session, case, actor, comment, data, now):
    on_time = case.deadline_at is None or now <= case.deadline_at  # 按期处置: judged at handling
    return _Effect({"handled_at": now, "handled_by_worker_id": actor.worker_id, "extension_pending": False,
                    "handled_on_time": on_time}, {"handled_on_time": on_time, "deadline_at": case.deadline_at})


def _fx_self_handle(session, case, actor, comment, data, now):
    values = {"filed_at": case.filed_at or now, "handled_at": now, "handled_by_worker_id": actor.worker_id,
              "self_handled": True, "assignee_worker_id": actor.worker_id, "assignee_department_id": None,
              "handled_on_time": True}
    return _Effect(values, {})


def _fx_submit(session, case, actor, comment, data, now):
    return _Effect({}, {})


def _fx_verify_pass(session, case, actor, comment, data, now):
    on_time = case.deadline_at is None or now <= case.deadline_at
    values = {"closed_at": now, "closed_on_time": on_time, "overdue": bool(case.overdue or not on_time),
              "extension_pending": False}
    j = judge(session, case, "check", now)
    return _Effect(values, {"closed_on_time": on_time, "deadline_at": case.deadline_at, **j.details("check")},
                   on_time=j.on_time)


def _fx_verify_fail(session, case, actor, comment, data, now):
    count = (case.rework_count or 0) + 1
    values = {"rework_count": count, "handled_at": None, "handled_on_time": None,
              "assignee_worker_id": case.assignee_worker_id or case.handled_by_worker_id}
    j = judge(session, case, "check", now)
    return _Effect(values, {"rework_count": count, "reason": comment, **j.details("check")}, on_time=j.on_time)


def _fx_evaluate(session, case, actor, comment, data, now):
    s = _int(data, "satisfaction", "1 very dissatisfied … 5 very satisfied")
    if s is None or not 1 <= s <= 5:
        raise ActionInputError(f"evaluate needs data.satisfaction from 1 (very dissatisfied) to 5 (very satisfied), "
                               f"got {data.get('satisfaction')!r}")
    return _Effect({"satisfaction": s, "evaluated_at": now}, {"satisfaction": s})


def _parse_deadline(raw, now: dt.datetime, tz: str = "Asia/Shanghai") -> dt.datetime:
    """``data.deadline`` as an aware UTC datetime: a date means 24:00 of that local day."""
    from zoneinfo import ZoneInfo

    if not isinstance(raw, str) or not raw.strip() or len(raw) > 40:
        raise ActionInputError(f"data.deadline must be a date YYYY-MM-DD or a date-time, got {raw!r}")
    text = raw.strip()
    zone = ZoneInfo(tz)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = dt.date.fromisoformat(text)
            when = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        else:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=zone)
    except ValueError:
        raise ActionInputError(f"data.deadline must be a date YYYY-MM-DD or a date-time, got {raw!r}") from None
    when = when.astimezone(dt.timezone.utc)
    if when <= now:
        raise ActionInputError(f"data.deadline ({text}) must be in the future")
    if when > now + dt.timedelta(days=366):
        raise ActionInputError(f"data.deadline ({text}) must be within a year")
    return when


def _fx_supervise(session, case, actor, comment, data, now):
    values: dict[str, Any] = {"supervised": True}
    details: dict[str, Any] = {"note": comment, "by_role": actor.role, "first": not case.supervised}
    raw = data.pop("deadline", None)
    if raw not in (None, ""):
        new = _parse_deadline(raw, now)
        values["deadline_at"] = new  # ``overdue`` stays: a case that ran late stays counted as late
        details.update(old_deadline_at=case.deadline_at, deadline_at=new)
    return _Effect(values, details)


_EFFECTS = {
    "confirm": _fx_confirm, "refute": _fx_refute, "file": _fx_file, "reject": _fx_reject, "mark_duplicate": _fx_mark_duplicate, "dispatch": _fx_dispatch,
    "accept": _fx_accept, "return": _fx_return, "reassign": _fx_reassign, "escalate": _fx_escalate,
    "request_extension": _fx_request_extension, "approve_extension": _fx_approve_extension,
    "deny_extension": _fx_deny_extension, "park": _fx_park, "unpark": _fx_unpark, "feedback": _fx_feedback,
    "self_handle": _fx_self_handle, "submit": _fx_submit, "verify_pass": _fx_verify_pass,
    "verify_fail": _fx_verify_fail, "evaluate": _fx_evaluate, "supervise": _fx_supervise,
}
assert set(_EFFECTS) == set(TRANSITIONS), "every action needs an effect"


# ------------------------------------------------------------------------------ public API
def _check_point(lon, lat) -> None:
    for v, name, lim in ((lon, "lon", 180), (lat, "lat", 90)):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > lim:
            raise ActionInputError(f"{name} must be a number between -{lim} and {lim}, got {v!r}")


def apply_action(session: Session, case_id: int, action: str, actor: Actor, *, comment: str | None = None,
                 expected_version: int | None = None, lon: float | None = None, lat: float | None = None,
                 data: dict | None = None, now: dt.datetime | None = None, comment_code: str | None = None,
                 comment_params: dict | None = None) -> Case:
    """Do ``action`` on case ``case_id`` as ``actor``, in the caller's transaction; returns the case.

    Raises ``ActionInputError`` (unknown action, missing comment, bad data), ``CaseNotFound``,
    ``PermissionDenied``, ``TransitionError`` (not allowed in the current state) or ``ConflictError``
    (the case changed since ``expected_version`` / since this session read it).
    """
    now = now or utcnow()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now is a naive datetime; attach a timezone")
    table = TRANSITIONS.get(action)
    if table is None:
        raise ActionInputError(f"unknown action {action!r}; actions are: {', '.join(ACTIONS)}")
    session.flush()
    case = session.get(Case, case_id, populate_existing=True)
    if case is None or not _visible(session, case, actor):
        raise CaseNotFound(f"no case {case_id}")
    if expected_version is not None and expected_version != case.version:
        raise ConflictError(f"case {case_id} has changed (version {case.version}, you expected "
                            f"{expected_version}); reload it and try again")
    from_status, version = case.status, case.version
    tr = table.get(from_status)
    if tr is None:
        allowed = ", ".join(s for s in table) or "nowhere"
        raise TransitionError(f"cannot {action} case {case_id}: it is {from_status}; {action} is allowed "
                              f"only from {allowed}")
    problem = _permission_problem(case, actor, action, tr)
    if problem:
        raise PermissionDenied(problem)
    problem = _guard_problem(session, case, actor, action, tr)
    if problem:
        raise TransitionError(problem)
    comment = (comment or "").strip() or None
    if tr.comment and not comment:
        raise ActionInputError(f"{action} needs a comment (the reason / what was done)")
    _check_point(lon, lat)
    data = dict(data or {})
    eff = _EFFECTS[action](session, case, actor, comment, data, now)
    to = eff.to or tr.to

    stmt = (update(Case)
            .where(Case.id == case_id, Case.version == version, Case.status == from_status)
            .values(**eff.values, status=to, version=version + 1, updated_at=now)
            .execution_options(synchronize_session=False))
    if session.execute(stmt).rowcount != 1:
        session.expire(case)
        raise ConflictError(f"case {case_id} was changed by another action while you were acting "
                            f"(you saw version {version}, {from_status}); reload it and try again")
    session.refresh(case)
    append_event(session, case, action, actor, from_status=from_status, to_status=to, comment=comment,
                 lon=lon, lat=lat, data={**data, **eff.details} or None, at=now, on_time=eff.on_time,
                 comment_code=comment_code, comment_params=comment_params)
    return case


def allowed_actions(case: Case, actor: Actor) -> list[str]:
    """The actions ``actor`` may try on ``case`` now (data-dependent checks aside), in table order.

    The case must be attached to a session (scope and the handler check read the database).
    """
    session = object_session(case)
    if session is None:
        raise ValueError("allowed_actions needs a case attached to a session")
    if not _visible(session, case, actor):
        return []
    out = []
    for action, table in TRANSITIONS.items():
        tr = table.get(case.status)
        if tr is None or _permission_problem(case, actor, action, tr):
            continue
        if _guard_problem(session, case, actor, action, tr):
            continue
        out.append(action)
    return out
