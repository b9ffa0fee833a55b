"""The draft tables and the vocabulary of redrawing.

Owns: ``boundary_drafts`` (one proposed change: status draft → submitted → published or rejected,
who drafted, submitted, published or rejected it and why, the log of operations, the last check's
problems, an optimistic-lock ``version``) and ``boundary_draft_areas`` (per area the draft
touches: its new geometry and figures, the action create/change/retire, and the geometry version
it was based on); the statuses, actions and roles of drafts; the default tolerance and the
household band.
"""
from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.accounts import models as _accounts_models  # noqa: F401  (users: the drafts' foreign keys)
from gridmap.assign import models as _assign_models  # noqa: F401  (users refer to workers)
from gridmap.db import Base, UTCDateTime, utcnow

DRAFT_STATUSES = ("draft", "submitted", "published", "rejected")


ACTIONS = ("create", "change", "retire")


#: case states that are over: their cell is history and is never changed by a redraw
CLOSED_CASE_STATUSES = ("closed", "evaluated", "rejected")


#: roles that may draft (within their scope) and that may publish or reject
DRAFT_ROLES = ("street", "district", "city", "admin", "system")


PUBLISH_ROLES = ("district", "city", "admin", "system")


DEFAULT_TOLERANCE_M = 0.5


#: households per urban cell, local practice (Anhui, Haikou); a warning band, never a hard limit
DEFAULT_TARGET_HOUSEHOLDS = (300, 500)


class BoundaryDraft(Base):
    __tablename__ = "boundary_drafts"
    __table_args__ = (
        CheckConstraint("status IN ('draft','submitted','published','rejected')", name="status"),
        Index("ix_boundary_drafts_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    #: the smallest area whose subtree holds everything the draft touches (for scope filtering)
    scope_area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    created_by: Mapped[str] = mapped_column(String(120))
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_by: Mapped[str | None] = mapped_column(String(120))
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    published_by: Mapped[str | None] = mapped_column(String(120))
    published_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    rejected_by: Mapped[str | None] = mapped_column(String(120))
    rejected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)  # why it was published or rejected
    operations: Mapped[str | None] = mapped_column(Text)  # JSON list: what was done, by whom, when
    problems: Mapped[str | None] = mapped_column(Text)  # JSON list: the last check's problems
    version: Mapped[int] = mapped_column(Integer, default=1)


class BoundaryDraftArea(Base):
    __tablename__ = "boundary_draft_areas"
    __table_args__ = (
        CheckConstraint("action IN ('create','change','retire')", name="action"),
        UniqueConstraint("draft_id", "code", name="uq_boundary_draft_areas_draft_id_code"),
        Index("ix_boundary_draft_areas_draft_id", "draft_id"),
        Index("ix_boundary_draft_areas_area_id", "area_id"),
        Index("ix_boundary_draft_areas_code", "code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("boundary_drafts.id", ondelete="CASCADE"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))  # None: created by the draft
    action: Mapped[str] = mapped_column(String(10))
    level: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str | None] = mapped_column(String(20))
    households: Mapped[int | None] = mapped_column(Integer)
    population: Mapped[int | None] = mapped_column(Integer)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True)
    #: the area_geometries row (and its version) the draft replaces; None for created areas
    base_geometry_id: Mapped[int | None] = mapped_column(Integer)
    base_version: Mapped[int | None] = mapped_column(Integer)
    #: JSON [[code, share of this area's surface that came from it], …]
    sources: Mapped[str | None] = mapped_column(Text)
    #: 1 when households/population were given explicitly (a file), not re-allocated by area
    fixed_figures: Mapped[int] = mapped_column(Integer, default=0)
