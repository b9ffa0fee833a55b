"""Boundary drafts: a redraw is written down first, checked, previewed, then published at once.

Owns: the tables ``boundary_drafts`` (one proposed change: status draft → submitted → published
or rejected, who drafted, submitted, published or rejected it and why, the log of operations, the
last check's problems, an optimistic-lock ``version``) and ``boundary_draft_areas`` (per area the
draft touches: its new geometry and figures, the action create/change/retire, and the geometry
version it was based on); :class:`DraftState` (the current boundaries with a draft laid over
them, loaded lazily: all districts, streets and communities, the cells of the communities an
edit reaches); the guarantees checked on that state (:func:`check_state`); the impact preview
(:func:`draft_impact`); publishing in one transaction with re-routing of open cases
(:func:`publish_draft`); rejecting, submitting, listing; and :func:`diff` between two moments.

The operations that fill a draft live in :mod:`gridmap.boundaries.redraw`; nothing here changes
a geometry except :func:`publish_draft`, which closes the old versions (``valid_to``) and inserts
new ones, so every past state stays readable (``locate --at``, ``export --at``).

Optimistic locking: a draft row records the ``area_geometries.id`` it was based on for every
area it touches. Publishing closes exactly those rows with
``UPDATE area_geometries SET valid_to=:now WHERE id IN (…) AND valid_to IS NULL``; fewer rows
than expected means another draft (or an import) changed one of them since, and the whole
transaction is rolled back with a :class:`ConflictError` naming the areas: the draft stays a
draft, nothing is lost.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import shapely
from geoalchemy2 import Geometry
from geoalchemy2.shape import from_shape
from sqlalchemy import (CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, and_,
                        func, insert, or_, select, update)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from gridmap.accounts import models as _accounts_models  # noqa: F401  (users: the drafts' foreign keys)
from gridmap.assign import models as _assign_models  # noqa: F401  (users refer to workers)
from gridmap.accounts.actor import Actor
from gridmap.boundaries.models import CHILD_LEVEL, LEVELS, PARENT_LEVEL, Area, AreaGeometry
from gridmap.db import Base, UTCDateTime, utcnow
from gridmap.geo import measure

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
_CHUNK = 2000


# ============================================================================ tables
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


# ============================================================================ errors
class DraftError(ValueError):
    """A draft operation cannot be done; the message says why (codes, coordinates)."""

    status = 400

    def __init__(self, message: str, problems: list["DraftProblem"] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class DraftPermissionError(DraftError):
    status = 403


class DraftNotFound(DraftError):
    status = 404


class DraftProblemsError(DraftError):
    """The draft's resulting boundaries break a rule: publishing is blocked."""

    status = 422


class ConflictError(DraftError):
    """Another change won: the draft was based on versions that are no longer current."""

    status = 409

    def __init__(self, message: str, differences: list[dict] | None = None):
        super().__init__(message)
        self.differences = differences or []


# ============================================================================ problems
@dataclass
class DraftProblem:
    severity: str  # error, warning
    kind: str  # invalid, coverage, overlap, gap, outside_parent, sliver, stale, duplicate_code, needs_worker, size …
    message: str
    codes: tuple = ()
    lon: float | None = None
    lat: float | None = None
    geometry: Any = None  # shapely, EPSG:4326: what to draw on the editor's map

    def as_dict(self) -> dict:
        return {"severity": self.severity, "kind": self.kind, "message": self.message, "codes": list(self.codes),
                "lon": self.lon, "lat": self.lat,
                "geometry": shapely.geometry.mapping(self.geometry) if self.geometry is not None else None}

    @classmethod
    def from_dict(cls, d: dict) -> "DraftProblem":
        g = d.get("geometry")
        return cls(d["severity"], d["kind"], d["message"], tuple(d.get("codes") or ()), d.get("lon"), d.get("lat"),
                   shapely.geometry.shape(g) if g else None)

    def feature(self) -> dict:
        g = self.geometry
        if g is None and self.lon is not None and self.lat is not None:
            g = shapely.Point(self.lon, self.lat)
        return {"type": "Feature", "geometry": shapely.geometry.mapping(g) if g is not None else None,
                "properties": {"severity": self.severity, "kind": self.kind, "message": self.message,
                               "codes": list(self.codes)}}

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


def problems_geojson(problems: Iterable[DraftProblem]) -> dict:
    return {"type": "FeatureCollection", "features": [p.feature() for p in problems]}


# ============================================================================ geometry helpers
def as_multi(g):
    """A MultiPolygon from a (Multi)Polygon or a collection holding polygons; None when empty."""
    if g is None or g.is_empty:
        return None
    parts = shapely.get_parts(g)
    parts = shapely.get_parts(parts)
    polys = [p for p in parts if shapely.get_type_id(p) == 3 and not p.is_empty]
    if not polys:
        return None
    return shapely.MultiPolygon(polys)


def same_surface(a, b) -> bool:
    """True when two lon/lat polygons cover the same ground (vertices merely inserted on edges)."""
    if a is None or b is None:
        return a is b
    base = shapely.area(b)
    return bool(shapely.area(shapely.symmetric_difference(a, b)) <= 1e-9 * max(base, 1e-30))


def vertices_only(rec: "AreaRec", base: "AreaRec | None") -> bool:
    """A change that only adds vertices on the edges (a neighbour's edge was cut there)."""
    return (base is not None and rec.active and base.geom is not None and rec.parent_code == base.parent_code
            and rec.name == base.name and same_surface(rec.geom, base.geom))


def metric_epsg(geoms) -> int:
    arr = [g for g in geoms if g is not None and not g.is_empty]
    return measure.metric_crs_for(np.array(arr, dtype=object))


def tol_degrees(tolerance_m: float) -> float:
    """The tolerance as degrees of latitude (a degree of longitude is shorter: conservative)."""
    return float(tolerance_m) / 111_320.0


def thin(geoms_metric: np.ndarray, tolerance_m: float) -> np.ndarray:
    """True where a metric polygon is a sliver: area ≤ tol² or nowhere wider than tol (the
    definition of :mod:`gridmap.boundaries.checks`)."""
    geoms_metric = np.asarray(geoms_metric, dtype=object)
    if len(geoms_metric) == 0:
        return np.zeros(0, dtype=bool)
    tol = float(tolerance_m)
    small = shapely.area(geoms_metric) <= tol * tol
    narrow = shapely.is_empty(shapely.buffer(geoms_metric, -tol / 2.0, quad_segs=2))
    return small | narrow


def where(g) -> tuple[float | None, float | None]:
    """lon, lat of a representative point of ``g`` (inside a polygon, halfway along a line)."""
    if g is None or g.is_empty:
        return None, None
    t = shapely.get_type_id(g)
    if t in (3, 6, 7):
        p = shapely.point_on_surface(g)
    elif t in (1, 2, 5):
        line = g if t != 5 else max(shapely.get_parts(g), key=lambda x: x.length)
        p = shapely.line_interpolate_point(line, 0.5, normalized=True)
    else:
        p = shapely.centroid(g)
    if p is None or p.is_empty:
        p = shapely.centroid(g)
    return round(float(p.x), 7), round(float(p.y), 7)


def fmt_at(lon, lat) -> str:
    return f"at {lon:.6f} {lat:.6f}" if lon is not None else ""


# ============================================================================ state
@dataclass
class AreaRec:
    """One area as the draft sees it (current, or as the draft would leave it)."""

    level: str
    code: str
    name: str
    parent_code: str | None
    kind: str | None
    households: int | None
    population: int | None
    geom: Any  # shapely MultiPolygon, EPSG:4326; None once retired
    id: int | None = None  # areas.id; None when the draft creates it
    geometry_id: int | None = None  # the current area_geometries.id it is based on
    version: int | None = None
    action: str = "current"  # current | create | change | retire
    sources: list = field(default_factory=list)  # [(code, share)], for created or changed areas
    fixed_figures: bool = False

    @property
    def active(self) -> bool:
        return self.action != "retire" and self.geom is not None


def _load_recs(session: Session, where_clause) -> list[AreaRec]:
    parent = Area.__table__.alias("parent")
    rows = session.execute(
        select(Area.id, Area.level, Area.code, Area.name, parent.c.code.label("parent_code"), Area.kind,
               Area.households, Area.population, AreaGeometry.id.label("gid"), AreaGeometry.version,
               func.ST_AsBinary(AreaGeometry.geom).label("wkb"))
        .join(AreaGeometry, and_(AreaGeometry.area_id == Area.id, AreaGeometry.valid_to.is_(None)))
        .outerjoin(parent, parent.c.id == Area.parent_id)
        .where(where_clause)
        .order_by(Area.code)
    ).all()
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else []
    return [AreaRec(r.level, r.code, r.name, r.parent_code, r.kind, r.households, r.population, as_multi(g),
                    id=r.id, geometry_id=r.gid, version=r.version) for r, g in zip(rows, geoms)]


