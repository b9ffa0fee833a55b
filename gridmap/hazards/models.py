"""Tables of the hazard register (隐患台账).

Owns: ``hazard_types`` (the types, kept in data: ``data/hazard_types.json`` with a default
rectification limit and inspection interval each), ``hazards`` (one hazard: type, grade, a point
OR an area geometry, the cell of its point / centroid and the areas above it, the responsible unit
and worker found by the router, the rectification deadline, the life-cycle state and an
optimistic-lock ``version``), ``hazard_events`` (the append-only status history),
``hazard_cases`` (links to cases), ``hazard_photos`` (photos of a rectification),
``inspection_schedules`` (recurring inspections: every
``interval_days`` from ``start_date`` until ``end_date``) and ``inspection_tasks`` (one due
inspection for the responsible worker: due date, done_at, result; unique per schedule and date, so
generating them twice changes nothing).
"""
from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import (Boolean, CheckConstraint, Date, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, false)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmap.db import Base, UTCDateTime, utcnow

#: hazard grades (安监总局令第16号 第三条): 一般事故隐患 (small harm, rectified at once) and 重大事故隐患
#: (great harm or hard to rectify: production stopped in whole or part, rectified over time under a plan)
GRADES = ("general", "major")
GRADE_ZH = {"general": "一般", "major": "重大"}
GRADE_FULL_ZH = {"general": "一般事故隐患", "major": "重大事故隐患"}
#: the accident grades (生产安全事故报告和调查处理条例 第三条), kept apart: the grade of the accident a
#: hazard could cause, where a record needs it (never the hazard's own grade)
ACCIDENT_GRADES = ("general", "larger", "major", "especially_major")
ACCIDENT_GRADE_ZH = {"general": "一般事故", "larger": "较大事故", "major": "重大事故", "especially_major": "特别重大事故"}
#: open → rectified (整改完成) → verified (核查通过) → closed (销号); a failed check returns to open,
#: a reopened hazard (closed or verified → open) too
HAZARD_STATUSES = ("open", "rectified", "verified", "closed")
STATUS_ZH = {"open": "待整改", "rectified": "已整改", "verified": "已核查", "closed": "已销号"}
TASK_RESULTS = ("ok", "issue", "absent")
TASK_RESULT_ZH = {"ok": "正常", "issue": "发现问题", "absent": "未能检查"}


class HazardType(Base):
    __tablename__ = "hazard_types"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    name_en: Mapped[str | None] = mapped_column(String(120))
    category_code: Mapped[str | None] = mapped_column(String(60))  # the matching case category, e.g. hazard.fire
    rectify_limit_value: Mapped[float] = mapped_column(Float)
    rectify_limit_unit: Mapped[str] = mapped_column(String(20))
    inspection_interval_days: Mapped[int | None] = mapped_column(Integer)
    grade_limits: Mapped[str | None] = mapped_column(Text)  # JSON {"major": {"value": 30, "unit": …}}
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Hazard(Base):
    __tablename__ = "hazards"
    __table_args__ = (
        CheckConstraint("grade IN ('general','major')", name="grade"),
        CheckConstraint("accident_grade IS NULL OR accident_grade IN ('general','larger','major','especially_major')",
                        name="accident_grade"),
        CheckConstraint("status IN ('open','rectified','verified','closed')", name="status"),
        CheckConstraint("geom_kind IN ('point','area')", name="geom_kind"),
        UniqueConstraint("source", "external_id", name="uq_hazards_source_external_id"),
        Index("ix_hazards_status", "status"),
        Index("ix_hazards_type_id", "type_id"),
        Index("ix_hazards_cell_id", "cell_id"),
        Index("ix_hazards_community_id", "community_id"),
        Index("ix_hazards_street_id", "street_id"),
        Index("ix_hazards_found_at", "found_at"),
        Index("ix_hazards_responsible_worker_id", "responsible_worker_id"),
        Index("ix_hazards_grade", "grade"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(40), unique=True)  # YH20260302-000001
    source: Mapped[str] = mapped_column(String(20), default="manual")  # manual, patrol, import, case
    external_id: Mapped[str | None] = mapped_column(String(120))
    type_id: Mapped[int] = mapped_column(ForeignKey("hazard_types.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    grade: Mapped[str] = mapped_column(String(10), default="general")
    accident_grade: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), default="open")
    # where: a point or an area (Polygon / MultiPolygon), and the point that places it in a cell
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False)
    geom_kind: Mapped[str] = mapped_column(String(6), default="point")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    cell_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    # who answers for it
    responsible_unit: Mapped[str | None] = mapped_column(String(200))  # 责任单位 (owner, enterprise, department)
    responsible_person: Mapped[str | None] = mapped_column(String(80))
    responsible_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    route_reason: Mapped[str | None] = mapped_column(String(300))
    # times
    found_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rectify_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    rectified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    # 督办 (supervision by a higher level), deadline extensions, re-openings
    supervised: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    supervised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    supervised_by: Mapped[str | None] = mapped_column(String(120))
    extension_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reported_by: Mapped[str | None] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    type = relationship(HazardType)
    events: Mapped[list["HazardEvent"]] = relationship(back_populates="hazard", order_by="HazardEvent.seq")


