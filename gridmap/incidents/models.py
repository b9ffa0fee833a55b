"""Tables of cases.

Owns: ``categories`` (the taxonomy, kept in data: time limit and default routing per category),
``cases`` (what was reported, where, the routing result and its reason, the life-cycle state and
its timestamps, an optimistic-lock ``version``), ``case_events`` (the append-only history: who,
when, what, where, comment), ``case_photos`` (stored files). The register of standard addresses that cases reported by
address are placed against belongs to :mod:`gridmap.registry` (``Address`` is re-exported here
for older imports).
"""
from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import (Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmap.db import Base, UTCDateTime, utcnow
from gridmap.registry.models import Address  # noqa: F401  (cases.address_id refers to it)

LIMIT_UNITS = ("urgent_hours", "working_hours", "working_days", "natural_days")
SOURCES = ("patrol", "resident", "hotline", "video", "upper", "department", "open311", "import")
STATUSES = ("reported", "filed", "rejected", "dispatched", "in_progress", "handled", "verifying",
            "closed", "evaluated", "parked")


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = (Index("ix_categories_parent_id", "parent_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))  # Chinese name
    name_en: Mapped[str | None] = mapped_column(String(120))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    kind: Mapped[str] = mapped_column(String(20))  # event, component, governance, dispute, hazard, service
    limit_value: Mapped[float | None] = mapped_column(Float)
    limit_unit: Mapped[str | None] = mapped_column(String(20))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # numeric class code (GB/T 30428 / CJ/T 214 layout: 2-digit main class, 4-digit subclass) and
    # where it comes from: "standard" (the standard's own code) or "local" (a local extension)
    std_code: Mapped[str | None] = mapped_column(String(4), index=True)
    std_source: Mapped[str | None] = mapped_column(String(8))
    # on-site verification (核实) by the cell's worker before filing, with its own time limit
    confirm_first: Mapped[bool] = mapped_column(Boolean, default=False)
    confirm_limit_value: Mapped[float | None] = mapped_column(Float)
    confirm_limit_unit: Mapped[str | None] = mapped_column(String(20))
    filing_criteria: Mapped[str | None] = mapped_column(Text)  # 立案标准, shown to whoever files

    parent = relationship("Category", remote_side=[id])
    department = relationship("Department")


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_cases_source_external_id"),
        Index("ix_cases_status", "status"),
        Index("ix_cases_cell_id", "cell_id"),
        Index("ix_cases_community_id", "community_id"),
        Index("ix_cases_street_id", "street_id"),
        Index("ix_cases_assignee_worker_id", "assignee_worker_id"),
        Index("ix_cases_reported_at", "reported_at"),
        Index("ix_cases_category_id", "category_id"),
        Index("ix_cases_deadline_at", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(40), unique=True)  # human-facing, e.g. 20261129-000042
    source: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str | None] = mapped_column(String(120))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    title: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="reported")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    supervised: Mapped[bool] = mapped_column(Boolean, default=False)  # 督办
    # reporter (personal data: shown only to those who handle the case)
    reporter_name: Mapped[str | None] = mapped_column(String(80))
    reporter_phone: Mapped[str | None] = mapped_column(String(40))
    reporter_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # where
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=True)
    lon: Mapped[float | None] = mapped_column(Float)  # WGS84
    lat: Mapped[float | None] = mapped_column(Float)
    input_crs: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(300))
    address_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id"))
    address_score: Mapped[float | None] = mapped_column(Float)
    placement: Mapped[str] = mapped_column(String(20), default="point")  # point, address, manual, queue
    cell_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    snapped: Mapped[bool] = mapped_column(Boolean, default=False)
    distance_m: Mapped[float | None] = mapped_column(Float)
    # routing result and its reason
    assignee_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    assignee_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    assignee_level: Mapped[str | None] = mapped_column(String(20))  # cell, community, street, district, department
    route_reason: Mapped[str | None] = mapped_column(String(300))  # English text (old rows: only this)
    route_reason_code: Mapped[str | None] = mapped_column(String(40))  # gridmap.assign.router.REASON_CODES
    route_reason_params: Mapped[str | None] = mapped_column(Text)  # JSON parameters of the code
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)  # 0 cell, 1 community, 2 street, 3 district
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # life-cycle times
    reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    filed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    deadline_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    handled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    evaluated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    handled_by_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    self_handled: Mapped[bool] = mapped_column(Boolean, default=False)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_on_time: Mapped[bool | None] = mapped_column(Boolean)
    handled_on_time: Mapped[bool | None] = mapped_column(Boolean)  # handled_at <= deadline_at, at handling
    # on-site verification before filing (核实): who, by when, when done
    confirm_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    confirm_deadline_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # 1..5
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    category = relationship(Category)
    events: Mapped[list["CaseEvent"]] = relationship(back_populates="case", order_by="CaseEvent.seq")


class CaseEvent(Base):
    """One action on a case. Rows are only ever inserted (the history is append-only)."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_events_case_id_seq"),
                      Index("ix_case_events_at", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    actor_name: Mapped[str | None] = mapped_column(String(120))  # "system", a user name, …
    comment: Mapped[str | None] = mapped_column(Text)
    comment_code: Mapped[str | None] = mapped_column(String(40))  # a system comment's code (rendered per language)
    comment_params: Mapped[str | None] = mapped_column(Text)  # its JSON parameters
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    data: Mapped[str | None] = mapped_column(Text)  # JSON details (routing, deadline, escalation …)
    on_time: Mapped[bool | None] = mapped_column(Boolean)  # steps with a time limit: confirm, file, dispatch, check

    case: Mapped[Case] = relationship(back_populates="events")


class CasePhoto(Base):
    __tablename__ = "case_photos"
    __table_args__ = (Index("ix_case_photos_case_id", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("case_events.id"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_path: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