class DraftState:
    """The current boundaries with a draft laid over them.

    Districts, streets and communities are loaded whole (hundreds of rows); cells are loaded per
    community, when an operation or a check reaches that community. ``base`` keeps the current
    (stored) record of every area the draft touches, for checks, impact and publishing.
    """

    def __init__(self, session: Session, draft: BoundaryDraft | None = None):
        self.session = session
        self.draft = draft
        self.recs: dict[str, AreaRec] = {}
        self.base: dict[str, AreaRec] = {}
        self._cells_of: dict[str, list[str]] = {}  # community code -> cell codes
        self._loaded: set[str] = set()  # communities whose stored cells are loaded
        self._upper_tree = {}
        for rec in _load_recs(session, Area.level.in_(("district", "street", "community"))):
            self.recs[rec.code] = rec
        if draft is not None and draft.id is not None:
            self._overlay(draft)

    # -- loading -------------------------------------------------------------------------
    def _load_cells(self, community_codes: Iterable[str]) -> None:
        need = [c for c in set(community_codes) if c and c not in self._loaded]
        if not need:
            return
        for c in need:
            self._loaded.add(c)
            self._cells_of.setdefault(c, [])
        ids = [self.recs[c].id for c in need if c in self.recs and self.recs[c].id is not None]
        if ids:
            for i in range(0, len(ids), _CHUNK):
                for rec in _load_recs(self.session, (Area.level == "cell") & Area.parent_id.in_(ids[i:i + _CHUNK])):
                    if rec.code not in self.recs:  # the draft's overlay wins
                        self.recs[rec.code] = rec
                    self._cells_of.setdefault(rec.parent_code, [])
                    if rec.code not in self._cells_of[rec.parent_code]:
                        self._cells_of[rec.parent_code].append(rec.code)

    def _overlay(self, draft: BoundaryDraft) -> None:
        rows = self.session.execute(
            select(BoundaryDraftArea, func.ST_AsBinary(BoundaryDraftArea.geom))
            .where(BoundaryDraftArea.draft_id == draft.id).order_by(BoundaryDraftArea.id)).all()
        # cells of the communities involved come from the database first (the base)
        comms = {row.parent_code for row, _ in rows if row.level == "cell"}
        area_ids = [row.area_id for row, _ in rows if row.level == "cell" and row.area_id is not None]
        if area_ids:
            parent = Area.__table__.alias("parent")
            for chunk in _chunks(area_ids):
                comms |= set(self.session.scalars(select(parent.c.code).join(Area, Area.parent_id == parent.c.id)
                                                  .where(Area.id.in_(chunk))))
        self._load_cells(comms)
        for row, wkb in rows:
            base = self.recs.get(row.code)
            rec = AreaRec(row.level, row.code, row.name, row.parent_code, row.kind, row.households, row.population,
                          as_multi(shapely.from_wkb(bytes(wkb))) if wkb is not None else None,
                          id=row.area_id, geometry_id=row.base_geometry_id, version=row.base_version,
                          action=row.action, sources=[tuple(s) for s in json.loads(row.sources or "[]")],
                          fixed_figures=bool(row.fixed_figures))
            if base is not None:
                self.base[row.code] = copy.copy(base)
            self.recs[row.code] = rec
            if row.level == "cell":
                if base is not None and base.parent_code != rec.parent_code:
                    lst = self._cells_of.get(base.parent_code, [])
                    if row.code in lst:
                        lst.remove(row.code)
                self._cells_of.setdefault(rec.parent_code, [])
                if row.code not in self._cells_of[rec.parent_code]:
                    self._cells_of[rec.parent_code].append(row.code)
        self._upper_tree = {}

    # -- reading -------------------------------------------------------------------------
    def get(self, code: str, level: str | None = None) -> AreaRec:
        code = str(code).strip()
        rec = self.recs.get(code)
        if rec is None:
            area = self.session.scalar(select(Area).where(Area.code == code))
            if area is not None and area.level == "cell" and area.parent is not None:
                self._load_cells([area.parent.code])
                rec = self.recs.get(code)
            if rec is None:
                if area is not None and area.retired_at is not None:
                    raise DraftError(f"{area.level} {code} {area.name} was retired on "
                                     f"{area.retired_at.date().isoformat()}")
                raise DraftNotFound(f"no {level or 'area'} with code {code}")
        if level and rec.level != level:
            raise DraftError(f"{code} {rec.name} is a {rec.level}, not a {level}")
        if not rec.active:
            raise DraftError(f"{rec.level} {code} {rec.name} is retired by this draft")
        return rec

    def children(self, code: str) -> list[AreaRec]:
        rec = self.recs.get(code)
        if rec is None:
            return []
        if rec.level == "community":
            self._load_cells([code])
            return [self.recs[c] for c in sorted(self._cells_of.get(code, [])) if self.recs[c].active]
        child = CHILD_LEVEL.get(rec.level)
        return sorted((r for r in self.recs.values() if r.level == child and r.parent_code == code and r.active),
                      key=lambda r: r.code)

    def level_recs(self, level: str) -> list[AreaRec]:
        return [r for r in self.recs.values() if r.level == level and r.active]

    def _tree(self, level: str):
        if level not in self._upper_tree:
            recs = self.level_recs(level)
            self._upper_tree[level] = (recs, shapely.STRtree(np.array([r.geom for r in recs], dtype=object)))
        return self._upper_tree[level]

    def near(self, level: str, geom, exclude: Iterable[str] = ()) -> list[AreaRec]:
        """Active areas of ``level`` that intersect ``geom`` (touching counts)."""
        if geom is None or geom.is_empty:
            return []
        ex = set(exclude)
        if level == "cell":
            comms = [r.code for r in self.near("community", geom)]
            # a draft's own new community may not be indexed yet
            comms += [r.code for r in self.recs.values() if r.level == "community" and r.active
                      and r.action != "current" and r.geom is not None and r.geom.intersects(geom)]
            self._load_cells(comms)
            out = []
            for c in set(comms):
                for code in self._cells_of.get(c, []):
                    r = self.recs[code]
                    if r.active and r.code not in ex and r.geom.intersects(geom):
                        out.append(r)
            return sorted(out, key=lambda r: r.code)
        recs, tree = self._tree(level)
        idx = tree.query(geom, predicate="intersects")
        out = {recs[i].code: recs[i] for i in idx}
        for r in self.recs.values():  # changed by this draft after the index was built
            if r.level == level and r.active and r.action != "current" and r.geom.intersects(geom):
                out[r.code] = r
        for code in list(out):
            if not out[code].active or code in ex or self.recs.get(code) is not out[code]:
                out.pop(code)
        return sorted(out.values(), key=lambda r: r.code)

    def ancestors(self, rec: AreaRec) -> list[AreaRec]:
        out = []
        p = rec.parent_code
        while p:
            r = self.recs.get(p)
            if r is None:
                break
            out.append(r)
            p = r.parent_code
        return out

    def preload(self) -> None:
        """Load every cell the checks of this draft will read (before anything is closed)."""
        parents = _parents_to_check(self, self.touched())
        self._load_cells(parents["cell"] | {r.parent_code for r in self.base.values() if r.level == "cell"})

    def touched(self) -> dict[str, AreaRec]:
        return {c: r for c, r in self.recs.items() if r.action != "current"}

    # -- writing (used by the operations) ---------------------------------------------------
    def put(self, rec: AreaRec) -> None:
        """Record ``rec`` as the draft's version of its area (base kept for existing areas)."""
        old = self.recs.get(rec.code)
        if old is not None and old.action == "current" and rec.code not in self.base:
            self.base[rec.code] = copy.copy(old)
        if rec.action == "current":
            rec.action = "change" if rec.id is not None else "create"
        if rec.level == "cell":
            self._load_cells([rec.parent_code])  # its siblings first, so none is missed
        self.recs[rec.code] = rec
        if rec.level == "cell":
            if old is not None and old.parent_code != rec.parent_code:
                lst = self._cells_of.get(old.parent_code, [])
                if rec.code in lst:
                    lst.remove(rec.code)
            self._cells_of.setdefault(rec.parent_code, [])
            if rec.code not in self._cells_of[rec.parent_code]:
                self._cells_of[rec.parent_code].append(rec.code)
        self._upper_tree.pop(rec.level, None)

    def retire(self, rec: AreaRec) -> None:
        if rec.action == "create":  # created and retired in the same draft: it never was
            self.recs.pop(rec.code, None)
            if rec.level == "cell":
                lst = self._cells_of.get(rec.parent_code, [])
                if rec.code in lst:
                    lst.remove(rec.code)
            self._upper_tree.pop(rec.level, None)
            return
        new = copy.copy(rec)
        new.geom = None
        new.action = "retire"
        self.put(new)

    def base_rec(self, code: str) -> AreaRec | None:
        """The stored record of an area (None for areas the draft creates)."""
        if code in self.base:
            return self.base[code]
        r = self.recs.get(code)
        return r if r is not None and r.action == "current" else None

    def base_view(self) -> "DraftState":
        """The same loaded areas without the draft: the stored boundaries."""
        view = copy.copy(self)
        view.recs = dict(self.recs)
        view._cells_of = {k: list(v) for k, v in self._cells_of.items()}
        view._loaded = set(self._loaded)
        view.base = {}
        view._upper_tree = {}
        for code, rec in self.recs.items():
            if rec.action == "current":
                continue
            b = self.base.get(code)
            if rec.level == "cell":
                lst = view._cells_of.get(rec.parent_code, [])
                if code in lst:
                    lst.remove(code)
            if b is None:
                view.recs.pop(code)
            else:
                view.recs[code] = b
                if b.level == "cell":
                    view._cells_of.setdefault(b.parent_code, [])
                    if code not in view._cells_of[b.parent_code]:
                        view._cells_of[b.parent_code].append(code)
        return view


