"""Escalation of overdue cases (超时升级).

Owns: ``escalate_overdue``, the scheduled step that finds dispatched / in-progress cases past their
deadline, marks them overdue and moves each one level up (cell 0 → community 1 → street 2 →
district 3, never beyond), re-routed to ``router.escalation_target`` with a history event. After an
escalation the case gets a new deadline (the category's time limit from now), so it climbs one level
per missed deadline. Each case is updated with a version check (``WHERE id = :id AND version = :v``):
a case changed concurrently is skipped and reported, never overwritten. Running it twice at the same
``now`` changes nothing the second time.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from gridmap.accounts.actor import SYSTEM, Actor
from gridmap.assign.calendar import CalendarGap, add_limit, require_aware
from gridmap.assign.models import Worker
from gridmap.assign.router import ESCALATION_LEVELS, Route, escalation_target
from gridmap.incidents.history import append_event
from gridmap.incidents.models import Case, Category

#: statuses whose clock runs (handled, verifying, closed, parked, rejected … do not escalate)
ESCALATING_STATUSES = ("dispatched", "in_progress")
TOP_LEVEL = max(ESCALATION_LEVELS)  # 3, the district
#: the next check for a category without a time limit
DEFAULT_LIMIT: tuple[float, str] = (1.0, "working_days")
LEVEL_NAMES = {0: "cell", **ESCALATION_LEVELS}


def _candidates(session: Session, now: dt.datetime):
    """Overdue cases not yet escalated for their current deadline, with their category's limit."""
    return session.execute(
        select(Case, Category.limit_value, Category.limit_unit)
        .join(Category, Category.id == Case.category_id)
        .where(Case.status.in_(ESCALATING_STATUSES), Case.deadline_at.is_not(None), Case.deadline_at < now,
               or_(Case.escalation_level < TOP_LEVEL,
                   and_(Case.escalation_level >= TOP_LEVEL, Case.overdue.is_(False))))
        .order_by(Case.deadline_at, Case.id)
    ).all()


def escalate_overdue(session: Session, now: dt.datetime, actor: Actor = SYSTEM) -> list[dict]:
    """Escalate every overdue case one level; returns one dict per case looked at.

    Each dict: ``case_id``, ``number``, ``result`` ("escalated"; "overdue" for a case already at the
    district that is only marked overdue; "conflict" for a case changed concurrently and skipped;
    "skipped" when the next deadline falls in a
    year without calendar data: the case is left as it is and the reason names the year),
    ``from_level``, ``to_level``, ``from_worker``/``to_worker`` (codes), ``assignee_level``,
    ``reason``, ``deadline_at`` (the new one). Runs in the caller's transaction.
    """
    require_aware(now, "now")
    rows = _candidates(session, now)
    if not rows:
        return []
    worker_ids = {c.assignee_worker_id for c, _, _ in rows if c.assignee_worker_id}
    codes: dict[int, str] = {}
    if worker_ids:
        codes.update(session.execute(select(Worker.id, Worker.code).where(Worker.id.in_(worker_ids))).all())
    targets: dict[tuple, Route] = {}
    deadlines: dict[tuple, dt.datetime] = {}
    out = []
    for case, limit_value, limit_unit in rows:
        level = case.escalation_level or 0
        old = {"worker_id": case.assignee_worker_id, "department_id": case.assignee_department_id,
               "level": case.assignee_level}
        base = {"case_id": case.id, "number": case.number, "from_level": level,
                "from_worker": codes.get(case.assignee_worker_id), "previous_deadline": case.deadline_at}
        version, status = case.version, case.status

        if level >= TOP_LEVEL:  # already with the district: mark overdue, nowhere higher to go
            values = {"overdue": True}
            item = {**base, "result": "overdue", "to_level": level, "to_worker": base["from_worker"],
                    "assignee_level": case.assignee_level, "reason": case.route_reason,
                    "deadline_at": case.deadline_at}
            comment = "overdue at the top level (district); no higher level to escalate to"
        else:
            to = level + 1
            key = (to, case.cell_id, case.community_id, case.street_id, case.district_id)
            if key not in targets:
                targets[key] = escalation_target(session, case, to, at=now)
            target = targets[key]
            value, unit = ((limit_value, limit_unit) if limit_value is not None and limit_unit
                           else DEFAULT_LIMIT)
            if (value, unit) not in deadlines:
                try:
                    deadlines[(value, unit)] = add_limit(session, now, value, unit)
                except CalendarGap as e:  # no next deadline without the year's calendar: left as it is
                    deadlines[(value, unit)] = e
            deadline = deadlines[(value, unit)]
            if isinstance(deadline, CalendarGap):
                out.append({**base, "result": "skipped", "to_level": level, "to_worker": base["from_worker"],
                            "assignee_level": case.assignee_level, "reason": str(deadline),
                            "deadline_at": case.deadline_at})
                continue
            values = {"overdue": True, "escalation_level": to, "deadline_at": deadline}
            if target.level != "unroutable":
                values.update(assignee_worker_id=target.worker_id, assignee_department_id=target.department_id,
                              assignee_level=target.level, **target.columns())
            to_worker_code = None
            if target.worker_id is not None:
                if target.worker_id not in codes:
                    codes[target.worker_id] = session.scalar(select(Worker.code).where(Worker.id == target.worker_id))
                to_worker_code = codes[target.worker_id]
            elif target.level == "unroutable":
                to_worker_code = base["from_worker"]
            item = {**base, "result": "escalated", "to_level": to, "to_worker": to_worker_code,
                    "assignee_level": values.get("assignee_level", case.assignee_level),
                    "reason": target.reason, "deadline_at": deadline}
            comment = f"overdue: escalated from {LEVEL_NAMES[level]} to {LEVEL_NAMES[to]}"

        res = session.execute(
            update(Case)
            .where(Case.id == case.id, Case.version == version, Case.status == status)
            .values(**values, version=Case.version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:
            out.append({**base, "result": "conflict", "to_level": level, "to_worker": base["from_worker"],
                        "assignee_level": case.assignee_level,
                        "reason": f"case changed concurrently (version {version} is stale); skipped",
                        "deadline_at": case.deadline_at})
            session.expire(case)
            continue
        new = {"worker_id": values.get("assignee_worker_id", old["worker_id"]),
               "department_id": values.get("assignee_department_id", old["department_id"]),
               "level": values.get("assignee_level", old["level"])}
        append_event(session, case, "escalate" if item["result"] == "escalated" else "overdue", actor,
                     from_status=status, to_status=status, comment=comment, at=now,
                     data={"from_level": level, "to_level": item["to_level"], "from_assignee": old,
                           "to_assignee": new, "reason": item["reason"],
                           "previous_deadline": base["previous_deadline"], "deadline_at": item["deadline_at"]})
        session.expire(case)
        out.append(item)
    return out
