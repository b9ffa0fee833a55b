"""Server-side login sessions: the cookie holds a random id, the database decides whether it still counts.

Owns: starting a session at login, resolving the cookie's id on each request (refused once it was
ended: logout, password change, user disabled; or after the idle or absolute timeout) and ending
one or all sessions of a user. Only a SHA-256 of the id is stored, so a leaked database does not
give working cookies. ``last_seen_at`` is written at most once a minute, not on every request.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gridmap.accounts.models import User, UserSession
from gridmap.db import utcnow

#: how stale ``last_seen_at`` may get before a request writes it again
TOUCH_INTERVAL = dt.timedelta(seconds=60)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def start_session(session: Session, user: User, address: str | None = None) -> str:
    """A new session for ``user``; returns the id to put in the cookie (shown once)."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(UserSession(user_id=user.id, session_hash=_digest(raw), created_at=now, last_seen_at=now,
                            address=(address or "")[:64] or None))
    session.flush()
    return raw


def resolve_session(session: Session, raw: str | None, *, idle: dt.timedelta, absolute: dt.timedelta,
                    now: dt.datetime | None = None) -> User | None:
    """The active user of the session with this id, or None (ended, timed out, disabled user).

    A session found timed out is ended here (reason ``idle`` or ``absolute``). The caller commits.
    """
    if not raw or not isinstance(raw, str) or len(raw) > 200:
        return None
    row = session.scalar(select(UserSession).where(UserSession.session_hash == _digest(raw)))
    if row is None or row.ended_at is not None:
        return None
    now = now or utcnow()
    reason = None
    if now - row.created_at >= absolute:
        reason = "absolute"
    elif now - row.last_seen_at >= idle:
        reason = "idle"
    elif not row.user.active:
        reason = "disabled"
    if reason:
        row.ended_at, row.end_reason = now, reason
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now
    return row.user


def end_session(session: Session, raw: str | None, reason: str = "logout") -> int | None:
    """End the session with this id; returns its user's id (None when there was none)."""
    if not raw or not isinstance(raw, str):
        return None
    row = session.scalar(select(UserSession).where(UserSession.session_hash == _digest(raw)))
    if row is None:
        return None
    if row.ended_at is None:
        row.ended_at, row.end_reason = utcnow(), reason
    return row.user_id


def end_user_sessions(session: Session, user_id: int, reason: str) -> int:
    """End every open session of a user (password change, disabled); returns how many."""
    res = session.execute(update(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
                          .values(ended_at=utcnow(), end_reason=reason))
    return res.rowcount or 0