# ============================================================================ checks
def _frame(recs: list[AreaRec]):
    import geopandas as gpd

    return gpd.GeoDataFrame({"code": [r.code for r in recs], "name": [r.name for r in recs],
                             "parent_code": [r.parent_code for r in recs]},
                            geometry=[r.geom for r in recs], crs=4326)


def _parents_to_check(state: DraftState, touched: dict[str, AreaRec]) -> dict[str, set[str]]:
    """Per child level: the parent codes whose children must be re-checked."""
    out: dict[str, set[str]] = {lvl: set() for lvl in ("cell", "community", "street")}
    for code, rec in touched.items():
        if rec.level in out and rec.parent_code:
            out[rec.level].add(rec.parent_code)
        b = state.base.get(code)
        if b is not None and b.level in out and b.parent_code:
            out[b.level].add(b.parent_code)
        child = CHILD_LEVEL.get(rec.level)
        if child and rec.active:
            out[child].add(code)
    for lvl in out:
        out[lvl] = {p for p in out[lvl] if p in state.recs and state.recs[p].active}
    return out


def _coverage_problems(state: DraftState, level: str, parents: set[str], touched: dict[str, AreaRec],
                       tolerance_m: float) -> list[DraftProblem]:
    """Per parent: the siblings must be an exact coverage (GEOS coverage validation, gaps up
    to the tolerance count) and, with check_layer, tile the parent."""
    from gridmap.boundaries.checks import check_layer

    problems: list[DraftProblem] = []
    if not parents:
        return problems
    tol_deg = tol_degrees(tolerance_m)
    sib_all: list[AreaRec] = []
    for p in sorted(parents):
        sibs = [r for r in state.children(p) if r.geom is not None and r.geom.is_valid]
        sib_all.extend(sibs)
        if len(sibs) < 2:
            continue
        geoms = np.array([r.geom for r in sibs], dtype=object)
        if shapely.coverage_is_valid(geoms, gap_width=tol_deg):
            continue
        edges = shapely.coverage_invalid_edges(geoms, gap_width=tol_deg)
        for r, e in zip(sibs, edges):
            if r.code not in touched or e is None or e.is_empty:
                continue
            lon, lat = where(e)
            problems.append(DraftProblem(
                "error", "coverage",
                f"{level} {r.code} {r.name}: its edges do not match its neighbours' in {PARENT_LEVEL[level]} {p} "
                f"(gap, overlap or unmatched vertex; {shapely.length(measure.to_metric(np.array([e]))).sum():.1f} m "
                f"of edge) {fmt_at(lon, lat)}", (r.code, p), lon, lat, e))
    if sib_all:
        par = [state.recs[p] for p in sorted(parents)]
        for pr in check_layer(_frame(sib_all), _frame(par), level=level, tolerance_m=tolerance_m,
                              source=f"draft {level}s"):
            if pr.severity != "error" and pr.kind == "gap":  # parents without children: not ours
                continue
            g = shapely.Point(pr.lon, pr.lat) if pr.lon is not None else None
            problems.append(DraftProblem(pr.severity, pr.kind, pr.message, tuple(pr.codes), pr.lon, pr.lat, g))
    return problems


def check_state(state: DraftState, *, tolerance_m: float = DEFAULT_TOLERANCE_M,
                target_households: tuple[int, int] | None = DEFAULT_TARGET_HOUSEHOLDS) -> list[DraftProblem]:
    """The guarantees, on the draft's resulting state. Errors block publishing.

    - every geometry the draft writes is valid and has no sliver part (thinner than the tolerance);
    - the cells of every touched community are an exact coverage of it (GEOS coverage validation
      with gaps up to the tolerance, plus :func:`check_layer`: overlaps, gaps, cells outside);
      likewise communities in their street and streets in their district;
    - codes of created areas never existed;
    - the areas the draft replaces are still the current versions (else publishing conflicts);
    - warnings: active cells with no responsible worker (after inheritance), cells outside the
      household band.
    Problems that were already there before the draft (same kind, same codes) are downgraded to
    warnings: a draft is not blamed for the data it started from.
    """
    touched = state.touched()
    problems: list[DraftProblem] = []
    if not touched:
        return problems
    tol = float(tolerance_m)
    session = state.session

    # stale bases
    bases = {r.geometry_id: c for c, r in touched.items() if r.geometry_id is not None}
    if bases:
        current = set()
        for i, chunk in enumerate(_chunks(list(bases))):
            current |= set(session.scalars(select(AreaGeometry.id).where(AreaGeometry.id.in_(chunk),
                                                                         AreaGeometry.valid_to.is_(None))))
        for gid, code in sorted(bases.items(), key=lambda kv: kv[1]):
            if gid not in current:
                problems.append(DraftProblem("error", "stale",
                                             f"{touched[code].level} {code} {touched[code].name} was changed by "
                                             f"someone else after this draft started: publishing will conflict; "
                                             f"redo this part of the draft", (code,)))

    # validity and slivers of what the draft writes
    active = [r for r in touched.values() if r.active]
    if active:
        geoms = np.array([r.geom for r in active], dtype=object)
        valid = shapely.is_valid(geoms)
        for r, ok in zip(active, valid):
            if not ok:
                reason = shapely.is_valid_reason(r.geom)
                lon, lat = _reason_point(reason, r.geom)
                problems.append(DraftProblem("error", "invalid", f"{r.level} {r.code} {r.name}: invalid geometry "
                                             f"({reason})", (r.code,), lon, lat, r.geom))
        ok_idx = np.flatnonzero(valid)
        if len(ok_idx):
            epsg = metric_epsg(geoms[ok_idx])
            parts, owner = shapely.get_parts(geoms[ok_idx], return_index=True)
            slim = thin(measure.to_metric(parts, epsg), tol)
            for k in np.flatnonzero(slim):
                r = active[ok_idx[owner[k]]]
                lon, lat = where(parts[k])
                problems.append(DraftProblem("error", "sliver",
                                             f"{r.level} {r.code} {r.name} has a sliver part thinner than "
                                             f"{tol:g} m {fmt_at(lon, lat)}: redraw so the edge meets its "
                                             f"neighbour's", (r.code,), lon, lat, parts[k]))
            empty_ = [r for r in active if r.geom is None or r.geom.is_empty]
            for r in empty_:
                problems.append(DraftProblem("error", "invalid", f"{r.level} {r.code}: empty geometry", (r.code,)))

    # coverage per level
    check_parents = _parents_to_check(state, touched)
    cov: list[DraftProblem] = []
    for level in ("cell", "community", "street"):
        cov.extend(_coverage_problems(state, level, check_parents[level], touched, tol))
    if any(p.severity == "error" for p in cov):
        base = state.base_view()

        def key(p):
            loc = (round(p.lon, 4), round(p.lat, 4)) if p.kind == "gap" and p.lon is not None else None
            return p.kind, frozenset(p.codes), loc

        before = set()
        for level in ("cell", "community", "street"):
            for p in _coverage_problems(base, level, {c for c in check_parents[level] if c in base.recs},
                                        {c: r for c, r in base.recs.items() if c in touched}, tol):
                before.add(key(p))
        for p in cov:
            if p.severity == "error" and key(p) in before:
                p.severity = "warning"
                p.message += " (already so before this draft)"
    problems.extend(cov)

    # codes of created areas never existed
    created = [c for c, r in touched.items() if r.action == "create"]
    for chunk in _chunks(created):
        for code, level, retired in session.execute(select(Area.code, Area.level, Area.retired_at)
                                                    .where(Area.code.in_(chunk))):
            what = f"retired {retired.date().isoformat()}" if retired else "in use"
            problems.append(DraftProblem("error", "duplicate_code",
                                         f"code {code} already belongs to a {level} ({what}); codes are never "
                                         f"reused", (code,)))

    # responsible workers (cells of touched communities) and the household band
    cells = []
    for comm in sorted(check_parents["cell"]):
        cells.extend(state.children(comm))
    if cells:
        covered = responsible_cells(state, cells)
        need = [r for r in cells if r.code not in covered]
        if need:
            codes = tuple(r.code for r in need)
            problems.append(DraftProblem("warning", "needs_worker",
                                         f"{len(need)} cells will have no responsible worker: "
                                         f"{', '.join(codes[:20])}{' …' if len(codes) > 20 else ''} "
                                         f"(cases there fall to the community's head until one is assigned)",
                                         codes))
    if target_households:
        lo, hi = target_households
        for code, r in touched.items():
            b = state.base.get(code)
            if b is not None and b.households == r.households:
                continue  # its figures do not change: not this draft's business
            if r.level == "cell" and r.active and r.households is not None and not lo <= r.households <= hi:
                lon, lat = where(r.geom)
                problems.append(DraftProblem("warning", "size",
                                             f"cell {r.code} {r.name}: {r.households} households, outside "
                                             f"{lo}–{hi}", (r.code,), lon, lat))
    order = {"error": 0, "warning": 1}
    problems.sort(key=lambda p: order.get(p.severity, 2))
    return problems


