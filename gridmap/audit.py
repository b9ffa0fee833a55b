"""The audit log: who did what security-relevant thing, when, from where.

Owns: the ``audit_log`` table, ``record`` (one row per event; the caller's transaction commits it),
``search`` (filtered, newest first, paged) and the list of action codes. Rows store a code and
parameters, never rendered text, so the admin page shows them in the reader's language.
Logged: logins, failed and throttled logins, logouts, API token use (the first use per token per
hour, not every request), token creation and revocation, users created, disabled, enabled or given
a new password, exports of personal data, boundary publishes.

This module sits at the bottom with ``gridmap.db``: it imports no domain, so every domain
(boundaries and redrawing included) may call it.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gridmap.db import Base, UTCDateTime, utcnow

#: every action code written to the log
ACTIONS = (
    "login", "login.failed", "login.throttled", "logout",
    "token.use", "token.create", "token.revoke",
    "user.create", "user.disable", "user.enable", "user.passwd",
    "export.personal", "boundary.publish",
)
#: token use is logged at most once per token in this interval
TOKEN_USE_INTERVAL = dt.timedelta(hours=1)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor_name: Mapped[str | None] = mapped_column(String(120))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)  # JSON object of parameters
    address: Mapped[str | None] = mapped_column(String(64))

    @property
    def params(self) -> dict:
        try:
            out = json.loads(self.detail) if self.detail else {}
        except ValueError:
            return {}
        return out if isinstance(out, dict) else {}


def record(session: Session, action: str, *, actor_user_id: int | None = None, actor_name: str | None = None,
           target: str | None = None, address: str | None = None, at: dt.datetime | None = None,
           **detail) -> AuditEntry:
    """Add one entry (flushed, not committed: it lands with the caller's transaction)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(action=action, actor_user_id=actor_user_id, actor_name=(actor_name or None) and actor_name[:120],
                       target=target[:200] if target else None, address=address[:64] if address else None,
                       detail=json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
                       at=at or utcnow())
    session.add(entry)
    session.flush()
    return entry


def record_for(session: Session, action: str, actor, **kw) -> AuditEntry:
    """``record`` with the name and user id of an Actor (or None for the system)."""
    return record(session, action, actor_user_id=getattr(actor, "user_id", None),
                  actor_name=getattr(actor, "name", None), **kw)


@dataclass
class Page:
    entries: list[AuditEntry]
    total: int


def search(session: Session, *, action: str | None = None, actor: str | None = None,
           date_from: dt.datetime | None = None, date_to: dt.datetime | None = None,
           limit: int = 100, offset: int = 0) -> Page:
    """Entries matching every given filter, newest first. ``actor`` matches the name exactly or
    the start of it; ``action`` is a code or a prefix ending in '.' (``user.``)."""
    conds = []
    if action:
        conds.append(AuditEntry.action.startswith(action) if action.endswith(".") else AuditEntry.action == action)
    if actor:
        conds.append(AuditEntry.actor_name.startswith(actor, autoescape=True))
    if date_from is not None:
        conds.append(AuditEntry.at >= date_from)
    if date_to is not None:
        conds.append(AuditEntry.at < date_to)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*conds)) or 0
    rows = list(session.scalars(select(AuditEntry).where(*conds)
                                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset)))
    return Page(rows, int(total))
