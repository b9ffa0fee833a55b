"""Hierarchy checks on a layer of boundaries: overlaps, gaps, children outside their parent, spikes.

Owns: :func:`check_layer`, which compares the polygons of one level (e.g. the cells of an
import) with each other and with their parents (e.g. the communities) and reports, as
:class:`~gridmap.boundaries.io.Problem` s, siblings that overlap, children that stick out of
their parent or name a parent that does not exist, and parent area that no child covers;
and :func:`find_spikes` (warnings, kind ``spike``): thin spurs of a ring, a needle narrower than
``SPIKE_WIDTH_M`` reaching more than ``SPIKE_REACH_M`` out of the polygon's body (the body is
its morphological opening: inward buffer, then outward, by half the width, in metres). A
digitizing slip or a clip along a coast leaves such needles; they pass every coverage check,
catch points and draw as hairlines.
Overlays run on the lon/lat coordinates as stored, so that edges shared exactly stay shared
(projecting first turns a long parent edge into a chord while its children's extra vertices
bend: false slivers of decimetres over kilometres). Every area and width is measured in metres
on the resulting pieces, projected to the CGCS2000 Gauss-Krüger zone of the data
(:mod:`gridmap.geo.measure`); locations are reported in WGS84 lon/lat.

What counts (``tolerance_m``, default 0.5 m, the digitizing tolerance): an overlap,
protrusion or gap is made of polygon pieces; a piece is reported only if its area exceeds
``tolerance_m²`` AND it is wider than ``tolerance_m`` somewhere (it survives an inward
buffer of ``tolerance_m / 2``). Slivers thinner than the tolerance, however long, are the
usual mismatch between files drawn by different people and are not reported; neither is
floating-point dust along shared edges.

Invalid or empty geometries are skipped (the reader already reported them): GEOS coverage
functions are undefined on them. For the gap check an invalid child still counts as covering
the area of its repaired form, so its area is not reported a second time as a gap.

Speed: candidate pairs come from one STRtree query over all children; every overlay runs
vectorized over arrays of pairs. Per parent, a sibling set that is a valid coverage
(``shapely.coverage_is_valid``: edges match exactly, nothing overlaps) skips the overlap
overlays and is merged with the cheap ``coverage_union_all``. Before any difference is
computed, a child covered by its parent grown by ``tolerance_m / 2``, or a parent covered
by its children's union grown by ``tolerance_m / 2``, is passed: any piece wide enough to
report holds a disk of radius ``tolerance_m / 2`` whose centre lies outside that grown shape,
so the filter loses nothing. 3,200 cells under 400 communities take ~0.2 s when edges match
exactly and a few seconds with 1.2 million mismatched vertices (the per-parent union dominates).
The spike check adds a minimum clearance over all children and an opening of the few that
have a narrow part: ~0.3 s for the 1,968 demo cells, ~6 s for 620,000 jittered vertices.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.boundaries.io import LEVELS, Problem
from gridmap.config import check_tolerance_m
from gridmap.geo import measure, shapes

__all__ = ["check_layer", "find_spikes", "SPIKE_WIDTH_M", "SPIKE_REACH_M"]

#: a spike is narrower than this ...
SPIKE_WIDTH_M = 1.0
#: ... and reaches further than this out of the polygon's body
SPIKE_REACH_M = 10.0

_PARENT_LEVEL = {"street": "district", "community": "street", "cell": "community"}
_PLURAL = {"district": "districts", "street": "streets", "community": "communities", "cell": "cells"}


def _column(df: pd.DataFrame, name: str, n: int) -> np.ndarray:
    if name not in df.columns:
        return np.full(n, None, dtype=object)
    s = df[name].reset_index(drop=True)
    out = np.array(s.astype(object).to_numpy(), dtype=object)  # a writable copy
    out[pd.isna(s).to_numpy()] = None
    return out


def _str_codes(df: pd.DataFrame, name: str, n: int) -> np.ndarray:
    """A column as stripped strings, "" where missing (or the column is absent)."""
    if name not in df.columns:
        return np.full(n, "", dtype=object)
    s = df[name].reset_index(drop=True)
    return s.astype("string").str.strip().fillna("").to_numpy(dtype=object)


def _pieces(geoms: np.ndarray, tol: float, epsg: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The significant polygon pieces of lon/lat ``geoms``: (pieces in lon/lat, index of their
    geometry, piece areas in m²). A piece counts if area > tol² and it is wider than tol
    somewhere; both are measured on the pieces projected to the metric CRS ``epsg``."""
    if len(geoms) == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.intp), np.empty(0)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    parts, owner2 = shapely.get_parts(parts, return_index=True)  # collections holding multis
    owner = owner[owner2]
    polys = shapely.get_type_id(parts) == 3
    parts, owner = parts[polys], owner[polys]
    metric = measure.to_metric(parts, epsg) if len(parts) else parts
    area = shapely.area(metric) if len(parts) else np.empty(0)
    keep = ~shapes.thin(metric, tol)
    return parts[keep], owner[keep], area[keep]


