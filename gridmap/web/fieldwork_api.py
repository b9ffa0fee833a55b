"""JSON API of a grid worker's day (``/api/v1/tasks``, ``/api/v1/notifications``): thin views over
:mod:`gridmap.fieldwork`.

  GET  /api/v1/tasks                   her tasks, overdue first then by deadline, with counts per kind
  GET  /api/v1/notifications           new assignments, rework, denied extensions, deadlines
                                       approaching, hazards assigned; ``unread`` is the badge
  POST /api/v1/notifications/seen      {"at"?}: everything up to now (or ``at``) has been seen

Every view needs a login; a user who is no grid worker gets empty lists (nothing is hers).
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, jsonify, request

from gridmap import get_session
from gridmap.db import utcnow
from gridmap.fieldwork.notifications import mark_seen, notifications_for
from gridmap.fieldwork.tasks import counts, tasks_for
from gridmap.web.auth import current_actor, current_user, login_required
from gridmap.web.errors import APIError

bp = Blueprint("fieldwork_api", __name__, url_prefix="/api/v1")


def _due_soon_hours() -> float:
    return float(current_app.config.get("GRIDMAP_DUE_SOON_HOURS", 24))


@bp.get("/tasks")
@login_required
def tasks():
    items = tasks_for(get_session(), current_actor(), due_soon_hours=_due_soon_hours(),
                      tz=current_app.config["GRIDMAP_TIMEZONE"])
    return jsonify({"items": items, "counts": counts(items)})


@bp.get("/notifications")
@login_required
def notifications():
    return jsonify(notifications_for(get_session(), current_actor(), due_soon_hours=_due_soon_hours()))


@bp.post("/notifications/seen")
@login_required
def notifications_seen():
    body = request.get_json(silent=True) if request.data else None
    at = utcnow()
    if isinstance(body, dict) and body.get("at") is not None:
        raw = body["at"]
        try:
            if not isinstance(raw, str):
                raise ValueError
            at = dt.datetime.fromisoformat(raw)
            if at.tzinfo is None:
                raise ValueError
            at = at.astimezone(dt.timezone.utc)
        except (ValueError, OverflowError):
            raise APIError("'at' must be an ISO time with a time zone, e.g. 2026-03-02T09:00:00+08:00",
                           field="at") from None
        at = min(at, utcnow())
    session = get_session()
    done = mark_seen(session, current_user().id, at)
    session.commit()
    return jsonify({"seen_at": done.isoformat(),
                    "unread": notifications_for(session, current_actor(), due_soon_hours=_due_soon_hours())["unread"]})