class HazardEvent(Base):
    """One action on a hazard. Rows are only ever inserted (the history is append-only)."""

    __tablename__ = "hazard_events"
    __table_args__ = (UniqueConstraint("hazard_id", "seq", name="uq_hazard_events_hazard_id_seq"),
                      Index("ix_hazard_events_at", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str | None] = mapped_column(String(12))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    actor_name: Mapped[str | None] = mapped_column(String(120))
    comment: Mapped[str | None] = mapped_column(Text)
    data: Mapped[str | None] = mapped_column(Text)  # JSON details

    hazard: Mapped[Hazard] = relationship(back_populates="events")


class HazardCase(Base):
    """A hazard ↔ case link (the case that reported it, or cases it caused)."""

    __tablename__ = "hazard_cases"
    __table_args__ = (Index("ix_hazard_cases_case_id", "case_id"),)

    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    relation: Mapped[str] = mapped_column(String(20), default="related")  # reported_by, related
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HazardPhoto(Base):
    """A photo of a hazard (sent with a rectification, or on its own), stored under instance/photos/hazards/."""

    __tablename__ = "hazard_photos"
    __table_args__ = (Index("ix_hazard_photos_hazard_id", "hazard_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("hazard_events.id"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_path: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InspectionSchedule(Base):
    """Inspect a hazard (or a whole cell) every ``interval_days`` from ``start_date`` to ``end_date``."""

    __tablename__ = "inspection_schedules"
    __table_args__ = (
        CheckConstraint("interval_days > 0", name="interval_days"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="end_date"),
        CheckConstraint("hazard_id IS NOT NULL OR cell_id IS NOT NULL", name="target"),
        Index("ix_inspection_schedules_hazard_id", "hazard_id"),
        Index("ix_inspection_schedules_cell_id", "cell_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hazard_id: Mapped[int | None] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"))
    cell_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    title: Mapped[str | None] = mapped_column(String(200))
    interval_days: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[dt.date] = mapped_column(Date)  # Asia/Shanghai calendar dates
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InspectionTask(Base):
    """One due inspection: for the worker responsible for the cell on the due date."""

    __tablename__ = "inspection_tasks"
    __table_args__ = (
        UniqueConstraint("schedule_id", "due_date", name="uq_inspection_tasks_schedule_id_due_date"),
        CheckConstraint("result IS NULL OR result IN ('ok','issue','absent')", name="result"),
        Index("ix_inspection_tasks_due_date", "due_date"),
        Index("ix_inspection_tasks_worker_id", "worker_id"),
        Index("ix_inspection_tasks_cell_id", "cell_id"),
        Index("ix_inspection_tasks_hazard_id", "hazard_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("inspection_schedules.id", ondelete="CASCADE"))
    hazard_id: Mapped[int | None] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"))
    cell_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    due_date: Mapped[dt.date] = mapped_column(Date)
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    assign_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    done_by_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    done_by: Mapped[str | None] = mapped_column(String(120))
    result: Mapped[str | None] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(Text)

    schedule = relationship(InspectionSchedule)