def _reason_point(reason: str, geom):
    import re

    m = re.search(r"\[(-?[\d.e+-]+)\s+(-?[\d.e+-]+)\]", reason or "")
    if m:
        return round(float(m.group(1)), 7), round(float(m.group(2)), 7)
    return where(geom)


def _chunks(seq, n: int = _CHUNK):
    seq = list(seq)
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


# ============================================================================ workers
def _current_responsibilities(session: Session, cell_ids: list[int], day: dt.date) -> dict[int, list]:
    from gridmap.assign.models import Responsibility, Worker

    out: dict[int, list] = {}
    for chunk in _chunks(cell_ids):
        for resp, w in session.execute(
                select(Responsibility, Worker).join(Worker, Worker.id == Responsibility.worker_id)
                .where(Responsibility.cell_id.in_(chunk), Responsibility.valid_from <= day,
                       or_(Responsibility.valid_to.is_(None), Responsibility.valid_to > day))
                .order_by(Responsibility.role.desc(), Worker.code)):  # primary before backup
            out.setdefault(resp.cell_id, []).append((resp, w))
    return out


def main_source(rec: AreaRec) -> str | None:
    """The area most of ``rec``'s surface came from."""
    if not rec.sources:
        return None
    return max(rec.sources, key=lambda s: (s[1], s[0]))[0]


def _inherit_from(state: DraftState, rec: AreaRec) -> AreaRec | None:
    """For a created cell, the stored cell whose workers it inherits (its main source)."""
    src = main_source(rec)
    seen = set()
    while src and src not in seen:
        seen.add(src)
        b = state.base_rec(src)
        if b is not None and b.id is not None:
            return b
        r = state.recs.get(src)
        src = main_source(r) if r is not None else None
    return None


def responsible_cells(state: DraftState, cells: list[AreaRec], day: dt.date | None = None) -> dict[str, list]:
    """code -> [(Responsibility, Worker)] for cells that will have a worker (created cells inherit
    the workers of their main source cell)."""
    from gridmap.assign.calendar import local_date

    day = day or local_date(utcnow())
    ids = {}
    for r in cells:
        if r.id is not None:
            ids[r.code] = r.id
        else:
            src = _inherit_from(state, r)
            if src is not None:
                ids[r.code] = src.id
    resp = _current_responsibilities(state.session, sorted(set(ids.values())), day)
    return {code: resp[i] for code, i in ids.items() if resp.get(i)}


# ============================================================================ drafts: reading, rights
def load_draft(session: Session, draft_id: int) -> BoundaryDraft:
    q = select(BoundaryDraft).where(BoundaryDraft.id == draft_id)
    d = session.scalar(q)
    if d is None:
        raise DraftNotFound(f"no draft #{draft_id}")
    return d


def editable_area_ids(session: Session, actor: Actor) -> set[int] | None:
    """Areas the actor may redraw: the subtree of their area (not its ancestors); None: all."""
    from gridmap.accounts.scope import area_ids_in_scope

    if actor.role in ("city", "admin", "system"):
        return None
    if actor.role not in DRAFT_ROLES or actor.area_id is None:
        return set()
    seen = area_ids_in_scope(session, actor)
    if seen is None:
        return None
    ids = {actor.area_id}
    frontier = {actor.area_id}
    while frontier:
        frontier = set(session.scalars(select(Area.id).where(Area.parent_id.in_(frontier)))) - ids
        ids |= frontier
    return ids & seen


def require_may_edit(session: Session, actor: Actor, state: DraftState, *, publish: bool = False) -> None:
    roles = PUBLISH_ROLES if publish else DRAFT_ROLES
    verb = "publish or reject boundary drafts" if publish else "draft boundary changes"
    if actor.role not in roles:
        raise DraftPermissionError(f"a {actor.role} may not {verb} (allowed: {', '.join(roles)})")
    allowed = editable_area_ids(session, actor)
    if allowed is None:
        return
    bad = []
    for code, rec in state.touched().items():
        if vertices_only(rec, state.base.get(code)):
            continue  # only vertices added where a neighbour's edge was cut: not a change of shape
        ids = [rec.id] if rec.id is not None else []
        if rec.id is None:  # created: its parent must be in scope
            p = state.recs.get(rec.parent_code)
            ids = [p.id] if p is not None and p.id is not None else [
                a.id for a in state.ancestors(rec) if a.id is not None][:1]
        if not ids or any(i not in allowed for i in ids):
            bad.append(code)
    if bad:
        raise DraftPermissionError(f"outside your area: {', '.join(sorted(bad)[:10])}"
                                   f"{' …' if len(bad) > 10 else ''}")


def draft_problems(draft: BoundaryDraft) -> list[DraftProblem]:
    return [DraftProblem.from_dict(d) for d in json.loads(draft.problems or "[]")]


def draft_areas(session: Session, draft_id: int) -> list[BoundaryDraftArea]:
    return list(session.scalars(select(BoundaryDraftArea).where(BoundaryDraftArea.draft_id == draft_id)
                                .order_by(BoundaryDraftArea.level, BoundaryDraftArea.code)))


def draft_summary(session: Session, draft: BoundaryDraft) -> dict:
    counts: dict[str, dict[str, int]] = {}
    for level, action, n in session.execute(
            select(BoundaryDraftArea.level, BoundaryDraftArea.action, func.count())
            .where(BoundaryDraftArea.draft_id == draft.id)
            .group_by(BoundaryDraftArea.level, BoundaryDraftArea.action)):
        counts.setdefault(level, {})[action] = n
    probs = draft_problems(draft)
    return {"id": draft.id, "title": draft.title, "status": draft.status, "version": draft.version,
            "created_by": draft.created_by, "created_at": _iso(draft.created_at),
            "updated_at": _iso(draft.updated_at), "submitted_by": draft.submitted_by,
            "submitted_at": _iso(draft.submitted_at), "published_by": draft.published_by,
            "published_at": _iso(draft.published_at), "rejected_by": draft.rejected_by,
            "rejected_at": _iso(draft.rejected_at), "reason": draft.reason,
            "scope": session.scalar(select(Area.code).where(Area.id == draft.scope_area_id))
            if draft.scope_area_id else None,
            "changes": counts, "errors": sum(p.severity == "error" for p in probs),
            "warnings": sum(p.severity == "warning" for p in probs),
            "operations": json.loads(draft.operations or "[]")}


def _iso(t):
    return t.isoformat() if t else None


def list_drafts(session: Session, actor: Actor, status: str | None = None) -> list[BoundaryDraft]:
    q = select(BoundaryDraft).order_by(BoundaryDraft.id.desc())
    if status:
        q = q.where(BoundaryDraft.status == status)
    allowed = editable_area_ids(session, actor)
    drafts = list(session.scalars(q))
    if allowed is None:
        return drafts
    return [d for d in drafts if (d.scope_area_id in allowed)
            or (actor.user_id is not None and d.created_by_user_id == actor.user_id)]


