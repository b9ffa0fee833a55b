"""The append-only case history.

Owns: writing one ``case_events`` row per action (who, when, what, where, comment, details as
JSON). Rows are only inserted, never updated or deleted; ``seq`` numbers a case's events 1, 2, 3 …
and the unique (case_id, seq) makes two concurrent writers of the same step impossible.
"""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.db import utcnow
from gridmap.incidents.models import Case, CaseEvent


def append_event(session: Session, case: Case, action: str, actor: Actor, *, from_status: str | None = None,
                 to_status: str | None = None, comment: str | None = None, lon: float | None = None,
                 lat: float | None = None, data: dict | None = None, at: dt.datetime | None = None,
                 on_time: bool | None = None, comment_code: str | None = None,
                 comment_params: dict | None = None) -> CaseEvent:
    """Append one event to ``case``'s history (in the caller's transaction). A system comment may
    come as ``comment_code`` + ``comment_params`` (rendered per language) beside its English text."""
    if case.id is None:
        session.flush()
    seq = (session.scalar(select(func.max(CaseEvent.seq)).where(CaseEvent.case_id == case.id)) or 0) + 1
    ev = CaseEvent(case_id=case.id, seq=seq, action=action, from_status=from_status, to_status=to_status,
                   at=at or utcnow(), actor_user_id=actor.user_id, actor_worker_id=actor.worker_id,
                   actor_name=actor.name, comment=comment, lon=lon, lat=lat, on_time=on_time,
                   comment_code=comment_code,
                   comment_params=json.dumps(comment_params, ensure_ascii=False) if comment_params else None,
                   data=json.dumps(data, ensure_ascii=False, default=str) if data else None)
    session.add(ev)
    session.flush()
    return ev


def event_dict(ev: CaseEvent) -> dict:
    return {"seq": ev.seq, "action": ev.action, "from_status": ev.from_status, "to_status": ev.to_status,
            "at": ev.at.isoformat() if ev.at else None, "actor": ev.actor_name, "actor_user_id": ev.actor_user_id,
            "actor_worker_id": ev.actor_worker_id, "comment": ev.comment, "comment_code": ev.comment_code,
            "comment_params": json.loads(ev.comment_params) if ev.comment_params else None,
            "lon": ev.lon, "lat": ev.lat, "on_time": ev.on_time,
            "data": json.loads(ev.data) if ev.data else None}
