"""Tables of field work.

Owns: ``idempotency_keys`` (what a phone's replayed request was first answered: see
:mod:`gridmap.web.idempotency`) and ``notification_marks`` (per user: when the notifications were last seen; the notifications
themselves are not stored, they are read from the cases' history, see
:mod:`gridmap.fieldwork.notifications`).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db import Base, UTCDateTime, utcnow


class NotificationMark(Base):
    __tablename__ = "notification_marks"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id_key"),
                      Index("ix_idempotency_keys_created_at", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
