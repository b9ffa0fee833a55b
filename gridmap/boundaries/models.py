"""Tables of the boundary hierarchy.

Owns: ``areas`` (one row per district, street, community or cell: its identity, code, name,
parent, kind and household figures, which never change when its geometry does) and
``area_geometries`` (the geometry versions of an area, each valid from ``valid_from`` until
``valid_to``; the current one has ``valid_to`` NULL). Keeping identity apart from geometry is
what MapIt learned the hard way: a redraw never changes a cell's id or code.
"""
from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmap.db import Base, UTCDateTime, utcnow

LEVELS = ("district", "street", "community", "cell")
PARENT_LEVEL = {"street": "district", "community": "street", "cell": "community"}
CHILD_LEVEL = {v: k for k, v in PARENT_LEVEL.items()}

#: special-purpose cells (专属网格) and what they serve: "special" when the purpose is not said
SPECIAL_CELL_KINDS = ("special", "school", "hospital", "market", "port", "industrial_park", "enterprise",
                      "scenic_area")
#: kinds allowed per level (shown in the UI as 区/县, 街道/镇/乡, 社区/村, 网格)
KINDS = {
    "district": ("district", "county"),
    "street": ("street", "town", "township"),
    "community": ("residents", "village"),
    "cell": ("base",) + SPECIAL_CELL_KINDS,
}
#: the Chinese words boundary files use for the kinds (an import accepts either)
KIND_ALIASES = {
    "区": "district", "市辖区": "district", "县": "county", "县级市": "county",
    "街道": "street", "街道办事处": "street", "镇": "town", "乡": "township", "民族乡": "township",
    "社区": "residents", "居委会": "residents", "居民委员会": "residents", "村": "village",
    "村委会": "village", "村民委员会": "village", "行政村": "village",
    "基础网格": "base", "网格": "base", "专属网格": "special", "学校": "school", "医院": "hospital",
    "市场": "market", "港口": "port", "码头": "port", "园区": "industrial_park", "产业园区": "industrial_park",
    "企业": "enterprise", "景区": "scenic_area",
}
LEVEL_ZH = {"district": "区县", "street": "街道乡镇", "community": "社区村", "cell": "网格"}


class Area(Base):
    __tablename__ = "areas"
    __table_args__ = (
        CheckConstraint("level IN ('district','street','community','cell')", name="level"),
        Index("ix_areas_parent_id", "parent_id"),
        Index("ix_areas_level", "level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    kind: Mapped[str | None] = mapped_column(String(20))
    households: Mapped[int | None] = mapped_column(Integer)
    population: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    parent: Mapped["Area | None"] = relationship(remote_side=[id])
    geometries: Mapped[list["AreaGeometry"]] = relationship(
        back_populates="area", order_by="AreaGeometry.version"
    )

    def __repr__(self) -> str:
        return f"<Area {self.level} {self.code} {self.name}>"


class AreaGeometry(Base):
    __tablename__ = "area_geometries"
    __table_args__ = (
        Index("ix_area_geometries_area_id", "area_id"),
        # at most one current geometry per area
        Index(
            "uq_area_geometries_current",
            "area_id",
            unique=True,
            postgresql_where=text("valid_to IS NULL"),
            sqlite_where=text("valid_to IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    area_m2: Mapped[float] = mapped_column(Float)
    valid_from: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    valid_to: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    area: Mapped[Area] = relationship(back_populates="geometries")