def visible_draft(session: Session, actor: Actor, draft_id: int) -> BoundaryDraft:
    d = load_draft(session, draft_id)
    allowed = editable_area_ids(session, actor)
    if allowed is not None and d.scope_area_id not in allowed and not (
            actor.user_id is not None and d.created_by_user_id == actor.user_id):
        raise DraftNotFound(f"no draft #{draft_id}")
    return d


# ============================================================================ state <-> rows
def save_state(session: Session, draft: BoundaryDraft, state: DraftState) -> None:
    """Write the draft's rows to match ``state`` (rows for areas back to their stored form go)."""
    existing = {r.code: r for r in session.scalars(select(BoundaryDraftArea)
                                                   .where(BoundaryDraftArea.draft_id == draft.id))}
    touched = state.touched()
    for code, row in existing.items():
        if code not in touched:
            session.delete(row)
    for code, rec in touched.items():
        row = existing.get(code)
        if row is None:
            row = BoundaryDraftArea(draft_id=draft.id, code=code)
            session.add(row)
            b = state.base.get(code)
            row.base_geometry_id = b.geometry_id if b is not None else None
            row.base_version = b.version if b is not None else None
        row.area_id = rec.id
        row.action = rec.action
        row.level = rec.level
        row.name = rec.name
        row.parent_code = rec.parent_code
        row.kind = rec.kind
        row.households = rec.households
        row.population = rec.population
        row.geom = from_shape(rec.geom, srid=4326) if rec.geom is not None else None
        row.sources = json.dumps([[c, round(float(s), 6)] for c, s in rec.sources]) if rec.sources else None
        row.fixed_figures = 1 if rec.fixed_figures else 0
    session.flush()
    # the smallest area holding everything touched
    chains = []
    for rec in touched.values():
        if vertices_only(rec, state.base.get(rec.code)):
            continue
        chain = [rec.code] if rec.id is not None else []
        chain += [a.code for a in state.ancestors(rec)]
        b = state.base.get(rec.code)
        if b is not None and b.parent_code != rec.parent_code:
            chain_b = [b.code] + [a.code for a in state.ancestors(b)]
            chains.append(list(reversed(chain_b)))
        chains.append(list(reversed(chain)))
    common = None
    if chains:
        common_path = chains[0]
        for ch in chains[1:]:
            k = 0
            while k < min(len(common_path), len(ch)) and common_path[k] == ch[k]:
                k += 1
            common_path = common_path[:k]
        # a draft never 'owns' a single cell's scope: use its community at least
        while common_path and state.recs.get(common_path[-1]) is not None and \
                state.recs[common_path[-1]].level == "cell":
            common_path = common_path[:-1]
        common = common_path[-1] if common_path else None
    draft.scope_area_id = state.recs[common].id if common and common in state.recs else None


# ============================================================================ impact
def _overlaps(olds: list[AreaRec], news: list[AreaRec], epsg: int):
    """Pairs (i_old, j_new, overlap m²) of positive overlap.

    Overlaps are computed in the stored lon/lat geometry (where edges are straight) and scaled
    to m² with each old area's own metric/degree ratio: projecting first would bend a parallel
    and turn a vertex merely inserted on an edge into a phantom overlap of square metres."""
    if not olds or not news:
        return []
    og = np.array([r.geom for r in olds], dtype=object)
    ng = np.array([r.geom for r in news], dtype=object)
    tree = shapely.STRtree(ng)
    oi, nj = tree.query(og, predicate="intersects")
    if not len(oi):
        return []
    deg = shapely.area(og)
    scale = np.where(deg > 0, measure.areas_m2(og, epsg) / np.maximum(deg, 1e-30), 0.0)
    frac = shapely.area(shapely.intersection(og[oi], ng[nj])) / np.maximum(deg[oi], 1e-30)
    keep = frac > 1e-9
    area = frac * deg[oi] * scale[oi]
    return list(zip(oi[keep].tolist(), nj[keep].tolist(), area[keep].tolist()))


def _case_relocation(session: Session, state: DraftState, *, snap_m: float = 100.0) -> list[dict]:
    """Open cases in cells the draft changes or retires, located again against the draft's cells.

    Returns one dict per case whose cell (or whose cell's community) changes: case id, status,
    category, old cell id/code, new cell code. Cases with a point are located with a
    :class:`~gridmap.boundaries.lookup.CellIndex` over the touched cells' new geometries (snapping
    within ``snap_m``); cases without a point keep their cell unless it is retired, then go to
    the new cell that took most of its area.
    """
    from gridmap.boundaries.lookup import CellIndex
    from gridmap.incidents.models import Case

    touched = state.touched()
    cells_old = {c: state.base[c] for c, r in touched.items() if r.level == "cell" and c in state.base}
    if not cells_old:
        return []
    new_cells = [r for r in touched.values() if r.level == "cell" and r.active]
    by_id = {b.id: b for b in cells_old.values()}
    rows = []
    for chunk in _chunks(list(by_id)):
        rows.extend(session.execute(
            select(Case.id, Case.cell_id, Case.status, Case.category_id, Case.lon, Case.lat, Case.version,
                   Case.assignee_worker_id, Case.assignee_department_id, Case.assignee_level, Case.number,
                   Case.community_id)
            .where(Case.cell_id.in_(chunk), Case.status.not_in(CLOSED_CASE_STATUSES))).all())
    if not rows:
        return []
    # where a retired cell's area went
    successor: dict[str, str] = {}
    if new_cells:
        olds = list(cells_old.values())
        epsg = metric_epsg([r.geom for r in olds])
        best: dict[int, tuple[float, int]] = {}
        for i, j, a in _overlaps(olds, new_cells, epsg):
            if a > best.get(i, (0.0, -1))[0]:
                best[i] = (a, j)
        for i, (a, j) in best.items():
            successor[olds[i].code] = new_cells[j].code
    new_code = np.full(len(rows), None, dtype=object)
    lon = np.array([r.lon if r.lon is not None else np.nan for r in rows], dtype="float64")
    lat = np.array([r.lat if r.lat is not None else np.nan for r in rows], dtype="float64")
    has_pt = np.isfinite(lon) & np.isfinite(lat)
    if new_cells and has_pt.any():
        idx = CellIndex([r.code for r in new_cells], [r.name for r in new_cells], [r.geom for r in new_cells])
        res = idx.locate(lon[has_pt], lat[has_pt], "wgs84", snap_m=snap_m)
        found = np.where(res.cell >= 0, idx.codes[np.maximum(res.cell, 0)], None)
        new_code[has_pt] = found
    out = []
    for k, r in enumerate(rows):
        old = by_id[r.cell_id]
        cur = state.recs.get(old.code)
        code = new_code[k]
        if code is None:  # no point, or outside every touched cell: keep it, or follow the area
            code = old.code if cur is not None and cur.active else successor.get(old.code)
        if code is None:
            continue
        nrec = state.recs[code]
        if code == old.code and nrec.parent_code == old.parent_code:
            continue
        out.append({"case_id": r.id, "number": r.number, "status": r.status, "category_id": r.category_id,
                    "version": r.version, "lon": r.lon, "lat": r.lat, "old_cell_id": r.cell_id,
                    "old_cell": old.code, "new_cell": code, "cell_changed": code != old.code,
                    "old_worker_id": r.assignee_worker_id, "old_department_id": r.assignee_department_id,
                    "old_level": r.assignee_level})
    return out


