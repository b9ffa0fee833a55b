"""Tables of assignment.

Owns: ``departments`` (functional departments cases can be routed to by category, 权责清单),
``workers`` (grid workers 专职/兼职, grid heads, community/street/district staff, department staff),
``responsibilities`` (worker ↔ cell, primary or backup, over a date range), ``absences`` (the duty
roster: leave with an optional substitute) and ``calendar_days`` (holidays and make-up working
days that override the Monday–Friday rule).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmap.db import Base, UTCDateTime, utcnow

WORKER_ROLES = ("worker", "head", "community", "street", "district", "department")
EMPLOYMENT = ("full_time", "part_time")


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))  # its jurisdiction, if any


class Worker(Base):
    __tablename__ = "workers"
    __table_args__ = (
        CheckConstraint("role IN ('worker','head','community','street','district','department')", name="role"),
        Index("ix_workers_area_id", "area_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    phone: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(20))
    employment: Mapped[str | None] = mapped_column(String(20))
    # the area a head/staff member answers for (community for a head, street, district);
    # for a grid worker the home community (cells come from responsibilities)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    area = relationship("Area")
    department = relationship(Department)


class Responsibility(Base):
    __tablename__ = "responsibilities"
    __table_args__ = (
        CheckConstraint("role IN ('primary','backup')", name="role"),
        Index("ix_responsibilities_cell_id", "cell_id"),
        Index("ix_responsibilities_worker_id", "worker_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"))
    cell_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    role: Mapped[str] = mapped_column(String(10), default="primary")
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)  # exclusive; NULL = open-ended

    worker = relationship(Worker)


class Absence(Base):
    """A worker away (leave, training) from ``start`` to ``end``; ``substitute`` covers their cells."""

    __tablename__ = "absences"
    __table_args__ = (Index("ix_absences_worker_id", "worker_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"))
    start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    end: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    substitute_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    reason: Mapped[str | None] = mapped_column(String(200))


class CalendarDay(Base):
    """An exception to the Monday–Friday working week: a holiday, or a make-up working day (调休)."""

    __tablename__ = "calendar_days"
    __table_args__ = (CheckConstraint("kind IN ('holiday','workday')", name="kind"),)

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str | None] = mapped_column(String(80))
