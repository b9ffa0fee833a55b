"""The cell lookup index: any coordinate → at most one cell, deterministically, in bulk.

Owns: the in-memory index over the cells valid at one moment (shapely 2 STRtree, built once per
boundary state and rebuilt when boundaries change), the edge rule (a point on a shared edge or
vertex goes to the covering cell with the smallest code), snapping (a point outside every cell
goes to the nearest cell within a snap distance, measured in metres in a CGCS2000 Gauss-Krüger
zone), and the hierarchy of each cell (community, street, district). No Python loop per point.
"""
from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gridmap.boundaries.models import Area, AreaGeometry
from gridmap.geo import coords
from gridmap.geo.coords import CRS, parse_crs

LEVEL_KEYS = ("cell", "community", "street", "district")


@dataclass
class LocateResult:
    """Per point: index into the index's cells (-1: none), snapped flag and distance in metres."""

    cell: np.ndarray  # int64, -1 where no cell
    snapped: np.ndarray  # bool
    distance_m: np.ndarray  # float64, NaN where no cell; 0 inside a cell
    lon: np.ndarray  # the WGS84 coordinates actually looked up
    lat: np.ndarray
    valid: np.ndarray  # bool: coordinates were usable


class CellIndex:
    """Cells (sorted by code) with their geometries, an STRtree and the hierarchy above them."""

    def __init__(self, codes, names, geoms, hierarchy: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                 stamp=None):
        order = np.argsort(np.asarray(codes, dtype=object).astype(str), kind="stable")
        self.codes = np.asarray(codes, dtype=object)[order]
        self.names = np.asarray(names, dtype=object)[order]
        self.geoms = np.asarray(geoms, dtype=object)[order]
        self.hierarchy = {k: (np.asarray(c, dtype=object)[order], np.asarray(n, dtype=object)[order])
                          for k, (c, n) in (hierarchy or {}).items()}
        self.stamp = stamp
        shapely.prepare(self.geoms)
        self.tree = shapely.STRtree(self.geoms)
        self._metric_lock = threading.Lock()
        self._metric = None  # (epsg, projected geoms, tree), built on the first snap
        self._buckets = None  # (x0, y0, dx, dy, nx, ny, table), built on the first bulk lookup

    #: bulk lookups of at least this many points build and use the bucket table
    BUCKET_MIN_POINTS = 20_000
    #: buckets per cell in the table (more: more points resolved by arithmetic, slower to build)
    BUCKETS_PER_CELL = 64

    def __len__(self) -> int:
        return len(self.codes)

    # -- lookup ---------------------------------------------------------------------------
    def locate(self, x, y, crs: str | CRS | None = "wgs84", snap_m: float = 100.0) -> LocateResult:
        """Resolve arrays of coordinates (in ``crs``) to cells."""
        x = np.atleast_1d(np.asarray(x, dtype="float64"))
        y = np.atleast_1d(np.asarray(y, dtype="float64"))
        c = crs if isinstance(crs, CRS) else parse_crs(crs)
        finite = np.isfinite(x) & np.isfinite(y)
        lon = np.full(x.shape, np.nan)
        lat = np.full(x.shape, np.nan)
        if finite.any():
            lon[finite], lat[finite] = coords.to_wgs84(x[finite], y[finite], c)
        valid = coords.valid_lonlat_mask(lon, lat)
        n = len(x)
        cell = np.full(n, -1, dtype=np.int64)
        snapped = np.zeros(n, dtype=bool)
        dist = np.full(n, np.nan)
        if n == 0 or len(self) == 0 or not valid.any():
            return LocateResult(cell, snapped, dist, lon, lat, valid)
        vidx = np.flatnonzero(valid)
        if len(vidx) >= self.BUCKET_MIN_POINTS:
            # points in a bucket that lies wholly inside one cell need no geometry at all
            quick = self._bucket_lookup(lon[vidx], lat[vidx])
            done = quick >= 0
            cell[vidx[done]] = quick[done]
            dist[vidx[done]] = 0.0
            vidx = vidx[~done]
        pts = shapely.points(lon[vidx], lat[vidx])
        pi, gi = self.tree.query(pts, predicate="intersects")
        if len(pi):
            best = np.full(len(vidx), np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(best, pi, gi)  # edge rule: smallest code wins (cells are sorted by code)
            hit = best != np.iinfo(np.int64).max
            cell[vidx[hit]] = best[hit]
            dist[vidx[hit]] = 0.0
        vidx = np.flatnonzero(valid)
        if snap_m and snap_m > 0:
            miss = vidx[cell[vidx] < 0]
            if len(miss):
                self._snap(miss, lon, lat, snap_m, cell, snapped, dist)
        return LocateResult(cell, snapped, dist, lon, lat, valid)

    def _bucket_table(self):
        """A regular grid over the cells; each bucket holds the one cell whose interior contains the
        whole bucket, or -1 when a cell boundary passes through it or it lies outside every cell.

        Points in a resolved bucket are strictly inside that cell, so the edge rule cannot apply to
        them; every other point goes through the exact STRtree path. Built without testing boxes:
        cell boundaries are sampled at most half a bucket apart and every bucket a sample lies in
        (or on the border of) is marked, as are both buckets beside a diagonal step between two
        samples, so every bucket a boundary touches is marked; an unmarked bucket lies wholly in
        one cell or wholly outside, and its centre tells which.
        """
        with self._metric_lock:
            if self._buckets is None:
                x0, y0, x1, y1 = shapely.total_bounds(self.geoms)
                n = max(1, int(len(self) * self.BUCKETS_PER_CELL))
                aspect = (x1 - x0) / max(y1 - y0, 1e-12)
                nx = int(min(max(np.sqrt(n * aspect), 1), 4096))
                ny = int(min(max(n / nx, 1), 4096))
                dx, dy = (x1 - x0) / nx, (y1 - y0) / ny
                step = min(dx, dy) / 2
                xy = shapely.get_coordinates(shapely.segmentize(shapely.boundary(self.geoms), step))
                fx, fy = (xy[:, 0] - x0) / dx, (xy[:, 1] - y0) / dy
                ix, iy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
                edge = np.zeros((ny + 2, nx + 2), dtype=bool)  # padded by one on every side
                tol = 1e-6
                near = {-1: None, 0: None, 1: None}
                near_x = {-1: (fx - ix) < tol, 0: np.ones(len(ix), bool), 1: (ix + 1 - fx) < tol}
                near_y = {-1: (fy - iy) < tol, 0: np.ones(len(iy), bool), 1: (iy + 1 - fy) < tol}
                del near
                for ox in (-1, 0, 1):  # the sample's bucket, and its neighbours when it sits on their border
                    for oy in (-1, 0, 1):
                        m = near_x[ox] & near_y[oy]
                        edge[np.clip(iy[m] + oy + 1, 0, ny + 1), np.clip(ix[m] + ox + 1, 0, nx + 1)] = True
                # a step between diagonal buckets passes through one of the two others: mark both
                diag = (ix[1:] != ix[:-1]) & (iy[1:] != iy[:-1])
                for a, b in ((iy[:-1][diag], ix[1:][diag]), (iy[1:][diag], ix[:-1][diag])):
                    edge[np.clip(a + 1, 0, ny + 1), np.clip(b + 1, 0, nx + 1)] = True
                edge = edge[1:-1, 1:-1].ravel()
                free = np.flatnonzero(~edge)
                cx = x0 + (free % nx + 0.5) * dx
                cy = y0 + (free // nx + 0.5) * dy
                pi, gi = self.tree.query(shapely.points(cx, cy), predicate="intersects")
                best = np.full(len(free), np.iinfo(np.int64).max, dtype=np.int64)
                np.minimum.at(best, pi, gi)
                table = np.full(nx * ny, -1, dtype=np.int64)
                hit = best != np.iinfo(np.int64).max
                table[free[hit]] = best[hit]
                self._buckets = (x0, y0, dx, dy, nx, ny, table)
            return self._buckets

    def _bucket_lookup(self, lon, lat):
        x0, y0, dx, dy, nx, ny, table = self._bucket_table()
        ix = np.floor((lon - x0) / dx).astype(np.int64)
        iy = np.floor((lat - y0) / dy).astype(np.int64)
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        out = np.full(len(lon), -1, dtype=np.int64)
        out[inside] = table[iy[inside] * nx + ix[inside]]
        return out

    def _metric_index(self):
        with self._metric_lock:
            if self._metric is None:
                from gridmap.geo.measure import to_metric

                cx = float(np.mean(shapely.total_bounds(self.geoms)[[0, 2]]))
                epsg = coords.gk_zone_epsg(cx)
                mgeoms = to_metric(self.geoms, epsg)
                self._metric = (epsg, mgeoms, shapely.STRtree(mgeoms))
            return self._metric

    def _snap(self, miss, lon, lat, snap_m, cell, snapped, dist):
        epsg, _mgeoms, mtree = self._metric_index()
        t = coords.transformer(4326, epsg)
        mx, my = t.transform(lon[miss], lat[miss])
        mpts = shapely.points(mx, my)
        (pi, gi), d = mtree.query_nearest(mpts, max_distance=snap_m, return_distance=True, all_matches=True)
        if not len(pi):
            return
        best = np.full(len(miss), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(best, pi, gi)  # equidistant cells: smallest code
        bestd = np.full(len(miss), np.inf)
        np.minimum.at(bestd, pi, d)
        hit = best != np.iinfo(np.int64).max
        cell[miss[hit]] = best[hit]
        snapped[miss[hit]] = True
        dist[miss[hit]] = bestd[hit]

    # -- presentation ----------------------------------------------------------------------
    def describe(self, res: LocateResult, i: int) -> dict:
        """The JSON shape shared by `gridmap locate --json` and GET /api/v1/locate."""
        k = int(res.cell[i])
        out: dict = {}
        for level in LEVEL_KEYS:
            if k < 0:
                out[level] = None
            elif level == "cell":
                out[level] = {"code": str(self.codes[k]), "name": str(self.names[k])}
            else:
                codes_, names_ = self.hierarchy.get(level, (None, None))
                if codes_ is None or codes_[k] is None:
                    out[level] = None
                else:
                    out[level] = {"code": str(codes_[k]), "name": str(names_[k])}
        out["snapped"] = bool(res.snapped[i])
        out["distance_m"] = None if k < 0 else round(float(res.distance_m[i]), 2)
        out["wgs84"] = (
            {"lon": round(float(res.lon[i]), 8), "lat": round(float(res.lat[i]), 8)}
            if res.valid[i] else None
        )
        return out

    def level_codes(self, level: str, cells: np.ndarray) -> np.ndarray:
        """Codes of ``level`` for an array of cell indices (None where -1)."""
        src = self.codes if level == "cell" else self.hierarchy.get(level, (np.full(len(self), None),))[0]
        out = np.full(len(cells), None, dtype=object)
        ok = cells >= 0
        out[ok] = src[cells[ok]]
        return out


# -- building from the database -------------------------------------------------------------

def _valid_at(at: dt.datetime | None):
    if at is None:
        return AreaGeometry.valid_to.is_(None)
    return (AreaGeometry.valid_from <= at) & or_(AreaGeometry.valid_to.is_(None), AreaGeometry.valid_to > at)


def boundary_stamp(session: Session):
    """A cheap fingerprint of the stored boundaries; changes whenever any geometry row does."""
    row = session.execute(
        select(func.max(AreaGeometry.id), func.count(AreaGeometry.id), func.max(AreaGeometry.valid_to),
               func.max(Area.id), func.count(Area.retired_at))
        .select_from(Area).outerjoin(AreaGeometry, AreaGeometry.area_id == Area.id)
    ).one()
    return tuple(str(v) for v in row)


def build_index(session: Session, at: dt.datetime | None = None) -> CellIndex:
    areas = session.execute(select(Area.id, Area.level, Area.code, Area.name, Area.parent_id)).all()
    by_id = {a.id: a for a in areas}
    rows = session.execute(
        select(Area.id, func.ST_AsBinary(AreaGeometry.geom))
        .join(AreaGeometry, AreaGeometry.area_id == Area.id)
        .where(Area.level == "cell", _valid_at(at))
    ).all()
    ids = [r[0] for r in rows]
    geoms = shapely.from_wkb([bytes(r[1]) for r in rows]) if rows else np.array([], dtype=object)
    hierarchy: dict[str, tuple[list, list]] = {lvl: ([], []) for lvl in ("community", "street", "district")}
    for aid in ids:
        found = {}
        p = by_id[aid].parent_id
        while p is not None and p in by_id:
            a = by_id[p]
            found[a.level] = a
            p = a.parent_id
        for lvl in hierarchy:
            a = found.get(lvl)
            hierarchy[lvl][0].append(a.code if a else None)
            hierarchy[lvl][1].append(a.name if a else None)
    return CellIndex(
        [by_id[i].code for i in ids], [by_id[i].name for i in ids], geoms,
        {k: (np.array(v[0], dtype=object), np.array(v[1], dtype=object)) for k, v in hierarchy.items()},
        stamp=boundary_stamp(session),
    )


_cache: dict = {}
_cache_lock = threading.Lock()


def get_index(session: Session, at: dt.datetime | None = None) -> CellIndex:
    """The index for the current boundaries (or as of ``at``), rebuilt only when they changed."""
    key = (str(session.get_bind().url), at.isoformat() if at else None)
    stamp = boundary_stamp(session)
    with _cache_lock:
        idx = _cache.get(key)
    if idx is not None and idx.stamp == stamp:
        return idx
    idx = build_index(session, at)
    with _cache_lock:
        if len(_cache) > 32:
            _cache.clear()
        _cache[key] = idx
    return idx


def locate_one(session: Session, x: float, y: float, crs="wgs84", snap_m: float = 100.0,
               at: dt.datetime | None = None) -> dict:
    idx = get_index(session, at)
    res = idx.locate([x], [y], crs, snap_m)
    return idx.describe(res, 0)