def _lonlat(points: np.ndarray, epsg: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of lon/lat points (overlays run in lon/lat, see check_layer)."""
    if len(points) == 0:
        return np.empty(0), np.empty(0)
    return (np.asarray(shapely.get_x(points), dtype="float64"),
            np.asarray(shapely.get_y(points), dtype="float64"))


def _largest_per_owner(owner: np.ndarray, area: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For pieces grouped by owner: (owners, total area per owner, index of the largest piece)."""
    if len(owner) == 0:
        return np.empty(0, dtype=np.intp), np.empty(0), np.empty(0, dtype=np.intp)
    order = np.lexsort((-area, owner))  # by owner, largest first
    owner_s = owner[order]
    starts = np.flatnonzero(np.r_[True, owner_s[1:] != owner_s[:-1]])
    totals = np.add.reduceat(area[order], starts)
    return owner_s[starts], totals, order[starts]


def check_layer(
    children: gpd.GeoDataFrame,
    parents: gpd.GeoDataFrame | None,
    *,
    level: str,
    tolerance_m: float = 0.5,
    source: str = "",
) -> list[Problem]:
    """Check the polygons of one ``level`` against each other and against their parents.

    ``children``: columns code, name, parent_code (optional), row (optional), geometry in
    EPSG:4326. ``parents``: columns code, name, geometry, or None for a flat import (then
    overlaps are looked for among all children and only holes enclosed by the children
    count as gaps). Returns errors (overlap, outside_parent, unknown_parent, gap) and
    warnings (parents without any child); see the module docstring for what counts.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    tol = check_tolerance_m(tolerance_m)
    prefix = f"{source}: " if source else ""
    word, words = level, _PLURAL[level]
    pword = _PARENT_LEVEL.get(level, "parent")
    problems: list[Problem] = []

    n = len(children)
    if n == 0:
        return problems
    codes = _str_codes(children, "code", n)
    names = _str_codes(children, "name", n)
    pcodes = _str_codes(children, "parent_code", n)
    rows = _column(children, "row", n)

    def cid(i: int) -> str:
        return f"{codes[i]} {names[i]}".strip()

    def crow(i: int) -> int | None:
        return int(rows[i]) if rows[i] is not None else None

    geoms = measure.as_geometry_array(children.geometry)
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    usable = present & polygonal & shapely.is_valid(geoms)

    if parents is not None and len(parents):
        np_ = len(parents)
        p_codes = _str_codes(parents, "code", np_)
        p_names = _str_codes(parents, "name", np_)
        p_geoms = measure.as_geometry_array(parents.geometry)
        p_usable = ~shapely.is_missing(p_geoms) & ~shapely.is_empty(p_geoms) & shapely.is_valid(p_geoms)
    else:
        np_ = 0
        p_codes = p_names = p_geoms = np.empty(0, dtype=object)
        p_usable = np.empty(0, dtype=bool)
    has_parents = parents is not None

    def pid(k: int) -> str:
        return f"{p_codes[k]} {p_names[k]}".strip()

    problems.extend(find_spikes(geoms[usable], codes[usable], names[usable], rows=rows[usable],
                                level=level, prefix=prefix))

    everything = np.concatenate([geoms[usable], p_geoms[p_usable]])
    if len(everything) == 0:
        return problems
    epsg = measure.metric_crs_for(everything)
    # Overlays run on the coordinates as given, so that edges shared exactly in lon/lat stay
    # shared (projecting first would turn a long parent edge into a chord and its children's
    # extra vertices into a bent line: false slivers); areas and widths are then measured in
    # metres on the pieces (_pieces), and buffers use degrees that are at most the metres asked.
    cm = geoms
    pm = p_geoms
    # invalid children, repaired, still cover area for the gap check
    cover = cm.copy()
    broken = present & polygonal & ~usable
    if broken.any():
        cover[broken] = shapely.make_valid(cm[broken], method="structure", keep_collapsed=False)

    # ---------------------------------------------------------------- parents of children
    child_parent = np.full(n, -1, dtype=np.intp)
    if has_parents:
        lookup = pd.Series(np.arange(np_), index=p_codes)
        lookup = lookup[~lookup.index.duplicated()]
        found = pd.Series(pcodes).map(lookup)
        child_parent = found.fillna(-1).to_numpy(dtype=np.intp)
        for i in np.flatnonzero(child_parent < 0):
            reason = (f"has no {pword} code" if not pcodes[i]
                      else f"{pword} {pcodes[i]} does not exist among the {_PLURAL.get(pword, 'parents')}")
            problems.append(Problem("error", "unknown_parent", f"{prefix}{word} {cid(i)}: {reason}",
                                    codes=(codes[i],), row=crow(i)))

    # sibling groups: same parent code (all children together when there are no parents)
    if has_parents:
        group, _ = pd.factorize(pd.Series(pcodes), use_na_sentinel=False)
    else:
        group = np.zeros(n, dtype=np.intp)
    group = np.asarray(group, dtype=np.intp)
    n_groups = int(group.max()) + 1
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    coverage_ok = np.zeros(n_groups, dtype=bool)
    for g in range(n_groups):  # one vectorized GEOS call per sibling set
        members = order[bounds[g]:bounds[g + 1]]
        members = members[usable[members]]
        coverage_ok[g] = len(members) <= 1 or bool(shapely.coverage_is_valid(cm[members]))

    # ---------------------------------------------------------------- overlaps
    idx_usable = np.flatnonzero(usable)
    tree = shapely.STRtree(cm[idx_usable])
    left, right = tree.query(cm[idx_usable], predicate="intersects")
    a, b = idx_usable[left], idx_usable[right]
    sel = (a < b) & (group[a] == group[b]) & ~coverage_ok[group[a]]
    a, b = a[sel], b[sel]
    if len(a):
        interior = shapely.relate_pattern(cm[a], cm[b], "2********")
        a, b = a[interior], b[interior]
        inter = shapely.intersection(cm[a], cm[b])
        parts, owner, area = _pieces(inter, tol, epsg)
        pairs, totals, largest = _largest_per_owner(owner, area)
        lon, lat = _lonlat(shapely.point_on_surface(parts[largest]), epsg)
        for k, pair in enumerate(pairs):
            i, j = a[pair], b[pair]
            problems.append(Problem(
                "error", "overlap",
                f"{prefix}{words} {cid(i)} and {cid(j)} overlap by {totals[k]:.1f} m² "
                f"at {lon[k]:.6f} {lat[k]:.6f}",
                codes=(codes[i], codes[j]), row=crow(i), lon=float(lon[k]), lat=float(lat[k]),
            ))

    if not has_parents:
        _flat_gaps(problems, cover, usable | broken, codes, tol, epsg, prefix, words,
                   exact_coverage=bool(coverage_ok[0]) and not broken.any())
        return problems

    # ---------------------------------------------------------------- children outside parents
    p_ok = np.zeros(np_, dtype=bool)
    p_ok[:] = p_usable & shapely.is_valid(pm)
    for k in np.flatnonzero(~p_ok & np.isin(np.arange(np_), child_parent)):
        problems.append(Problem("warning", "invalid",
                                f"{prefix}{pword} {pid(k)}: invalid geometry; its {words} were not checked against it",
                                codes=(p_codes[k],)))
    checkable = usable & (child_parent >= 0)
    checkable[checkable] = p_ok[child_parent[checkable]]
    ci = np.flatnonzero(checkable)
    if len(ci):  # cheap filters first: covered by the parent, or by the parent grown by tol/2
        shapely.prepare(pm[p_ok])
        ci = ci[~shapely.covers(pm[child_parent[ci]], cm[ci])]
    if len(ci) and tol > 0:
        grown = np.full(np_, None, dtype=object)
        need = np.unique(child_parent[ci])
        grown[need] = shapely.buffer(pm[need], shapes.tol_degrees(tol / 2.0), quad_segs=2)
        shapely.prepare(grown[need])
        ci = ci[~shapely.covers(grown[child_parent[ci]], cm[ci])]
    if len(ci):
        outside = shapely.difference(cm[ci], pm[child_parent[ci]])
        parts, owner, area = _pieces(outside, tol, epsg)
        kids, totals, largest = _largest_per_owner(owner, area)
        pts = shapely.point_on_surface(parts[largest])
        lon, lat = _lonlat(pts, epsg)
        # where a child lies wholly outside its parent, say which parent it does lie in
        elsewhere: dict[int, int] = {}
        child_area = measure.areas_m2(cm[ci[kids]], epsg) if len(kids) else np.empty(0)
        whole = np.flatnonzero(totals >= 0.99 * child_area)
        if len(whole) and np_:
            ptree = shapely.STRtree(pm[p_ok])
            pk = np.flatnonzero(p_ok)
            inner = shapely.point_on_surface(cm[ci[kids[whole]]])
            qi, qp = ptree.query(inner, predicate="within")
            for q, t in zip(qi, qp):
                elsewhere.setdefault(int(whole[q]), int(pk[t]))
        for k, kid in enumerate(kids):
            i = ci[kid]
            par = child_parent[i]
            if k in elsewhere:
                what = f"lies outside its {pword} {pid(par)} ({totals[k]:.1f} m²; it lies in {pid(elsewhere[k])})"
            elif totals[k] >= 0.99 * child_area[k]:
                what = f"lies outside its {pword} {pid(par)} ({totals[k]:.1f} m²)"
            else:
                what = f"sticks out of its {pword} {pid(par)} by {totals[k]:.1f} m²"
            problems.append(Problem(
                "error", "outside_parent",
                f"{prefix}{word} {cid(i)} {what} at {lon[k]:.6f} {lat[k]:.6f}",
                codes=(codes[i], p_codes[par]), row=crow(i), lon=float(lon[k]), lat=float(lat[k]),
            ))

    # ---------------------------------------------------------------- gaps inside parents
    counted = (usable | broken) & (child_parent >= 0)
    with_children = np.zeros(np_, dtype=bool)
    with_children[np.unique(child_parent[counted])] = True
    childless = np.flatnonzero(~with_children & p_ok)
    gap_parents = np.flatnonzero(with_children & p_ok)
    if len(gap_parents):
        by_parent = pd.Series(np.flatnonzero(counted)).groupby(child_parent[counted]).agg(list)
        unions = np.empty(len(gap_parents), dtype=object)
        for k, par in enumerate(gap_parents):  # one vectorized union per parent
            members = np.asarray(by_parent[par], dtype=np.intp)
            if coverage_ok[group[members[0]]] and not broken[members].any():
                unions[k] = shapely.coverage_union_all(cm[members])
            else:
                unions[k] = shapely.union_all(cover[members])
        # cheap filters first: parents covered by their children's union, or by it grown by tol/2
        open_ = ~shapely.covers(unions, pm[gap_parents])
        if tol > 0 and open_.any():
            k = np.flatnonzero(open_)
            open_[k] = ~shapely.covers(shapely.buffer(unions[k], shapes.tol_degrees(tol / 2.0), quad_segs=2), pm[gap_parents[k]])
        if open_.any():
            gaps = shapely.difference(pm[gap_parents[open_]], unions[open_])
            _report_gaps(problems, gaps, gap_parents[open_], p_codes, pid, cover, usable | broken, codes,
                         tol, epsg, prefix, pword, words)
    if len(childless):
        listed = ", ".join(pid(k) for k in childless[:10]) + (" …" if len(childless) > 10 else "")
        problems.append(Problem(
            "warning", "gap",
            f"{prefix}{len(childless)} {_PLURAL.get(pword, 'parents')} have no {words} in this layer: {listed}",
            codes=tuple(p_codes[childless]),
        ))
    return problems


def _report_gaps(problems, gaps, gap_parents, p_codes, pid, cover, mask, codes, tol, epsg, prefix, pword, words):
    parts, owner, area = _pieces(gaps, tol, epsg)
    if not len(parts):
        return
    lon, lat = _lonlat(shapely.point_on_surface(parts), epsg)
    tree = shapely.STRtree(cover[mask])
    midx = np.flatnonzero(mask)
    qi, qt = tree.query(parts, predicate="dwithin", distance=max(2 * shapes.tol_degrees(tol), 1e-9))
    near = pd.Series(codes[midx[qt]]).groupby(qi).agg(list) if len(qi) else pd.Series(dtype=object)
    for k in np.argsort(-area, kind="stable"):
        par = gap_parents[owner[k]]
        nb = near.get(k, [])
        around = f" (next to {', '.join(nb[:6])}{' …' if len(nb) > 6 else ''})" if nb else ""
        problems.append(Problem(
            "error", "gap",
            f"{prefix}gap of {area[k]:.1f} m² in {pword} {pid(par)} not covered by any of its {words}"
            f"{around} at {lon[k]:.6f} {lat[k]:.6f}",
            codes=(p_codes[par],), lon=float(lon[k]), lat=float(lat[k]),
        ))


def _flat_gaps(problems, cover, mask, codes, tol, epsg, prefix, words, *, exact_coverage: bool):
    """Holes enclosed by the union of all children (a notch open to the outside is no gap)."""
    members = np.flatnonzero(mask)
    if len(members) < 2:
        return
    if exact_coverage:
        union = shapely.coverage_union_all(cover[members])
    else:
        union = shapely.union_all(cover[members])
    polys = shapely.get_parts(union)
    polys = polys[shapely.get_type_id(polys) == 3]
    n_holes = shapely.get_num_interior_rings(polys)
    total = int(n_holes.sum())
    if total == 0:
        return
    which = np.repeat(np.arange(len(polys)), n_holes)
    ring_no = np.arange(total) - np.repeat(np.cumsum(n_holes) - n_holes, n_holes)
    holes = shapely.polygons(shapely.get_interior_ring(polys[which], ring_no))
    parts, _, area = _pieces(holes, tol, epsg)
    if not len(parts):
        return
    lon, lat = _lonlat(shapely.point_on_surface(parts), epsg)
    ctree = shapely.STRtree(cover[members])
    qi, qt = ctree.query(parts, predicate="dwithin", distance=max(2 * shapes.tol_degrees(tol), 1e-9))
    near = pd.Series(codes[members[qt]]).groupby(qi).agg(list) if len(qi) else pd.Series(dtype=object)
    for k in np.argsort(-area, kind="stable"):
        nb = near.get(k, [])
        around = f" enclosed by {', '.join(nb[:6])}{' …' if len(nb) > 6 else ''}" if nb else ""
        problems.append(Problem(
            "error", "gap",
            f"{prefix}gap of {area[k]:.1f} m² not covered by any of the {words}{around} "
            f"at {lon[k]:.6f} {lat[k]:.6f}",
            codes=tuple(nb), lon=float(lon[k]), lat=float(lat[k]),
        ))


def find_spikes(geoms, codes, names=None, *, rows=None, level: str = "cell", prefix: str = "",
                width_m: float = SPIKE_WIDTH_M, reach_m: float = SPIKE_REACH_M) -> list[Problem]:
    """Warnings (kind ``spike``) for thin spurs of the rings of lon/lat polygons ``geoms``.

    A spur is a piece of the polygon outside its body (the opening by ``width_m / 2``) that
    reaches further than ``reach_m`` from the body: a rounded corner or a floating-point
    seam lies within centimetres of the body and is not one. Reported once per spur, with its
    length and mean width in metres and the location of its far end. Vectorized: a minimum
    clearance over all polygons picks the few that have any part narrower than ``width_m``; one
    buffer pair and one difference run over those.
    """
    geoms = measure.as_geometry_array(geoms)
    n = len(geoms)
    if n == 0:
        return []
    codes = np.asarray(codes, dtype=object)
    names = np.full(n, "", dtype=object) if names is None else np.asarray(names, dtype=object)
    rows = np.full(n, None, dtype=object) if rows is None else np.asarray(rows, dtype=object)
    epsg = measure.metric_crs_for(geoms)
    metric = measure.to_metric(geoms, epsg)
    half = width_m / 2.0
    # only a polygon with a vertex closer than the width to a segment it does not end can have
    # a part narrower than the width: the cheap filter (minimum clearance) before any buffer
    idx = np.flatnonzero(shapely.minimum_clearance(metric) < width_m)
    if not len(idx):
        return []
    body = np.full(n, None, dtype=object)
    body[idx] = shapely.buffer(shapely.buffer(metric[idx], -half, quad_segs=4), half, quad_segs=4)
    idx = idx[~shapely.is_empty(body[idx])]  # thinner than the width everywhere: a sliver, not a spur
    if not len(idx):
        return []
    rest = shapely.difference(metric[idx], body[idx])
    parts, owner = shapely.get_parts(rest, return_index=True)
    poly = shapely.get_type_id(parts) == 3
    parts, owner = parts[poly], idx[owner[poly]]
    parts_area = shapely.area(parts)
    keep = parts_area > 0
    parts, owner, parts_area = parts[keep], owner[keep], parts_area[keep]
    if not len(parts):
        return []
    grown = shapely.buffer(body[owner], reach_m, quad_segs=4)
    far = ~shapely.covers(grown, parts)
    parts, owner, parts_area = parts[far], owner[far], parts_area[far]
    if not len(parts):
        return []
    length = shapely.length(parts) / 2.0
    width = parts_area / np.maximum(length, 1e-9)
    # the far end: the vertex of the piece farthest from the body
    tips = []
    for p, o in zip(parts, owner):
        pts = shapely.points(shapely.get_coordinates(p))
        tips.append(pts[int(np.argmax(shapely.distance(pts, body[o])))])
    tip_ll = measure.to_wgs84(np.array(tips, dtype=object), epsg)
    x, y = shapely.get_x(tip_ll), shapely.get_y(tip_ll)
    out = []
    for k in np.argsort(-length, kind="stable"):
        i = owner[k]
        who = f"{codes[i]} {names[i] or ''}".strip()
        out.append(Problem(
            "warning", "spike",
            f"{prefix}{level} {who} has a spike (a thin spur of its boundary) {length[k]:.0f} m long and "
            f"{width[k]:.2f} m wide, ending at {x[k]:.6f} {y[k]:.6f}",
            codes=(str(codes[i]),), row=int(rows[i]) if rows[i] is not None else None,
            lon=float(x[k]), lat=float(y[k]),
            params={"level": level, "code": str(codes[i]), "name": str(names[i] or ""),
                    "length_m": round(float(length[k]), 1), "width_m": round(float(width[k]), 3)},
        ))
    return out