def draft_impact(session: Session, draft: BoundaryDraft, *, state: DraftState | None = None,
                 now: dt.datetime | None = None, snap_m: float = 100.0, with_routes: bool = True) -> dict:
    """What publishing ``draft`` would do: areas created/changed/retired with their area and
    household figures, households and population moved between cells (pro-rated by area, see
    docs/redrawing.md), workers gaining or losing area, open cases whose cell changes and who would
    get them, and a GeoJSON of the touched areas (new and old) for the map."""
    from gridmap.assign.models import Worker
    from gridmap.assign.router import route
    from gridmap.incidents.models import Category

    now = now or utcnow()
    state = state or DraftState(session, draft)
    touched = state.touched()
    out: dict = {"areas": {}, "moved": [], "workers": [], "cases": [], "needs_worker": []}
    all_recs = list(touched.values()) + [b for b in state.base.values()]
    epsg = metric_epsg([r.geom for r in all_recs if r.geom is not None]) if all_recs else None
    for level in LEVELS:
        recs = [r for r in touched.values() if r.level == level]
        if not recs:
            continue
        entry = {"created": [], "changed": [], "retired": []}
        new_area = dict(zip([r.code for r in recs if r.active],
                            measure.areas_m2(np.array([r.geom for r in recs if r.active], dtype=object), epsg)))
        olds = [state.base[r.code] for r in recs if r.code in state.base]
        old_area = dict(zip([b.code for b in olds],
                            measure.areas_m2(np.array([b.geom for b in olds], dtype=object), epsg)))
        for r in recs:
            b = state.base.get(r.code)
            item = {"code": r.code, "name": r.name, "parent": r.parent_code,
                    "area_m2_before": round(float(old_area[r.code]), 1) if b is not None else None,
                    "area_m2_after": round(float(new_area[r.code]), 1) if r.active else None,
                    "households_before": b.households if b is not None else None,
                    "households_after": r.households if r.active else None,
                    "population_before": b.population if b is not None else None,
                    "population_after": r.population if r.active else None}
            if b is not None and r.active:
                item["area_m2_delta"] = round(float(new_area[r.code] - old_area[r.code]), 1)
                item["parent_before"] = b.parent_code
                item["vertices_only"] = vertices_only(r, b)
            if r.sources:
                item["sources"] = [{"code": c, "share": round(float(s), 4)} for c, s in r.sources]
            entry[{"create": "created", "change": "changed", "retire": "retired"}[r.action]].append(item)
        out["areas"][level] = entry

    # households moved between cells: the area-weighted reallocation
    olds = [state.base[c] for c, r in touched.items() if r.level == "cell" and c in state.base]
    news = [r for r in touched.values() if r.level == "cell" and r.active]
    if olds and news:
        o_area = measure.areas_m2(np.array([b.geom for b in olds], dtype=object), epsg)
        for i, j, a in _overlaps(olds, news, epsg):
            if olds[i].code == news[j].code or a < 0.01:
                continue
            share = a / o_area[i] if o_area[i] > 0 else 0.0
            out["moved"].append({"from": olds[i].code, "to": news[j].code, "area_m2": round(a, 1),
                                 "households": round((olds[i].households or 0) * share),
                                 "population": round((olds[i].population or 0) * share)})

    # workers gaining or losing area (primary and backup responsibilities)
    if olds or news:
        old_resp = _current_responsibilities(session, [b.id for b in olds if b.id is not None],
                                             _local_today(now))
        new_resp = responsible_cells(state, news, _local_today(now))
        per: dict[int, dict] = {}
        o_area = dict(zip([b.code for b in olds], measure.areas_m2(np.array([b.geom for b in olds], dtype=object), epsg)
                          if olds else []))
        n_area = dict(zip([r.code for r in news], measure.areas_m2(np.array([r.geom for r in news], dtype=object), epsg)
                          if news else []))
        for b in olds:
            for resp, w in old_resp.get(b.id, []):
                e = per.setdefault(w.id, {"worker": w.code, "name": w.name, "before_m2": 0.0, "after_m2": 0.0,
                                          "cells_before": [], "cells_after": []})
                e["before_m2"] += o_area[b.code]
                e["cells_before"].append(b.code)
        for r in news:
            for resp, w in new_resp.get(r.code, []):
                e = per.setdefault(w.id, {"worker": w.code, "name": w.name, "before_m2": 0.0, "after_m2": 0.0,
                                          "cells_before": [], "cells_after": []})
                e["after_m2"] += n_area[r.code]
                e["cells_after"].append(r.code)
        for e in per.values():
            e["delta_m2"] = round(e["after_m2"] - e["before_m2"], 1)
            e["before_m2"], e["after_m2"] = round(e["before_m2"], 1), round(e["after_m2"], 1)
            e["cells_gained"] = sorted(set(e["cells_after"]) - set(e["cells_before"]))
            e["cells_lost"] = sorted(set(e["cells_before"]) - set(e["cells_after"]))
            del e["cells_before"], e["cells_after"]
        out["workers"] = sorted((e for e in per.values() if abs(e["delta_m2"]) >= 0.01 or e["cells_gained"]
                                 or e["cells_lost"]), key=lambda e: e["worker"])
        out["needs_worker"] = sorted(r.code for r in news if r.code not in new_resp)

    # open cases whose cell changes, and who would get them
    moves = _case_relocation(session, state, snap_m=snap_m)
    if moves:
        cats = {c.id: c for c in session.scalars(select(Category).where(
            Category.id.in_({m["category_id"] for m in moves})))}
        workers = {}
        cache: dict = {}
        for m in moves:
            nrec = state.recs[m["new_cell"]]
            src = nrec if nrec.id is not None else _inherit_from(state, nrec)
            m_out = {k: m[k] for k in ("case_id", "number", "status", "old_cell", "new_cell")}
            if with_routes and src is not None and m["cell_changed"]:
                cat = cats.get(m["category_id"])
                key = (src.id, cat.id if cat is not None and cat.department_id is not None else None)
                if key not in cache:
                    cache[key] = route(session, cell_id=src.id, category=cat if key[1] else None, at=now)
                rt = cache[key]
                m_out["new_assignee"] = {"worker_id": rt.worker_id, "department_id": rt.department_id,
                                         "level": rt.level, "reason": rt.reason}
                if rt.worker_id:
                    workers.setdefault(rt.worker_id, None)
            m_out["old_assignee"] = {"worker_id": m["old_worker_id"], "department_id": m["old_department_id"],
                                     "level": m["old_level"]}
            out["cases"].append(m_out)
        if workers:
            names = {w.id: w.code for w in session.scalars(select(Worker).where(Worker.id.in_(list(workers))))}
            for c in out["cases"]:
                wid = (c.get("new_assignee") or {}).get("worker_id")
                if wid:
                    c["new_assignee"]["worker"] = names.get(wid)

    # the map
    feats = []
    for r in touched.values():
        b = state.base.get(r.code)
        if r.active:
            feats.append({"type": "Feature", "geometry": shapely.geometry.mapping(r.geom),
                          "properties": {"code": r.code, "name": r.name, "level": r.level, "action": r.action,
                                         "state": "after", "households": r.households}})
        if b is not None:
            feats.append({"type": "Feature", "geometry": shapely.geometry.mapping(b.geom),
                          "properties": {"code": r.code, "name": b.name, "level": r.level, "action": r.action,
                                         "state": "before", "households": b.households}})
    out["geojson"] = {"type": "FeatureCollection", "features": feats}
    out["summary"] = {lvl: {k: len(v) for k, v in e.items()} for lvl, e in out["areas"].items()}
    out["summary"]["cases_rerouted"] = sum(1 for m in moves if m["cell_changed"])
    out["summary"]["households_moved"] = sum(m["households"] for m in out["moved"])
    out["summary"]["population_moved"] = sum(m["population"] for m in out["moved"])
    return out


def _local_today(now: dt.datetime) -> dt.date:
    from gridmap.assign.calendar import local_date

    return local_date(now)


# ============================================================================ lifecycle
def submit_draft(session: Session, draft_id: int, actor: Actor, *, expected_version: int | None = None) -> BoundaryDraft:
    """draft → submitted (for a district/city to publish). Blocked while the draft has errors."""
    d = visible_draft(session, actor, draft_id)
    state = DraftState(session, d)
    require_may_edit(session, actor, state)
    if d.status != "draft":
        raise DraftError(f"draft #{d.id} is {d.status}, not draft: only a draft can be submitted")
    if not state.touched():
        raise DraftError(f"draft #{d.id} changes nothing")
    problems = check_state(state)
    errors = [p for p in problems if p.severity == "error"]
    _store_problems(d, problems)
    if errors:
        raise DraftProblemsError(f"draft #{d.id} has {len(errors)} errors: {errors[0].message}", errors)
    _bump(session, d, expected_version, status="submitted", submitted_by=actor.name, submitted_at=utcnow())
    return d


def reject_draft(session: Session, draft_id: int, actor: Actor, reason: str, *,
                 expected_version: int | None = None) -> BoundaryDraft:
    """draft/submitted → rejected, with the reason. Nothing is written to the boundaries."""
    if not (reason or "").strip():
        raise DraftError("a rejection needs a reason")
    d = visible_draft(session, actor, draft_id)
    state = DraftState(session, d)
    require_may_edit(session, actor, state, publish=True)
    if d.status not in ("draft", "submitted"):
        raise DraftError(f"draft #{d.id} is {d.status}: it cannot be rejected")
    _bump(session, d, expected_version, status="rejected", rejected_by=actor.name, rejected_at=utcnow(),
          reason=reason.strip())
    return d


def _store_problems(d: BoundaryDraft, problems: list[DraftProblem]) -> None:
    d.problems = json.dumps([p.as_dict() for p in problems], ensure_ascii=False)


