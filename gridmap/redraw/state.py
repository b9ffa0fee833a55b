"""The current boundaries with a draft laid over them.

Owns: :class:`AreaRec` (one area as the draft sees it), :class:`DraftState` (all districts,
streets and communities loaded whole, the cells of the communities an edit reaches loaded on
demand, the draft's areas laid over them), :func:`parents_to_check` (which parents' children a
change makes us re-check) and the batching of long id lists (:func:`chunks`).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import shapely
import shapely.errors
import shapely.ops
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from gridmap.boundaries.models import CHILD_LEVEL, Area, AreaGeometry
from gridmap.geo.shapes import as_multi, same_surface
from gridmap.redraw.models import BoundaryDraft, BoundaryDraftArea
from gridmap.redraw.problems import DraftError, DraftNotFound

CHUNK = 2000


def chunks(seq, n: int = CHUNK):
    seq = list(seq)
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


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


def vertices_only(rec: "AreaRec", base: "AreaRec | None") -> bool:
    """A change that only adds vertices on the edges (a neighbour's edge was cut there)."""
    return (base is not None and rec.active and base.geom is not None and rec.parent_code == base.parent_code
            and rec.name == base.name and same_surface(rec.geom, base.geom))


def load_recs(session: Session, where_clause) -> list[AreaRec]:
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
        for rec in load_recs(session, Area.level.in_(("district", "street", "community"))):
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
            for i in range(0, len(ids), CHUNK):
                for rec in load_recs(self.session, (Area.level == "cell") & Area.parent_id.in_(ids[i:i + CHUNK])):
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
            for chunk in chunks(area_ids):
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
        parents = parents_to_check(self, self.touched())
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


def parents_to_check(state: DraftState, touched: dict[str, AreaRec]) -> dict[str, set[str]]:
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
