"""Tables of the base registry.

Owns: ``addresses`` (标准地址: stable code, full text, its comparison form and parts, a WGS84
point and the cell / community / street / district it lies in), ``registry_buildings`` (实有房屋),
``registry_households`` (户), ``registry_persons`` (实有人口: identity number and phone kept only as
a keyed digest, an AES-GCM ciphertext and a masked form, never in plain text), ``registry_tags``
and ``registry_person_tags`` (the groups grid workers look after, kept in data),
``registry_organisations`` (实有单位) and ``registry_access_log`` (who saw a whole identity number
or exported personal data, when, whose record, for what).

Buildings, households and organisations take the cell of their address; residents that of their
household (the area columns are copied so that scope filters need no join).
"""
from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db import Base, UTCDateTime, utcnow

HOUSEHOLD_USES = ("own", "rent", "vacant")  # 自住 / 出租 / 空置
RESIDENCE_TYPES = ("registered", "floating", "overseas")  # 户籍 / 流动 / 境外
GENDERS = ("M", "F")
ACCESS_ACTIONS = ("view_full", "export")


class _Placed:
    """The area columns every registry record carries (copied from its address or household)."""

    cell_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))


class Address(_Placed, Base):
    """A standard address (标准地址) with its WGS84 point and its cell."""

    __tablename__ = "addresses"
    __table_args__ = (Index("ix_addresses_normalized", "normalized"), Index("ix_addresses_cell_id", "cell_id"),
                      Index("ix_addresses_community_id", "community_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str | None] = mapped_column(String(60), unique=True)
    address: Mapped[str] = mapped_column(String(300))
    normalized: Mapped[str] = mapped_column(String(300))
    road: Mapped[str | None] = mapped_column(String(80))
    number: Mapped[str | None] = mapped_column(String(20))
    building: Mapped[str | None] = mapped_column(String(20))
    unit: Mapped[str | None] = mapped_column(String(20))
    room: Mapped[str | None] = mapped_column(String(20))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    cell_code: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=utcnow)


class Building(_Placed, Base):
    __tablename__ = "registry_buildings"
    __table_args__ = (Index("ix_registry_buildings_cell_id", "cell_id"),
                      Index("ix_registry_buildings_community_id", "community_id"),
                      Index("ix_registry_buildings_address_id", "address_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id"))
    name: Mapped[str | None] = mapped_column(String(120))
    floors: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str | None] = mapped_column(String(40))
    footprint = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=utcnow)


class Household(_Placed, Base):
    __tablename__ = "registry_households"
    __table_args__ = (CheckConstraint("use IN ('own','rent','vacant')", name="use"),
                      Index("ix_registry_households_cell_id", "cell_id"),
                      Index("ix_registry_households_community_id", "community_id"),
                      Index("ix_registry_households_address_id", "address_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("registry_buildings.id"))
    room: Mapped[str | None] = mapped_column(String(40))
    size: Mapped[int | None] = mapped_column(Integer)
    use: Mapped[str] = mapped_column(String(10), default="own")
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=utcnow)


class Person(_Placed, Base):
    """A resident. ``id_digest``/``phone_digest``: HMAC-SHA256 (lookups, de-duplication);
    ``*_cipher``: AES-GCM (whole view by permitted roles); ``*_masked``: what everyone else sees."""

    __tablename__ = "registry_persons"
    __table_args__ = (CheckConstraint("gender IN ('M','F')", name="gender"),
                      CheckConstraint("residence IN ('registered','floating','overseas')", name="residence"),
                      Index("ix_registry_persons_cell_id", "cell_id"),
                      Index("ix_registry_persons_community_id", "community_id"),
                      Index("ix_registry_persons_household_id", "household_id"),
                      Index("ix_registry_persons_phone_digest", "phone_digest"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_digest: Mapped[str] = mapped_column(String(64), unique=True)
    id_cipher: Mapped[str] = mapped_column(String(120))
    id_masked: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(String(80))
    gender: Mapped[str | None] = mapped_column(String(1))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    phone_digest: Mapped[str | None] = mapped_column(String(64))
    phone_cipher: Mapped[str | None] = mapped_column(String(120))
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    household_id: Mapped[int] = mapped_column(ForeignKey("registry_households.id"))
    residence: Mapped[str] = mapped_column(String(12), default="registered")
    moved_out_on: Mapped[dt.date | None] = mapped_column(Date)  # retired, never deleted
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=utcnow)


class Tag(Base):
    """A group grid workers look after (独居老人, 低保 …); extensible in data."""

    __tablename__ = "registry_tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    name_en: Mapped[str | None] = mapped_column(String(80))


class PersonTag(Base):
    __tablename__ = "registry_person_tags"
    __table_args__ = (Index("ix_registry_person_tags_tag_id", "tag_id"),)

    person_id: Mapped[int] = mapped_column(ForeignKey("registry_persons.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("registry_tags.id"), primary_key=True)


class Organisation(_Placed, Base):
    __tablename__ = "registry_organisations"
    __table_args__ = (Index("ix_registry_organisations_cell_id", "cell_id"),
                      Index("ix_registry_organisations_community_id", "community_id"),
                      Index("ix_registry_organisations_address_id", "address_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(40))
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id"))
    contact: Mapped[str | None] = mapped_column(String(80))
    phone_digest: Mapped[str | None] = mapped_column(String(64))
    phone_cipher: Mapped[str | None] = mapped_column(String(120))
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=utcnow)


class AccessLog(Base):
    """One whole view of personal data or one export: who, when, whose record(s), for what."""

    __tablename__ = "registry_access_log"
    __table_args__ = (CheckConstraint("action IN ('view_full','export')", name="action"),
                      Index("ix_registry_access_log_at", "at"),
                      Index("ix_registry_access_log_record", "kind", "record_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_name: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(20))  # persons, organisations, …
    record_id: Mapped[int | None] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer, default=1)
    purpose: Mapped[str] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)  # JSON: filters of an export


__all__ = ["Address", "Building", "Household", "Person", "Tag", "PersonTag", "Organisation", "AccessLog"]