def _bump(session: Session, d: BoundaryDraft, expected_version: int | None, **values) -> None:
    """Atomically move the draft on: the update hits only the version we read."""
    v = d.version if expected_version is None else expected_version
    values = {**values, "version": v + 1, "updated_at": utcnow()}
    if d.problems is not None:
        values["problems"] = d.problems
    n = session.execute(update(BoundaryDraft).where(BoundaryDraft.id == d.id, BoundaryDraft.version == v,
                                                    BoundaryDraft.status.in_(("draft", "submitted")))
                        .values(**values).execution_options(synchronize_session=False)).rowcount
    if n != 1:
        session.expire(d)
        raise ConflictError(f"draft #{d.id} was changed meanwhile (now version {d.version}, {d.status}); "
                            f"reload it", [{"draft": d.id, "expected_version": v, "version": d.version,
                                            "status": d.status}])
    for k, val in values.items():
        set_committed_value(d, k, val)


# ============================================================================ publish
@dataclass
class PublishReport:
    draft_id: int
    published_at: dt.datetime
    created: int = 0
    changed: int = 0
    retired: int = 0
    cases_rerouted: int = 0
    cases_updated: int = 0
    responsibilities_inherited: int = 0
    responsibilities_closed: int = 0
    warnings: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"draft": self.draft_id, "published_at": self.published_at.isoformat(), "created": self.created,
                "changed": self.changed, "retired": self.retired, "cases_rerouted": self.cases_rerouted,
                "cases_updated": self.cases_updated, "responsibilities_inherited": self.responsibilities_inherited,
                "responsibilities_closed": self.responsibilities_closed,
                "warnings": [p.as_dict() for p in self.warnings]}


def publish_draft(session: Session, draft_id: int, actor: Actor, *, reason: str | None = None,
                  expected_version: int | None = None, now: dt.datetime | None = None,
                  tolerance_m: float = DEFAULT_TOLERANCE_M, snap_m: float = 100.0,
                  inherit_workers: bool = True) -> PublishReport:
    """Publish ``draft_id`` in the caller's transaction (the caller commits; any error rolls all back).

    1. the draft row moves to 'published' only from the version read (atomic);
    2. the geometry versions it was based on are closed with one UPDATE that must hit exactly
       that many current rows, else :class:`ConflictError` (the caller rolls back; the draft
       stays a draft with all its work);
    3. the resulting state is checked: any error raises :class:`DraftProblemsError`;
    4. new areas, new geometry versions (valid_from = now), retired areas (retired_at = now);
       created cells inherit the workers of the cell most of their area came from; retired
       cells' responsibilities end today;
    5. every open case whose cell changes is moved to its new cell and re-routed
       (:func:`gridmap.assign.router.route`, one call per new cell and category kind), set-based:
       one UPDATE per (new cell, route), history rows by one bulk INSERT ("reroute", comment
       "boundary change draft #N"). Closed cases keep their cell.
    """
    from gridmap.assign.models import Responsibility
    from gridmap.assign.router import route
    from gridmap.incidents.models import Case, CaseEvent, Category

    now = now or utcnow()
    d = visible_draft(session, actor, draft_id)
    if d.status not in ("draft", "submitted"):
        raise DraftError(f"draft #{d.id} is {d.status}: only a draft or a submitted draft can be published")
    if actor.role not in PUBLISH_ROLES:
        raise DraftPermissionError(f"a {actor.role} may not publish boundary drafts "
                                   f"(allowed: {', '.join(PUBLISH_ROLES)})")
    state = DraftState(session, d)
    require_may_edit(session, actor, state, publish=True)  # before anything is written
    touched = state.touched()
    if not touched:
        raise DraftError(f"draft #{d.id} changes nothing")
    state.preload()
    v = d.version if expected_version is None else expected_version
    # (1) claim the draft: two publishers of the same draft cannot both pass
    n = session.execute(update(BoundaryDraft).where(BoundaryDraft.id == d.id, BoundaryDraft.version == v,
                                                    BoundaryDraft.status.in_(("draft", "submitted")))
                        .values(status="published", version=v + 1, published_by=actor.name,
                                published_by_user_id=actor.user_id, published_at=now, updated_at=now,
                                reason=(reason or "").strip() or None)
                        .execution_options(synchronize_session=False)).rowcount
    if n != 1:
        raise ConflictError(f"draft #{d.id} was changed or published meanwhile; reload it",
                            [{"draft": d.id, "expected_version": v}])

    # (2) close the versions the draft was based on, atomically
    expected = {r.geometry_id: c for c, r in touched.items() if r.geometry_id is not None}
    closed = 0
    for chunk in _chunks(sorted(expected)):
        closed += session.execute(update(AreaGeometry).where(AreaGeometry.id.in_(chunk),
                                                             AreaGeometry.valid_to.is_(None))
                                  .values(valid_to=now).execution_options(synchronize_session=False)).rowcount
    if closed != len(expected):
        raise ConflictError(*_conflict(session, expected, now, d.id))

    # (3) the guarantees, on the state as it will be stored
    problems = [p for p in check_state(state, tolerance_m=tolerance_m) if p.kind != "stale"]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DraftProblemsError(f"draft #{d.id} cannot be published: {len(errors)} errors, first: "
                                 f"{errors[0].message}", errors)
    rep = PublishReport(d.id, now, warnings=[p for p in problems if p.severity == "warning"])
    moves = _case_relocation(session, state, snap_m=snap_m)  # before ids change hands
    inherit_src = {c: _inherit_from(state, r) for c, r in touched.items()
                   if r.level == "cell" and r.action == "create"}

    # (4) areas and geometry versions
    ids = {}
    for lvl in LEVELS:
        for c, r in sorted(touched.items()):
            if r.level == lvl and r.action == "create":
                pid = ids.get(r.parent_code) or state.recs[r.parent_code].id if r.parent_code else None
                a = Area(level=r.level, code=r.code, name=r.name, parent_id=pid, kind=r.kind,
                         households=r.households, population=r.population, created_at=now)
                session.add(a)
                session.flush()
                r.id = ids[c] = a.id
                rep.created += 1
    parent_ids = {c: (ids.get(c) or (state.recs[c].id if c in state.recs else None)) for c in
                  {r.parent_code for r in touched.values() if r.parent_code}}
    for c, r in touched.items():
        if r.action == "change":
            session.execute(update(Area).where(Area.id == r.id).values(
                name=r.name, kind=r.kind, households=r.households, population=r.population,
                parent_id=parent_ids.get(r.parent_code)).execution_options(synchronize_session=False))
            rep.changed += 1
        elif r.action == "retire":
            session.execute(update(Area).where(Area.id == r.id).values(retired_at=now)
                            .execution_options(synchronize_session=False))
            rep.retired += 1
    active = [r for r in touched.values() if r.active]
    if active:
        areas = measure.areas_m2(np.array([r.geom for r in active], dtype=object))
        session.execute(insert(AreaGeometry.__table__), [
            {"area_id": r.id, "version": (r.version or 0) + 1 if r.action == "change" else 1,
             "geom": from_shape(r.geom, srid=4326), "area_m2": float(a), "valid_from": now, "valid_to": None}
            for r, a in zip(active, areas)])

    # workers: created cells inherit, retired cells' responsibilities end
    today = _local_today(now)
    if inherit_workers and inherit_src:
        src_ids = sorted({b.id for b in inherit_src.values() if b is not None})
        resp = _current_responsibilities(session, src_ids, today)
        rows = []
        for c, b in inherit_src.items():
            if b is None:
                continue
            for rr, w in resp.get(b.id, []):
                rows.append({"worker_id": w.id, "cell_id": touched[c].id, "role": rr.role, "valid_from": today,
                             "valid_to": None})
        if rows:
            session.execute(insert(Responsibility.__table__), rows)
            rep.responsibilities_inherited = len(rows)
    retired_ids = [r.id for r in touched.values() if r.level == "cell" and r.action == "retire"]
    for chunk in _chunks(retired_ids):
        rep.responsibilities_closed += session.execute(
            update(Responsibility).where(Responsibility.cell_id.in_(chunk),
                                         or_(Responsibility.valid_to.is_(None), Responsibility.valid_to > today))
            .values(valid_to=today).execution_options(synchronize_session=False)).rowcount
    session.flush()

    # (5) open cases follow their point
    if moves:
        _reroute(session, state, moves, actor, d, now, rep, route, Case, CaseEvent, Category)
    _store_problems(d, problems)
    session.execute(update(BoundaryDraft).where(BoundaryDraft.id == d.id).values(problems=d.problems)
                    .execution_options(synchronize_session=False))
    session.expire(d)
    return rep


def _hierarchy_ids(state: DraftState, code: str) -> dict[str, int | None]:
    rec = state.recs[code]
    out = {"cell": rec.id, "community": None, "street": None, "district": None}
    for a in state.ancestors(rec):
        out[a.level] = a.id
    return out


