"""Geometry helpers shared by the import checks and by redrawing: pure shapely, no database.

Owns: turning anything polygonal into a MultiPolygon (:func:`as_multi`), comparing surfaces,
the metric CRS for a set of lon/lat geometries (:func:`metric_epsg`), a tolerance in degrees,
the one sliver test (:func:`thin`: area ≤ tol² or nowhere wider than tol), the representative
point of a problem (:func:`where`), snapping drawn geometry onto existing vertices and edges
(:func:`snap_drawn`), lengthening a line (:func:`extend_line`), shared border lengths and the
pieces of a polygon outside a container that are wider than the tolerance.

Everything takes and returns EPSG:4326 (lon/lat) geometry; metres are used only to measure.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import shapely
import shapely.errors
import shapely.ops

from gridmap.geo import measure


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


def metric_epsg(geoms) -> int:
    arr = [g for g in geoms if g is not None and not g.is_empty]
    return measure.metric_crs_for(np.array(arr, dtype=object))


def tol_degrees(tolerance_m: float) -> float:
    """The tolerance as degrees of latitude (a degree of longitude is shorter: conservative)."""
    return float(tolerance_m) / 111_320.0


def thin(geoms_metric: np.ndarray, tolerance_m: float) -> np.ndarray:
    """True where a metric polygon is a sliver: area ≤ tol² or nowhere wider than tol (it vanishes
    under an inward buffer of tol / 2). The one definition of "too thin to matter" used by the
    import checks (:mod:`gridmap.boundaries.checks`) and by redrawing."""
    geoms_metric = np.asarray(geoms_metric, dtype=object)
    if len(geoms_metric) == 0:
        return np.zeros(0, dtype=bool)
    tol = float(tolerance_m)
    small = shapely.area(geoms_metric) <= tol * tol
    narrow = np.zeros(len(geoms_metric), dtype=bool)
    rest = ~small
    if tol > 0 and rest.any():
        narrow[rest] = shapely.is_empty(shapely.buffer(geoms_metric[rest], -tol / 2.0, quad_segs=2))
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


def snap_drawn(geom, refs: Iterable, tolerance_m: float):
    """Move drawn vertices onto existing vertices within the tolerance (``shapely.snap``, which
    also inserts existing vertices the drawn edges pass close to), then onto existing edges."""
    refs = [r for r in refs if r is not None and not r.is_empty]
    if not refs or tolerance_m <= 0:
        return geom
    tol = tol_degrees(tolerance_m)
    lat = (geom.bounds[1] + geom.bounds[3]) / 2.0
    tol_lon = tol / max(math.cos(math.radians(lat)), 0.2)
    box = shapely.box(*geom.bounds).buffer(tol_lon)
    bounds = [shapely.boundary(r) for r in refs]
    near_lines = [b for b in bounds if b.intersects(box)]
    if not near_lines:
        return geom
    pts = shapely.get_coordinates(np.array(near_lines, dtype=object))
    pts = pts[(pts[:, 0] >= box.bounds[0]) & (pts[:, 0] <= box.bounds[2]) & (pts[:, 1] >= box.bounds[1])
              & (pts[:, 1] <= box.bounds[3])]
    out = geom
    if len(pts):
        out = shapely.snap(geom, shapely.multipoints(np.unique(pts, axis=0)), tol)
    # vertices close to an existing edge (no vertex there): onto the edge
    lines = shapely.get_parts(shapely.line_merge(shapely.union_all(np.array(near_lines, dtype=object))))
    tree = shapely.STRtree(lines)
    xy = shapely.get_coordinates(out)
    p = shapely.points(xy)
    (pi, li), d = tree.query_nearest(p, max_distance=tol, return_distance=True, all_matches=False)
    if len(pi):
        moved = xy.copy()
        proj = shapely.line_interpolate_point(lines[li], shapely.line_locate_point(lines[li], p[pi]))
        keep = d > 0
        moved[pi[keep]] = shapely.get_coordinates(proj)[keep]
        out2 = shapely.set_coordinates(shapely.from_wkb(shapely.to_wkb(out)), moved)
        if out2.is_valid or not out.is_valid:
            out = out2
    if shapely.get_type_id(geom) in (3, 6) and not out.is_valid:
        fixed = as_multi(shapely.make_valid(out))
        out = fixed if fixed is not None else geom
    return out


def extend_line(line, metres: float):
    """The line lengthened by ``metres`` at both ends along its end segments."""
    xy = shapely.get_coordinates(line)
    if len(xy) < 2:
        return line
    lat = float(np.mean(xy[:, 1]))
    kx = 111_320.0 * math.cos(math.radians(lat))
    ky = 110_574.0

    def push(a, b):
        dx, dy = (a[0] - b[0]) * kx, (a[1] - b[1]) * ky
        n = math.hypot(dx, dy)
        if n == 0:
            return a
        return np.array([a[0] + dx / n * metres / kx, a[1] + dy / n * metres / ky])

    xy = np.vstack([push(xy[0], xy[1]), xy, push(xy[-1], xy[-2])])
    return shapely.LineString(xy)


def wkt(g) -> str:
    return shapely.to_wkt(g, rounding_precision=9, trim=True)


def shared_border_m(a, b, epsg) -> float:
    """Length in metres of the border two polygons share."""
    if a is None or b is None:
        return 0.0
    inter = shapely.intersection(shapely.boundary(a), shapely.boundary(b))
    if inter.is_empty:
        return 0.0
    return float(shapely.length(measure.to_metric(np.array([inter], dtype=object), epsg))[0])


def outside_pieces(g, container, tol: float, epsg: int):
    """Pieces of ``g`` outside ``container`` wider than the tolerance (metric test), in lon/lat."""
    out = shapely.difference(g, container)
    if out.is_empty:
        return None
    parts = shapely.get_parts(as_multi(out) or shapely.MultiPolygon())
    if not len(parts):
        return None
    big = ~thin(measure.to_metric(parts, epsg), tol)
    return shapely.MultiPolygon(list(parts[big])) if big.any() else None
