"""Boundary rules that touch the database: import a checked layer, load, check and export
stored boundaries.

Owns: linking children to parents (by a parent-code field or by spatial containment), checking
the layer *as it will be stored* (the file's features merged with the siblings already in the
database), and writing all features in one transaction or none. A re-imported code keeps its
identity (same area row); a changed geometry closes the old version (valid_to) and opens a new
one, so the past is never lost.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from gridmap.boundaries.checks import check_layer
from gridmap.boundaries.io import BoundaryLayer, Problem
from gridmap.boundaries.models import KIND_ALIASES, KINDS, LEVELS, PARENT_LEVEL, Area, AreaGeometry
from gridmap.db import utcnow
from gridmap.geo.measure import areas_m2

DEFAULT_KIND = {"district": "district", "street": "street", "community": "residents", "cell": "base"}


@dataclass
class ImportReport:
    path: str
    level: str
    dry_run: bool
    problems: list[Problem] = field(default_factory=list)
    created: int = 0
    updated: int = 0  # a new geometry version or changed attributes
    unchanged: int = 0
    written: bool = False

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        verb = "would write" if self.dry_run else ("wrote" if self.written else "wrote nothing")
        return (f"{self.path}: {self.level}: {verb}: {self.created} new, {self.updated} changed, "
                f"{self.unchanged} unchanged; {len(self.errors)} errors, "
                f"{sum(p.severity == 'warning' for p in self.problems)} warnings, "
                f"{sum(p.severity == 'repair' for p in self.problems)} repairs")


def _valid_at(at):
    if at is None:
        return AreaGeometry.valid_to.is_(None)
    return (AreaGeometry.valid_from <= at) & or_(AreaGeometry.valid_to.is_(None), AreaGeometry.valid_to > at)


def load_level(session: Session, level: str, at: dt.datetime | None = None) -> gpd.GeoDataFrame:
    """Stored areas of one level with their geometry (current, or as of ``at``)."""
    parent = Area.__table__.alias("parent")
    rows = session.execute(
        select(Area.id, Area.code, Area.name, parent.c.code.label("parent_code"), Area.kind,
               Area.households, Area.population, AreaGeometry.version, AreaGeometry.area_m2,
               func.ST_AsBinary(AreaGeometry.geom).label("wkb"))
        .join(AreaGeometry, AreaGeometry.area_id == Area.id)
        .outerjoin(parent, parent.c.id == Area.parent_id)
        .where(Area.level == level, _valid_at(at))
        .order_by(Area.code)
    ).all()
    df = pd.DataFrame([r._asdict() for r in rows],
                      columns=["id", "code", "name", "parent_code", "kind", "households", "population",
                               "version", "area_m2", "wkb"])
    geoms = shapely.from_wkb([bytes(w) for w in df["wkb"]]) if len(df) else []
    df = df.drop(columns=["wkb"])
    for col in ("households", "population"):
        df[col] = df[col].astype("Int64")
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)


def _link_parents(layer: BoundaryLayer, parents: gpd.GeoDataFrame, problems: list[Problem]) -> pd.Series:
    """parent_code per feature: from the file's field, else the parent covering its interior point."""
    feats = layer.features
    if feats["parent_code"].notna().any():
        return feats["parent_code"]
    if parents.empty:
        return pd.Series([None] * len(feats), index=feats.index, dtype=object)
    pts = shapely.point_on_surface(feats.geometry.values)
    tree = shapely.STRtree(parents.geometry.values)
    pi, gi = tree.query(pts, predicate="intersects")
    best = np.full(len(feats), -1, dtype=np.int64)
    # the smallest parent code wins on a shared edge (parents are ordered by code)
    order = np.argsort(-gi, kind="stable")
    best[pi[order]] = gi[order]
    codes = np.array(parents["code"], dtype=object)
    out = np.where(best >= 0, codes[np.maximum(best, 0)], None)
    for i in np.flatnonzero(best < 0):
        f = feats.iloc[i]
        p = pts[i]
        problems.append(Problem(
            "error", "outside_parent",
            f"{layer.path} row {f['row']} ({f['code']} {f['name']}): lies in no stored "
            f"{PARENT_LEVEL[layer.level]}; give --parent-field or import the level above first",
            codes=(f["code"],), row=int(f["row"]), lon=shapely.get_x(p), lat=shapely.get_y(p)))
    return pd.Series(out, index=feats.index, dtype=object)