def _reroute(session, state, moves, actor, d, now, rep, route, Case, CaseEvent, Category) -> None:
    cats = {c.id: c for c in session.scalars(select(Category).where(
        Category.id.in_({m["category_id"] for m in moves})))}
    comment = f"boundary change draft #{d.id}"
    groups: dict[tuple, list[dict]] = {}
    routes: dict[tuple, Any] = {}
    for m in moves:
        hier = _hierarchy_ids(state, m["new_cell"])
        if m["cell_changed"]:
            cat = cats.get(m["category_id"])
            dep = cat.id if cat is not None and cat.department_id is not None else None
            key = (hier["cell"], dep)
            if key not in routes:
                routes[key] = route(session, cell_id=hier["cell"], category=cat if dep else None, at=now)
            groups.setdefault(("reroute",) + key, []).append(m)
        else:
            groups.setdefault(("hierarchy", hier["cell"], None), []).append(m)
    open_ = Case.status.not_in(CLOSED_CASE_STATUSES)
    rerouted: dict[int, tuple] = {}
    for gkey, ms in groups.items():
        kind, cell_id, dep = gkey
        code = next(iter(ms))["new_cell"]
        hier = _hierarchy_ids(state, code)
        values = {"cell_id": hier["cell"], "community_id": hier["community"], "street_id": hier["street"],
                  "district_id": hier["district"], "updated_at": now, "version": Case.version + 1}
        if kind == "reroute":
            rt = routes[(cell_id, dep)]
            values.update(assignee_worker_id=rt.worker_id, assignee_department_id=rt.department_id,
                          assignee_level=rt.level, route_reason=rt.reason)
        for chunk in _chunks([m["case_id"] for m in ms]):
            done = session.execute(update(Case).where(Case.id.in_(chunk), open_).values(**values)
                                   .returning(Case.id).execution_options(synchronize_session=False)).scalars().all()
            if kind == "reroute":
                rt = routes[(cell_id, dep)]
                for cid in done:
                    rerouted[cid] = (rt, code)
            else:
                rep.cases_updated += len(done)
    if not rerouted:
        return
    rep.cases_rerouted = len(rerouted)
    seqs: dict[int, int] = {}
    for chunk in _chunks(sorted(rerouted)):
        seqs.update(dict(session.execute(select(CaseEvent.case_id, func.max(CaseEvent.seq))
                                         .where(CaseEvent.case_id.in_(chunk)).group_by(CaseEvent.case_id)).all()))
    by_case = {m["case_id"]: m for m in moves}
    rows = []
    for cid, (rt, code) in rerouted.items():
        m = by_case[cid]
        data = {"draft": d.id, "from_cell": m["old_cell"], "to_cell": code,
                "from_worker_id": m["old_worker_id"], "from_department_id": m["old_department_id"],
                "worker_id": rt.worker_id, "department_id": rt.department_id, "level": rt.level,
                "reason": rt.reason}
        rows.append({"case_id": cid, "seq": (seqs.get(cid) or 0) + 1, "action": "reroute",
                     "from_status": m["status"], "to_status": m["status"], "at": now,
                     "actor_user_id": actor.user_id, "actor_worker_id": actor.worker_id, "actor_name": actor.name,
                     "comment": comment, "lon": m["lon"], "lat": m["lat"],
                     "data": json.dumps(data, ensure_ascii=False)})
    _bulk_insert(session, CaseEvent.__table__, rows)


def _bulk_insert(session: Session, table, rows: list[dict]) -> None:
    """Insert many rows at once: COPY on PostgreSQL (10,000 history rows in ~0.1 s instead of
    ~0.8 s through executemany), a plain executemany elsewhere."""
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        cols = list(rows[0])
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row([r[c] for c in cols])
        return
    for chunk in _chunks(rows, 5000):
        session.execute(insert(table), chunk)


def _conflict(session: Session, expected: dict[int, str], now: dt.datetime, draft_id: int) -> tuple[str, list[dict]]:
    """The message and differences for base versions that are no longer current."""
    stale = []
    for chunk in _chunks(sorted(expected)):
        for gid, aid, ver, vto in session.execute(select(AreaGeometry.id, AreaGeometry.area_id, AreaGeometry.version,
                                                         AreaGeometry.valid_to).where(AreaGeometry.id.in_(chunk))):
            if vto is not None and vto != now:
                stale.append((gid, aid, ver, vto))
    missing = set(expected) - {s[0] for s in stale}
    diffs = []
    for gid, aid, ver, vto in stale:
        cur = session.execute(select(AreaGeometry.id, AreaGeometry.version, AreaGeometry.valid_from)
                              .where(AreaGeometry.area_id == aid, AreaGeometry.valid_to.is_(None))).first()
        by = session.execute(select(BoundaryDraft.id, BoundaryDraft.published_by)
                             .join(BoundaryDraftArea, BoundaryDraftArea.draft_id == BoundaryDraft.id)
                             .where(BoundaryDraftArea.area_id == aid, BoundaryDraft.status == "published",
                                    BoundaryDraft.id != draft_id)
                             .order_by(BoundaryDraft.published_at.desc())).first()
        diffs.append({"code": expected[gid], "expected_version": ver, "expected_geometry_id": gid,
                      "current_version": cur.version if cur else None,
                      "current_geometry_id": cur.id if cur else None,
                      "changed_at": vto.isoformat(), "retired": cur is None,
                      "by_draft": by.id if by else None, "by": by.published_by if by else None})
    for gid in missing:
        diffs.append({"code": expected[gid], "expected_geometry_id": gid, "current_geometry_id": None})
    diffs.sort(key=lambda x: x["code"])
    parts = []
    for x in diffs[:10]:
        what = f"{x['code']} v{x.get('expected_version')}→" + (
            "retired" if x.get("retired") else f"v{x.get('current_version')}")
        if x.get("by_draft"):
            what += f" (draft #{x['by_draft']} by {x['by']})"
        parts.append(what)
    msg = (f"draft #{draft_id} conflicts with changes published after it started: {', '.join(parts)}"
           f"{' …' if len(diffs) > 10 else ''}. Nothing was written; the draft is kept: redo the affected "
           f"part on the current boundaries")
    return msg, diffs


# ============================================================================ diff
def diff(session: Session, at_a: dt.datetime, at_b: dt.datetime, *, level: str | None = None) -> dict:
    """Areas created, changed and retired between two moments, with area deltas (m²)."""
    for name, t in (("from", at_a), ("to", at_b)):
        if t is None or t.tzinfo is None:
            raise DraftError(f"'{name}' must be a timezone-aware moment")

    def at(t):
        rows = session.execute(
            select(Area.id, Area.level, Area.code, Area.name, AreaGeometry.id, AreaGeometry.version,
                   AreaGeometry.area_m2)
            .join(AreaGeometry, AreaGeometry.area_id == Area.id)
            .where(AreaGeometry.valid_from <= t, or_(AreaGeometry.valid_to.is_(None), AreaGeometry.valid_to > t),
                   *([Area.level == level] if level else []))).all()
        return {r[0]: r for r in rows}

    a, b = at(at_a), at(at_b)
    out: dict = {"from": at_a.isoformat(), "to": at_b.isoformat(), "created": [], "changed": [], "retired": []}
    for aid in sorted(set(b) - set(a), key=lambda i: b[i][2]):
        r = b[aid]
        out["created"].append({"code": r[2], "level": r[1], "name": r[3], "version": r[5],
                               "area_m2": round(r[6], 1)})
    for aid in sorted(set(a) - set(b), key=lambda i: a[i][2]):
        r = a[aid]
        out["retired"].append({"code": r[2], "level": r[1], "name": r[3], "version": r[5],
                               "area_m2": round(r[6], 1)})
    for aid in sorted(set(a) & set(b), key=lambda i: a[i][2]):
        ra, rb = a[aid], b[aid]
        if ra[4] != rb[4]:
            out["changed"].append({"code": ra[2], "level": ra[1], "name": rb[3], "version_from": ra[5],
                                   "version_to": rb[5], "area_m2_from": round(ra[6], 1),
                                   "area_m2_to": round(rb[6], 1), "area_m2_delta": round(rb[6] - ra[6], 1)})
    lo, hi = sorted([at_a, at_b])
    out["drafts"] = [{"id": i, "title": t, "published_at": p.isoformat(), "published_by": by, "reason": rs}
                     for i, t, p, by, rs in session.execute(
                         select(BoundaryDraft.id, BoundaryDraft.title, BoundaryDraft.published_at,
                                BoundaryDraft.published_by, BoundaryDraft.reason)
                         .where(BoundaryDraft.status == "published", BoundaryDraft.published_at > lo,
                                BoundaryDraft.published_at <= hi).order_by(BoundaryDraft.published_at))]
    out["summary"] = {k: len(out[k]) for k in ("created", "changed", "retired")}
    return out
