"""In-app notifications of a grid worker, with the badge count: new assignments, cases sent back
after a failed check, extensions denied, hazards assigned to her, and deadlines approaching (临期).

Owns: :func:`notifications_for` and :func:`mark_seen`. Notifications are read from what already
happened (the cases' append-only history, the hazard register), never written as separate rows:
a notification cannot disagree with the record it points at. Only the moment a user last looked
is stored (``notification_marks``). The badge counts notifications newer than that moment; a
deadline approaching "happens" ``due_soon_hours`` before the deadline.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.db import utcnow
from gridmap.fieldwork.models import NotificationMark
from gridmap.fieldwork.tasks import DEFAULT_DUE_SOON_HOURS, OPEN_CASE_STATUSES
from gridmap.hazards.models import Hazard
from gridmap.incidents.models import Case, CaseEvent

#: history actions that make a notification for the case's current assignee
CASE_EVENTS = {"dispatch": "assigned", "reassign": "assigned", "verify_fail": "rework",
               "deny_extension": "extension_denied"}
KINDS = ("assigned", "rework", "extension_denied", "due_soon", "hazard_assigned")
WINDOW_DAYS = 14
#: a case over is no news any more
CLOSED_STATUSES = ("closed", "evaluated", "rejected")
LIMIT = 100


def _aware(t):
    return t.replace(tzinfo=dt.timezone.utc) if t is not None and t.tzinfo is None else t


def seen_at(session: Session, user_id: int | None) -> dt.datetime | None:
    if user_id is None:
        return None
    mark = session.get(NotificationMark, user_id)
    return _aware(mark.seen_at) if mark else None


def mark_seen(session: Session, user_id: int, at: dt.datetime | None = None) -> dt.datetime:
    """Record that the user has seen everything up to ``at`` (now); in the caller's transaction."""
    at = at or utcnow()
    mark = session.get(NotificationMark, user_id)
    if mark is None:
        session.add(NotificationMark(user_id=user_id, seen_at=at))
    elif _aware(mark.seen_at) < at:
        mark.seen_at = at
    session.flush()
    return at


def notifications_for(session: Session, actor: Actor, *, now: dt.datetime | None = None,
                      due_soon_hours: float = DEFAULT_DUE_SOON_HOURS) -> dict:
    """``{"items": [...], "unread": n, "seen_at": iso|None}``: the last WINDOW_DAYS, newest first;
    only about cases that are still open and hers."""
    now = now or utcnow()
    last = seen_at(session, actor.user_id)
    if actor.worker_id is None:
        return {"items": [], "unread": 0, "seen_at": last.isoformat() if last else None}
    wid = actor.worker_id
    since = now - dt.timedelta(days=WINDOW_DAYS)
    items: list[dict] = []
    for ev, case in session.execute(
            select(CaseEvent, Case).join(Case, Case.id == CaseEvent.case_id)
            .where(Case.assignee_worker_id == wid, Case.status.notin_(CLOSED_STATUSES),
                   CaseEvent.action.in_(tuple(CASE_EVENTS)),
                   CaseEvent.at > since, CaseEvent.at <= now)
            .order_by(CaseEvent.at.desc()).limit(LIMIT)):
        if ev.actor_worker_id == wid:
            continue  # what she did herself is no news to her
        items.append({"kind": CASE_EVENTS[ev.action], "at": _aware(ev.at), "case_id": case.id,
                      "number": case.number, "url": f"/cases/{case.id}", "comment": ev.comment})
    soon = dt.timedelta(hours=due_soon_hours)
    for case in session.scalars(
            select(Case).where(Case.assignee_worker_id == wid, Case.status.in_(OPEN_CASE_STATUSES),
                               Case.deadline_at.is_not(None), Case.deadline_at > now,
                               Case.deadline_at <= now + soon)):
        items.append({"kind": "due_soon", "at": _aware(case.deadline_at) - soon, "case_id": case.id,
                      "number": case.number, "url": f"/cases/{case.id}",
                      "deadline_at": _aware(case.deadline_at).isoformat()})
    for h in session.scalars(
            select(Hazard).where(Hazard.responsible_worker_id == wid, Hazard.status == "open",
                                 Hazard.created_at > since, Hazard.created_at <= now)):
        items.append({"kind": "hazard_assigned", "at": _aware(h.created_at), "hazard_id": h.id,
                      "number": h.number, "url": f"/hazards/{h.id}"})
    items.sort(key=lambda i: i["at"], reverse=True)
    items = items[:LIMIT]
    for i in items:
        i["unread"] = last is None or i["at"] > last
        i["at"] = i["at"].isoformat()
    return {"items": items, "unread": sum(i["unread"] for i in items),
            "seen_at": last.isoformat() if last else None}