def import_layer(session: Session, layer: BoundaryLayer, *, dry_run: bool = False,
                 tolerance_m: float = 0.5, now: dt.datetime | None = None) -> ImportReport:
    """Check ``layer`` against what is stored and write it in the caller's transaction.

    Nothing is written when any error is found or ``dry_run`` is set; the caller commits.
    """
    now = now or utcnow()
    level = layer.level
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    rep = ImportReport(layer.path, level, dry_run, problems=list(layer.problems))
    feats = layer.features.copy()
    bad_rows = {p.row for p in layer.errors if p.row is not None}
    feats = feats[~feats["row"].isin(bad_rows)] if bad_rows else feats

    # kinds
    allowed = KINDS[level]
    kinds = feats["kind"].where(feats["kind"].notna() & (feats["kind"].astype(str) != ""), DEFAULT_KIND[level])
    kinds = kinds.map(lambda k: KIND_ALIASES.get(str(k).strip(), k))  # 街道, 镇, 专属网格, 学校 …
    for i in np.flatnonzero(~kinds.isin(allowed).values):
        f = feats.iloc[i]
        rep.problems.append(Problem("error", "bad_value",
                                    f"{layer.path} row {f['row']} ({f['code']}): kind {kinds.iloc[i]!r} "
                                    f"is not one of {', '.join(allowed)} for a {level}",
                                    codes=(f["code"],), row=int(f["row"])))
    feats["kind"] = kinds

    # existing areas with these codes
    codes = list(feats["code"])
    existing = {a.code: a for a in session.scalars(select(Area).where(Area.code.in_(codes)))} if codes else {}
    for code, a in existing.items():
        if a.level != level:
            f = feats[feats["code"] == code].iloc[0]
            rep.problems.append(Problem("error", "duplicate_code",
                                        f"{layer.path} row {f['row']}: code {code} already belongs to a "
                                        f"stored {a.level} ({a.name}); codes are never reused",
                                        codes=(code,), row=int(f["row"])))

    # parents
    parent_level = PARENT_LEVEL.get(level)
    parents = load_level(session, parent_level) if parent_level else None
    if parent_level:
        feats["parent_code"] = _link_parents(
            BoundaryLayer(layer.path, level, feats, layer.encoding, layer.encoding_source, layer.source_crs, []),
            parents, rep.problems).values
        if parents.empty and feats["parent_code"].notna().any():
            missing = sorted(set(feats["parent_code"].dropna()))
            rep.problems.append(Problem("error", "unknown_parent",
                                        f"{layer.path}: no {parent_level} is stored, but the file names parents "
                                        f"({', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}): "
                                        f"import the {parent_level} level first", codes=tuple(missing[:20])))
        if parents.empty:
            parents = None

    # check the level as it will be stored: stored siblings not in the file, plus the file
    stored = load_level(session, level)
    keep = stored[~stored["code"].isin(codes)]
    if parents is not None:
        touched = set(feats["parent_code"].dropna())
        keep = keep[keep["parent_code"].isin(touched)]
        check_parents = parents[parents["code"].isin(touched)]
    else:
        check_parents = None
    merged = pd.concat([keep[["code", "name", "parent_code", "geometry"]],
                        feats[["code", "name", "parent_code", "geometry"]]], ignore_index=True)
    merged = gpd.GeoDataFrame(merged, geometry="geometry", crs=4326)
    rep.problems.extend(check_layer(merged, check_parents, level=level, tolerance_m=tolerance_m,
                                    source=layer.path))

    # what would change
    area_m2 = areas_m2(feats.geometry.values) if len(feats) else np.array([])
    current = {}
    if existing:
        ids = [a.id for a in existing.values()]
        for aid, ver, wkb in session.execute(
                select(AreaGeometry.area_id, AreaGeometry.version, func.ST_AsBinary(AreaGeometry.geom))
                .where(AreaGeometry.area_id.in_(ids), AreaGeometry.valid_to.is_(None))):
            current[aid] = (ver, shapely.from_wkb(bytes(wkb)))
    parent_ids = {}
    if parent_level:
        parent_ids = dict(session.execute(select(Area.code, Area.id).where(Area.level == parent_level)).all())

    plan = []
    for i, f in enumerate(feats.itertuples(index=False)):
        a = existing.get(f.code)
        geom_changed = True
        if a is not None and a.id in current:
            geom_changed = not shapely.equals_exact(current[a.id][1], f.geometry, tolerance=1e-9)
        hh = None if pd.isna(f.households) else int(f.households)
        pop = None if pd.isna(f.population) else int(f.population)
        pid = parent_ids.get(f.parent_code) if f.parent_code else None
        if a is None:
            rep.created += 1
        elif (geom_changed or a.name != f.name or a.kind != f.kind or a.households != hh
              or a.population != pop or a.parent_id != pid or a.retired_at is not None):
            rep.updated += 1
        else:
            rep.unchanged += 1
        plan.append((f, a, geom_changed, hh, pop, pid, float(area_m2[i])))

    if rep.errors or dry_run:
        return rep

    new_geoms = []
    for f, a, geom_changed, hh, pop, pid, am2 in plan:
        if a is None:
            a = Area(level=level, code=f.code, name=f.name, kind=f.kind, households=hh, population=pop,
                     parent_id=pid, created_at=now)
            session.add(a)
            session.flush()
            version = 1
        else:
            a.name, a.kind, a.households, a.population, a.parent_id, a.retired_at = f.name, f.kind, hh, pop, pid, None
            if not geom_changed:
                continue
            version = current[a.id][0] + 1 if a.id in current else 1
            session.execute(update(AreaGeometry)
                            .where(AreaGeometry.area_id == a.id, AreaGeometry.valid_to.is_(None))
                            .values(valid_to=now))
        new_geoms.append({"area_id": a.id, "version": version, "area_m2": am2, "valid_from": now,
                          "geom": from_shape(f.geometry, srid=4326)})
    if new_geoms:
        session.flush()
        session.execute(AreaGeometry.__table__.insert(), new_geoms)
    rep.written = True
    return rep


def check_stored(session: Session, level: str | None = None, tolerance_m: float = 0.5) -> list[Problem]:
    """Coverage checks over the stored current boundaries (one level, or every level)."""
    problems: list[Problem] = []
    for lvl in ([level] if level else list(LEVELS)):
        children = load_level(session, lvl)
        if children.empty:
            continue
        parent_level = PARENT_LEVEL.get(lvl)
        parents = load_level(session, parent_level) if parent_level else None
        if parents is not None and parents.empty:
            parents = None
        problems.extend(check_layer(children[["code", "name", "parent_code", "geometry"]], parents,
                                    level=lvl, tolerance_m=tolerance_m, source=f"stored {lvl} level"))
    return problems


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Area.level, func.count()).where(Area.retired_at.is_(None))
                           .group_by(Area.level)).all()
    out = {lvl: 0 for lvl in LEVELS}
    out.update({lvl: n for lvl, n in rows})
    return out
