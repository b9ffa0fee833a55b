"""Redrawing operations: each one turns a drawn line or polygon into a DRAFT change, never a write
to the boundaries themselves (publishing is :func:`gridmap.boundaries.drafts.publish_draft`).

Owns: reading drawn input (WKT, GeoJSON geometry/Feature/FeatureCollection, a file holding one),
refusing what cannot be meant (a self-intersecting polygon, a line that does not cross the cell,
cells that do not share an edge), snapping drawn vertices to the existing ones within the
tolerance (``shapely.snap``, then vertex-to-edge), re-noding every changed area together with its
neighbours so the result is an exact coverage again, re-allocating households and population by
area, allocating new codes (``GRIDMAP_CELL_CODE_FORMAT``, never a code that ever existed), and
the operations themselves:

* :func:`split_cell` — along a line that crosses the cell; the largest piece keeps the code;
* :func:`merge_cells` — cells of one community that share edges of positive length; the first
  named keeps its code, the others are retired;
* :func:`move_edge` — replace part of the edge shared by two cells by a drawn polyline between two
  points on that edge: the faces enclosed between the old edge and the new line change owner;
* :func:`reshape_cell` — a new outline for one cell: area it gains is taken from its siblings,
  each piece of area it gives up goes to the sibling sharing the longest border with the piece;
* :func:`create_cell` / :func:`retire_cell` — carve a new cell out of its siblings / give a cell's
  area to one sibling (the named one, else the one sharing the longest edge);
* :func:`transfer_area` — a drawn area goes from its communities to another community; its cells
  follow (a cell wholly inside moves as a new cell of the target community with a new code, the
  old one is retired; a cell cut by the area is split, its inner part becoming a new cell there);
  streets and districts follow when the communities are in different ones;
* :func:`create_community` / :func:`retire_community` — a transfer to a new community / of a whole
  community into a neighbour;
* :func:`replace_cells` — a community's cells from an uploaded file
  (:func:`gridmap.boundaries.io.read_boundary_file`) or from a balance proposal.

All geometry stays in EPSG:4326 (as stored): projecting to metres and back would move shared
vertices apart. Metres are used only to measure (areas, slivers, tolerances).

Re-noding (:func:`node_coverage`): the boundaries of the changed areas, their neighbours and the
frame (the union of what they covered before) are noded together and polygonized; every face goes
to the area covering most of it. A face thinner than the tolerance that nobody or several areas
claim goes to one of them (an unchanged neighbour first, else the longest shared border), so
hand-drawn slivers vanish; a wider one stays a gap or an overlap and the draft's check reports it
with its place and geometry.
"""
from __future__ import annotations

import copy
import json
import math
import os
from contextlib import contextmanager
from typing import Any, Iterable

import numpy as np
import shapely
import shapely.errors
import shapely.ops
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.boundaries.drafts import (DEFAULT_TOLERANCE_M, DRAFT_ROLES, AreaRec, BoundaryDraft, BoundaryDraftArea,
                                       ConflictError, DraftError, DraftPermissionError, DraftProblem, DraftState,
                                       _overlaps, as_multi, check_state, fmt_at, metric_epsg,
                                       require_may_edit, save_state, thin, tol_degrees, visible_draft, where)
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.geo import measure

DEFAULT_CODE_FORMAT = "{community}{seq:03d}"
#: community codes: residents' committees 001–199, village committees 200–399
COMMUNITY_SEQ = {"residents": (1, 199), "village": (200, 399)}

__all__ = ["RedrawError", "parse_geometry", "snap_drawn", "node_coverage", "split_cell", "merge_cells",
           "move_edge", "reshape_cell", "create_cell", "retire_cell", "transfer_area", "create_community",
           "retire_community", "replace_cells", "new_draft"]


class RedrawError(DraftError):
    """Drawn input or an operation that cannot be done; says why and where."""


# ============================================================================ drawn input
def parse_geometry(value: Any, what: str = "geometry"):
    """A shapely geometry from a shapely geometry, WKT, GeoJSON (geometry, Feature or
    FeatureCollection; a dict or text) or the path of a file holding one of those."""
    if isinstance(value, shapely.Geometry):
        return value
    if isinstance(value, dict):
        return _from_geojson(value, what)
    if not isinstance(value, (str, os.PathLike)):
        raise RedrawError(f"{what}: expected WKT, GeoJSON or a file, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise RedrawError(f"{what} is empty")
    if not text.startswith("{") and not text.upper().startswith(("POINT", "LINESTRING", "POLYGON", "MULTI",
                                                                   "GEOMETRYCOLLECTION")):
        if os.path.isfile(text):
            try:
                with open(text, encoding="utf-8-sig") as fh:
                    text = fh.read().strip()
            except OSError as e:
                raise RedrawError(f"{what}: cannot read {value}: {e}") from None
        else:
            raise RedrawError(f"{what}: {text[:60]!r} is neither WKT, GeoJSON nor an existing file")
    if text.startswith("{"):
        try:
            return _from_geojson(json.loads(text), what)
        except json.JSONDecodeError as e:
            raise RedrawError(f"{what}: not valid GeoJSON ({e})") from None
    try:
        return shapely.from_wkt(text)
    except Exception as e:  # noqa: BLE001 - GEOS parse errors
        raise RedrawError(f"{what}: not valid WKT ({e})") from None


def _from_geojson(obj: dict, what: str):
    t = obj.get("type")
    try:
        if t == "FeatureCollection":
            geoms = [shapely.geometry.shape(f["geometry"]) for f in obj.get("features", []) if f.get("geometry")]
            if not geoms:
                raise RedrawError(f"{what}: the FeatureCollection has no geometry")
            if len(geoms) == 1:
                return geoms[0]
            kinds = {g.geom_type.replace("Multi", "") for g in geoms}
            if kinds == {"LineString"}:
                return shapely.ops.linemerge(shapely.MultiLineString(
                    [p for g in geoms for p in shapely.get_parts(g)]))
            return shapely.GeometryCollection(geoms)
        if t == "Feature":
            if not obj.get("geometry"):
                raise RedrawError(f"{what}: the Feature has no geometry")
            return shapely.geometry.shape(obj["geometry"])
        return shapely.geometry.shape(obj)
    except RedrawError:
        raise
    except Exception as e:  # noqa: BLE001
        raise RedrawError(f"{what}: not a GeoJSON geometry ({e})") from None


def _check_lonlat(g, what: str) -> None:
    x0, y0, x1, y1 = g.bounds
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= 90 and -90 <= y1 <= 90):
        raise RedrawError(f"{what}: coordinates out of range ({x0:.3f} {y0:.3f} … {x1:.3f} {y1:.3f}); draw in "
                          f"WGS84 longitude/latitude")


def drawn_polygon(value: Any, what: str = "polygon"):
    """A drawn polygon, refused with the reason when it is not a valid (Multi)Polygon."""
    g = parse_geometry(value, what)
    if shapely.get_type_id(g) == 7:
        g = as_multi(g) or g
    if shapely.get_type_id(g) not in (3, 6) or g.is_empty:
        raise RedrawError(f"{what}: expected a polygon, got {g.geom_type}")
    _check_lonlat(g, what)
    if not g.is_valid:
        reason = shapely.is_valid_reason(g)
        import re

        m = re.search(r"\[(-?[\d.e+-]+)\s+(-?[\d.e+-]+)\]", reason)
        lon, lat = (float(m.group(1)), float(m.group(2))) if m else where(g)
        kind = reason.split("[")[0].strip()
        hint = " (its edges cross each other: draw the outline without crossing it)" if "elf" in kind else ""
        raise RedrawError(f"{what} is not a valid polygon: {kind} at {lon:.6f} {lat:.6f}{hint}",
                          [DraftProblem("error", "invalid_drawing", f"{what}: {kind}{hint}", (), lon, lat,
                                        shapely.Point(lon, lat))])
    return as_multi(g)


def drawn_line(value: Any, what: str = "line"):
    g = parse_geometry(value, what)
    if shapely.get_type_id(g) == 5:
        g = shapely.ops.linemerge(g)
    if shapely.get_type_id(g) != 1 or g.is_empty:
        raise RedrawError(f"{what}: expected one continuous line, got {g.geom_type}")
    _check_lonlat(g, what)
    if not g.is_simple:
        lon, lat = where(g)
        raise RedrawError(f"{what} crosses itself {fmt_at(lon, lat)}: draw it without loops",
                          [DraftProblem("error", "invalid_drawing", f"{what} crosses itself", (), lon, lat, g)])
    return g


# ============================================================================ snapping
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


def _extend(line, metres: float):
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


# ============================================================================ noding
def node_coverage(targets: list[AreaRec], frame, tolerance_m: float, *, fixed: Iterable[str] = ()) -> list[DraftProblem]:
    """Re-node ``targets`` (AreaRecs of one level) into an exact coverage, in place.

    ``frame``: the area they are meant to cover together (None: their union). ``fixed``: codes
    of areas that should keep their shape (unchanged neighbours): thin disputed faces go to them.
    Returns the problems left: gaps and overlaps wider than the tolerance (as geometry).
    """
    targets = [t for t in targets if t.geom is not None and not t.geom.is_empty]
    if not targets:
        return []
    fixed = set(fixed)
    geoms, frame = _pre_snap(np.array([t.geom for t in targets], dtype=object),
                             np.array([t.code in fixed for t in targets], dtype=bool), frame)
    lines = list(shapely.get_parts(shapely.boundary(geoms)))
    if frame is not None and not frame.is_empty:
        lines += list(shapely.get_parts(shapely.boundary(frame)))
    noded = shapely.union_all(np.array(lines, dtype=object))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if not len(faces):
        return []
    epsg = metric_epsg(geoms)
    fm = measure.to_metric(faces, epsg)
    tm = measure.to_metric(geoms, epsg)
    f_area = shapely.area(fm)
    # degenerate faces (two sides of one edge a few ulps apart) hold no ground: they are skipped
    deg_area = shapely.area(faces)
    ok = (f_area > 0) & (deg_area > 1e-16)
    # shares are ratios: computed in lon/lat, on repaired copies where an intended shape is invalid
    valid = shapely.is_valid(geoms)
    tg = geoms.copy()
    if not valid.all():
        tg[~valid] = shapely.make_valid(geoms[~valid])
    fa = shapely.area(faces)
    tree = shapely.STRtree(tg)
    fi, ti = tree.query(faces, predicate="intersects")
    share = np.zeros(len(fi))
    if len(fi):
        share = shapely.area(shapely.intersection(faces[fi], tg[ti])) / np.maximum(fa[fi], 1e-30)
    own = share > 0.5
    owners: dict[int, list[int]] = {}
    for f, t in zip(fi[own], ti[own]):
        owners.setdefault(int(f), []).append(int(t))
    if frame is not None and not frame.is_empty:
        frm = frame if frame.is_valid else shapely.make_valid(frame)
        shapely.prepare(frm)
        inside = shapely.area(shapely.intersection(faces, frm)) / np.maximum(fa, 1e-30) > 0.5
    else:
        inside = np.array([i in owners for i in range(len(faces))])
    slim = thin(fm, tolerance_m)
    neighbours: dict[int, list[int]] = {}
    for f, t in zip(fi, ti):
        neighbours.setdefault(int(f), []).append(int(t))

    def border(f: int, cands: list[int]) -> int:
        """The candidate sharing the longest border with face f; unchanged ones first."""
        best, best_key = cands[0], None
        fb = shapely.boundary(fm[f])
        for t in cands:
            length = shapely.length(shapely.intersection(fb, shapely.boundary(tm[t]))) if valid[t] else 0.0
            key = (targets[t].code in fixed, length, targets[t].code)
            if best_key is None or key > best_key:
                best, best_key = t, key
        return best

    assigned: dict[int, list[int]] = {i: [] for i in range(len(targets))}
    problems: list[DraftProblem] = []
    for f in range(len(faces)):
        if not ok[f]:
            continue
        own_f = owners.get(f, [])
        if not inside[f]:
            if own_f and not slim[f]:
                for t in own_f:  # sticks out of the frame: kept, the check reports it
                    assigned[t].append(f)
            continue
        if len(own_f) == 1:
            assigned[own_f[0]].append(f)
        elif not own_f:
            cands = [t for t in neighbours.get(f, [])]
            if slim[f] and cands:
                # a sliver gap goes to a changed area first (unchanged neighbours keep their shape)
                changed = [t for t in cands if targets[t].code not in fixed]
                t = border(f, changed or cands) if changed else border(f, cands)
                assigned[t].append(f)
            else:
                lon, lat = where(faces[f])
                near = sorted({targets[t].code for t in cands})
                problems.append(DraftProblem("error", "gap", f"gap of {f_area[f]:.1f} m² covered by no "
                                             f"{targets[0].level} (next to {', '.join(near[:6]) or 'nothing'}) "
                                             f"{fmt_at(lon, lat)}", tuple(near), lon, lat, faces[f]))
        else:
            if slim[f]:
                assigned[border(f, own_f)].append(f)
            else:
                for t in own_f:
                    assigned[t].append(f)
                lon, lat = where(faces[f])
                codes = tuple(sorted(targets[t].code for t in own_f))
                problems.append(DraftProblem("error", "overlap", f"{' and '.join(codes)} overlap by "
                                             f"{f_area[f]:.1f} m² {fmt_at(lon, lat)}", codes, lon, lat, faces[f]))
    _absorb_sliver_parts(targets, faces, epsg, assigned, neighbours, tolerance_m, fixed)
    for i, t in enumerate(targets):
        fs = assigned[i]
        if not fs:
            t.geom = None
            continue
        t.geom = as_multi(_union(faces[fs]) if len(fs) > 1 else faces[fs[0]])
    return problems


#: distance (degrees, ~0.1 mm) within which computed vertices are taken to be the same point
_EPS = 1e-9


def _pre_snap(geoms: np.ndarray, fixed: np.ndarray, frame) -> np.ndarray:
    """Make vertices computed by separate overlays agree before noding.

    A point where a line cut an edge is computed once per overlay and may lie a few ulps off the
    neighbour's edge; noded as is, it leaves a zero-area triangle between the two sides. Changed
    areas snap to the unchanged areas' vertices (and to each other's), then unchanged ones take the
    changed vertices lying on their edges (``shapely.snap`` inserts them), all within ~0.1 mm."""
    out = geoms.copy()

    def pts(arr):
        xy = shapely.get_coordinates(np.array([g for g in arr if g is not None], dtype=object))
        return shapely.multipoints(np.unique(xy, axis=0)) if len(xy) else None

    ref = pts(list(out[fixed]) + ([frame] if frame is not None else []))
    changed = np.flatnonzero(~fixed)
    if ref is not None and len(changed):
        snapped = shapely.snap(out[changed], ref, _EPS)
        ok = shapely.is_valid(snapped)
        out[changed[ok]] = snapped[ok]
    if len(changed) > 1:
        for i in changed:
            others = pts([out[j] for j in changed if j != i])
            g = shapely.snap(out[i], others, _EPS) if others is not None else out[i]
            if g.is_valid:
                out[i] = g
    ref = pts(out[changed]) if len(changed) else None
    idx = np.flatnonzero(fixed)
    if ref is not None and len(idx):
        snapped = shapely.snap(out[idx], ref, _EPS)
        ok = shapely.is_valid(snapped)
        out[idx[ok]] = snapped[ok]
    if ref is not None and frame is not None and not frame.is_empty:
        f2 = shapely.snap(frame, ref, _EPS)
        frame = f2 if f2.is_valid else frame
    return out, frame


def _union(faces):
    """The union of faces that share edges exactly (fast); the general union if GEOS disagrees."""
    try:
        return shapely.coverage_union_all(faces)
    except shapely.errors.GEOSException:
        try:
            return shapely.union_all(faces)
        except shapely.errors.GEOSException:
            return shapely.union_all(shapely.make_valid(faces))


def _absorb_sliver_parts(targets, faces, epsg, assigned, neighbours, tolerance_m, fixed) -> None:
    """A part of an area thinner than the tolerance (where a drawn line crossed an edge, say), when
    the area has a wider part too, goes to the neighbour sharing the longest border with it."""
    for i in range(len(targets)):
        fs = assigned[i]
        if len(fs) < 2:
            continue
        parts = shapely.get_parts(_union(faces[fs]))
        if len(parts) < 2:
            continue
        slim = thin(measure.to_metric(parts, epsg), tolerance_m)
        if not slim.any() or slim.all():
            continue
        # which part each face is in: the largest overlap, else the nearest (degenerate faces)
        fa = faces[fs]
        inter = np.array([[shapely.area(shapely.intersection(f, p)) for p in parts] for f in fa])
        near = np.array([[shapely.distance(shapely.centroid(f), p) for p in parts] for f in fa])
        part_of = np.where(inter.max(axis=1) > 0, inter.argmax(axis=1), near.argmin(axis=1))
        for k in np.flatnonzero(slim):
            part = parts[k]
            mine = [f for f, pk in zip(fs, part_of) if pk == k]
            cands = [t for t in {t for f in mine for t in neighbours.get(f, [])} if t != i and assigned[t]]
            if not mine or not cands:
                continue
            pb = shapely.boundary(part)

            def key(t):
                other = shapely.boundary(_union(faces[assigned[t]]))
                return (float(shapely.length(shapely.intersection(pb, other))), targets[t].code not in fixed,
                        targets[t].code)

            best = max(cands, key=key)
            for f in mine:
                assigned[i].remove(f)
                assigned[best].append(f)


def _same_shape(a, b) -> bool:
    """Identical vertices (ring starts and order aside)."""
    if a is None or b is None:
        return a is b
    return bool(shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), tolerance=0))


def _reallocate(state: DraftState, level: str, epsg: int) -> None:
    """Households and population of the touched areas of ``level``, re-allocated by area.

    Each stored area's figures are spread over the new areas in proportion to the overlap
    (largest-remainder rounding, so totals are kept). ``sources`` records where each new area's
    surface came from. Areas with figures given explicitly (a file) keep them.
    """
    touched = [r for r in state.touched().values() if r.level == level]
    olds = [state.base[r.code] for r in touched if r.code in state.base]
    news = [r for r in touched if r.active]
    if not news:
        return
    pairs = _overlaps(olds, news, epsg)
    n_area = measure.areas_m2(np.array([r.geom for r in news], dtype=object), epsg)
    by_old: dict[int, list[tuple[int, float]]] = {}
    for i, j, a in pairs:
        by_old.setdefault(i, []).append((j, a))
    hh = {j: None for j in range(len(news))}
    pop = {j: None for j in range(len(news))}
    srcs: dict[int, list] = {j: [] for j in range(len(news))}
    for i, lst in by_old.items():
        total = sum(a for _, a in lst)
        for j, a in lst:
            srcs[j].append((olds[i].code, min(1.0, a / n_area[j]) if n_area[j] > 0 else 0.0))
        for attr, out in (("households", hh), ("population", pop)):
            v = getattr(olds[i], attr)
            if v is None or total <= 0:
                continue
            raw = np.array([v * a / total for _, a in lst])
            base = np.floor(raw).astype(int)
            rest = int(v - base.sum())
            if rest > 0:
                base[np.argsort(-(raw - base), kind="stable")[:rest]] += 1
            for (j, _), x in zip(lst, base):
                out[j] = (out[j] or 0) + int(x)
    for j, r in enumerate(news):
        r.sources = sorted(((c, s) for c, s in srcs[j] if s > 1e-4), key=lambda cs: (-cs[1], cs[0]))
        if r.fixed_figures:
            continue
        if r.code in state.base and [c for c, _ in r.sources] == [r.code] and _same_shape(r.geom, state.base[r.code].geom):
            continue
        r.households, r.population = hh[j], pop[j]


# ============================================================================ editing session
class Editor:
    """One operation on a draft: the state, code allocation, and finishing (node, re-allocate,
    save, check, log)."""

    def __init__(self, session: Session, actor: Actor, draft: BoundaryDraft, state: DraftState,
                 tolerance_m: float, code_format: str, expected_version: int):
        self.session, self.actor, self.draft, self.state = session, actor, draft, state
        self.tol = float(tolerance_m)
        self.code_format = code_format or DEFAULT_CODE_FORMAT
        self.expected_version = expected_version
        self.problems: list[DraftProblem] = []
        self._allocated: set[str] = set()
        self._changed_levels: set[str] = set()
        self._frames: dict[str, list] = {}

    # -- area records -------------------------------------------------------------------
    def change(self, rec: AreaRec, geom, **attrs) -> AreaRec:
        """Record a new geometry (and attributes) for an existing or created area."""
        new = copy.copy(rec)
        new.geom = as_multi(geom)
        for k, v in attrs.items():
            setattr(new, k, v)
        self._note_frame(rec)
        if new.geom is None:
            self.state.retire(rec)
        else:
            self.state.put(new)
        self._changed_levels.add(rec.level)
        return new

    def retire(self, rec: AreaRec) -> None:
        self._note_frame(rec)
        self.state.retire(rec)
        self._changed_levels.add(rec.level)

    def create(self, level: str, parent: AreaRec, geom, *, name: str | None = None, kind: str | None = None,
               code: str | None = None, households=None, population=None, fixed_figures=False) -> AreaRec:
        code = code or self.new_code(parent, level, kind)
        if name is None:
            seq = code[len(parent.code):].lstrip("0") or "0"
            name = f"{parent.name}第{seq}网格" if level == "cell" else f"{parent.name}{seq}"
        rec = AreaRec(level, code, name, parent.code, kind or ("base" if level == "cell" else "residents"),
                      households, population, as_multi(geom), fixed_figures=fixed_figures)
        self.state.put(rec)
        self._changed_levels.add(level)
        return rec

    def _note_frame(self, rec: AreaRec) -> None:
        base = self.state.base_rec(rec.code) or rec
        if base.geom is not None:
            self._frames.setdefault(rec.level, []).append(base.geom)

    # -- codes ------------------------------------------------------------------------------
    def new_code(self, parent: AreaRec, level: str, kind: str | None = None) -> str:
        """The next code under ``parent`` that never existed (stored areas, retired ones, and
        codes any draft ever proposed)."""
        prefix = parent.code
        used = set(self.session.scalars(select(Area.code).where(Area.code.like(f"{prefix}%"))))
        used |= set(self.session.scalars(select(BoundaryDraftArea.code)
                                         .where(BoundaryDraftArea.code.like(f"{prefix}%"))))
        used |= {c for c in self.state.recs if c.startswith(prefix)} | self._allocated
        if level == "cell":
            seqs = [int(c[len(prefix):]) for c in used if c[len(prefix):].isdigit()]
            k = max(seqs, default=0) + 1
            while True:
                try:
                    code = self.code_format.format(community=prefix, seq=k)
                except (KeyError, IndexError, ValueError) as e:
                    raise RedrawError(f"GRIDMAP_CELL_CODE_FORMAT {self.code_format!r} is not usable: {e}; it "
                                      f"may use {{community}} and {{seq}}") from None
                if code not in used:
                    break
                k += 1
        else:
            lo, hi = COMMUNITY_SEQ.get(kind or "residents", (1, 199)) if level == "community" else (1, 999)
            seqs = [int(c[len(prefix):]) for c in used if c[len(prefix):].isdigit()
                    and lo <= int(c[len(prefix):]) <= hi and len(c) == len(prefix) + 3]
            k = max(seqs, default=lo - 1) + 1
            while f"{prefix}{k:03d}" in used:
                k += 1
            if k > hi:
                raise RedrawError(f"no free {level} code left under {prefix} in {lo:03d}–{hi:03d}")
            code = f"{prefix}{k:03d}"
        self._allocated.add(code)
        return code

    def check_code(self, code: str) -> None:
        row = self.session.execute(select(Area.level, Area.retired_at).where(Area.code == code)).first()
        if row is not None:
            what = f"retired {row.retired_at.date().isoformat()}" if row.retired_at else "in use"
            raise RedrawError(f"code {code} already belongs to a {row.level} ({what}); codes are never reused")
        if code in self.state.recs or code in self._allocated:
            raise RedrawError(f"code {code} is already used in this draft")
        self._allocated.add(code)

    # -- finishing ---------------------------------------------------------------------------
    def finish(self, op: str, args: dict) -> None:
        state = self.state
        for level in ("district", "street", "community", "cell"):
            if level not in self._changed_levels:
                continue
            touched = [r for r in state.touched().values() if r.level == level]
            active = [r for r in touched if r.active]
            region = [r.geom for r in active] + self._frames.get(level, [])
            if not region:
                continue
            zone = shapely.union_all(np.array(region, dtype=object))
            nbrs = [r for r in state.near(level, zone) if r.action == "current"]
            frame = shapely.union_all(np.array(self._frames.get(level, []) + [r.geom for r in nbrs], dtype=object))
            targets = [copy.copy(r) for r in active] + [copy.copy(r) for r in nbrs]
            self.problems.extend(node_coverage(targets, frame, self.tol, fixed=[r.code for r in nbrs]))
            for t in targets:
                orig = state.recs.get(t.code)
                base = state.base_rec(t.code)
                if base is not None and _same_shape(t.geom, base.geom) and orig is not None and \
                        orig.parent_code == base.parent_code and orig.name == base.name and \
                        orig.kind == base.kind and (not orig.fixed_figures or (
                            orig.households == base.households and orig.population == base.population)):
                    self._revert(t.code)
                    continue
                if orig is not None and _same_shape(t.geom, orig.geom):
                    continue
                if t.geom is None:
                    state.retire(orig)
                else:
                    state.put(t)
        for level in ("district", "street", "community", "cell"):
            if level in self._changed_levels:
                recs = [r.geom for r in state.touched().values() if r.level == level and r.geom is not None]
                if recs:
                    _reallocate(state, level, metric_epsg(recs))
        require_may_edit(self.session, self.actor, state)
        save_state(self.session, self.draft, state)
        problems = check_state(state, tolerance_m=self.tol)
        seen = {(p.kind, p.codes) for p in problems}
        problems += [p for p in self.problems if (p.kind, p.codes) not in seen]
        problems.sort(key=lambda p: 0 if p.severity == "error" else 1)
        self.problems = problems
        ops = json.loads(self.draft.operations or "[]")
        ops.append({"op": op, "args": args, "by": self.actor.name, "at": utcnow().isoformat()})
        values = {"operations": json.dumps(ops, ensure_ascii=False),
                  "problems": json.dumps([p.as_dict() for p in problems], ensure_ascii=False),
                  "scope_area_id": self.draft.scope_area_id, "updated_at": utcnow(),
                  "version": self.expected_version + 1}
        n = self.session.execute(update(BoundaryDraft).where(BoundaryDraft.id == self.draft.id,
                                                             BoundaryDraft.version == self.expected_version,
                                                             BoundaryDraft.status == "draft")
                                 .values(**values).execution_options(synchronize_session=False)).rowcount
        if n != 1:
            raise ConflictError(f"draft #{self.draft.id} was changed by someone else meanwhile; reload it and "
                                f"redo this operation", [{"draft": self.draft.id,
                                                          "expected_version": self.expected_version}])
        from sqlalchemy.orm.attributes import set_committed_value

        for k, v in values.items():
            set_committed_value(self.draft, k, v)

    def _revert(self, code: str) -> None:
        state = self.state
        base = state.base.pop(code, None)
        if base is None:
            return
        cur = state.recs.get(code)
        if cur is not None and cur.level == "cell" and cur.parent_code != base.parent_code:
            lst = state._cells_of.get(cur.parent_code, [])
            if code in lst:
                lst.remove(code)
        state.recs[code] = base
        if base.level == "cell":
            state._cells_of.setdefault(base.parent_code, [])
            if code not in state._cells_of[base.parent_code]:
                state._cells_of[base.parent_code].append(code)
        state._upper_tree.pop(base.level, None)


def new_draft(session: Session, actor: Actor, title: str) -> BoundaryDraft:
    if actor.role not in DRAFT_ROLES:
        raise DraftPermissionError(f"a {actor.role} may not draft boundary changes "
                                   f"(allowed: {', '.join(DRAFT_ROLES)})")
    now = utcnow()
    d = BoundaryDraft(title=(title or "boundary change")[:200], status="draft", created_by=actor.name,
                      created_by_user_id=actor.user_id, created_at=now, updated_at=now, version=1,
                      operations="[]", problems="[]")
    session.add(d)
    session.flush()
    return d


@contextmanager
def _editing(session: Session, actor: Actor, draft_id: int | None, op: str, args: dict, *, title: str | None,
             tolerance_m: float, code_format: str | None, expected_version: int | None = None):
    if actor.role not in DRAFT_ROLES:
        raise DraftPermissionError(f"a {actor.role} may not draft boundary changes "
                                   f"(allowed: {', '.join(DRAFT_ROLES)})")
    if draft_id is None:
        draft = new_draft(session, actor, title or op)
    else:
        draft = visible_draft(session, actor, draft_id)
        if draft.status != "draft":
            raise RedrawError(f"draft #{draft.id} is {draft.status}: only a draft can be edited")
    v = draft.version if expected_version is None else expected_version
    ed = Editor(session, actor, draft, DraftState(session, draft), tolerance_m, code_format or DEFAULT_CODE_FORMAT, v)
    yield ed
    ed.finish(op, args)


def _common(tolerance_m, code_format, draft_id, title, expected_version):
    return dict(title=title, tolerance_m=DEFAULT_TOLERANCE_M if tolerance_m is None else tolerance_m,
                code_format=code_format, expected_version=expected_version)


def _wkt(g) -> str:
    return shapely.to_wkt(g, rounding_precision=9, trim=True)


def _metric(geoms, epsg):
    return measure.to_metric(np.array(geoms, dtype=object), epsg)


def _shared_m(a, b, epsg) -> float:
    """Length in metres of the border two polygons share."""
    if a is None or b is None:
        return 0.0
    inter = shapely.intersection(shapely.boundary(a), shapely.boundary(b))
    if inter.is_empty:
        return 0.0
    return float(shapely.length(measure.to_metric(np.array([inter], dtype=object), epsg))[0])


def _outside(g, container, tol: float, epsg: int):
    """Pieces of ``g`` outside ``container`` wider than the tolerance (metric test), in lon/lat."""
    out = shapely.difference(g, container)
    if out.is_empty:
        return None
    parts = shapely.get_parts(as_multi(out) or shapely.MultiPolygon())
    if not len(parts):
        return None
    big = ~thin(measure.to_metric(parts, epsg), tol)
    return shapely.MultiPolygon(list(parts[big])) if big.any() else None


def _refuse_outside(piece, what: str, container_rec: AreaRec, epsg: int) -> None:
    lon, lat = where(piece)
    area = float(measure.areas_m2(np.array([piece], dtype=object), epsg)[0])
    raise RedrawError(f"{what} sticks out of {container_rec.level} {container_rec.code} {container_rec.name} by "
                      f"{area:.1f} m² {fmt_at(lon, lat)}",
                      [DraftProblem("error", "outside_parent", f"{what} sticks out of {container_rec.code}",
                                    (container_rec.code,), lon, lat, piece)])


# ============================================================================ operations
def split_cell(session: Session, actor: Actor, cell: str, line: Any, *, draft_id: int | None = None,
               names: list[str] | None = None, title: str | None = None, tolerance_m: float | None = None,
               code_format: str | None = None, expected_version: int | None = None) -> BoundaryDraft:
    """Split ``cell`` along ``line``, which must cross it (enter and leave). The largest piece
    keeps the code and the name; the others become new cells (new codes). Parts of a
    MultiPolygon the line does not cross stay with the largest piece."""
    line_g = drawn_line(line)
    with _editing(session, actor, draft_id, "split", {"cell": cell, "line": _wkt(line_g)},
                  **_common(tolerance_m, code_format, draft_id, title or f"split {cell}", expected_version)) as ed:
        rec = ed.state.get(cell, "cell")
        epsg = metric_epsg([rec.geom])
        nbrs = ed.state.near("cell", rec.geom, exclude=[rec.code])
        snapped = snap_drawn(line_g, [rec.geom] + [n.geom for n in nbrs], ed.tol)
        long = _extend(snapped, 2 * ed.tol + 0.01)
        pieces, kept = [], []
        for part in shapely.get_parts(rec.geom):
            got = list(shapely.get_parts(shapely.ops.split(part, long)))
            got = [g for g in got if shapely.get_type_id(g) == 3]
            if len(got) > 1:
                pieces.extend(got)
            else:
                kept.append(part)
        if pieces:
            slim = thin(_metric(pieces, epsg), ed.tol)
            if slim.any():  # slivers cut off where the line grazes the edge: back to their neighbour piece
                fat = [p for p, s in zip(pieces, slim) if not s]
                for p in [p for p, s in zip(pieces, slim) if s]:
                    if fat:
                        k = max(range(len(fat)), key=lambda i: _shared_m(p, fat[i], epsg))
                        fat[k] = shapely.union(fat[k], p)
                pieces = fat
        if len(pieces) < 2:
            xy = shapely.get_coordinates(line_g)
            a, b = xy[0], xy[-1]
            inside = [f"{x:.6f} {y:.6f}" for x, y in (a, b) if rec.geom.contains(shapely.Point(x, y))]
            why = (f"; it ends inside the cell at {', '.join(inside)}" if inside
                   else "; it must enter and leave the cell")
            raise RedrawError(f"the line does not cross cell {rec.code} {rec.name}{why} (line from {a[0]:.6f} "
                              f"{a[1]:.6f} to {b[0]:.6f} {b[1]:.6f})",
                              [DraftProblem("error", "no_crossing", f"line does not cross {rec.code}", (rec.code,),
                                            float(a[0]), float(a[1]), line_g)])
        areas = shapely.area(_metric(pieces, epsg))
        order = np.argsort(-areas, kind="stable")
        first = shapely.union_all([pieces[order[0]]] + kept) if kept else pieces[order[0]]
        ed.change(rec, first)
        comm = ed.state.get(rec.parent_code, "community")
        for n, k in enumerate(order[1:]):
            name = names[n + 1] if names and len(names) > n + 1 else None
            ed.create("cell", comm, pieces[k], name=name, kind=rec.kind)
        if names:
            ed.state.recs[rec.code].name = names[0]
    return ed.draft


def merge_cells(session: Session, actor: Actor, cells: list[str], *, draft_id: int | None = None,
                name: str | None = None, title: str | None = None, tolerance_m: float | None = None,
                code_format: str | None = None, expected_version: int | None = None) -> BoundaryDraft:
    """Merge cells of one community that share edges of positive length (a corner is not
    enough). The first cell keeps its code; the others are retired."""
    cells = [str(c).strip() for c in cells]
    if len(cells) < 2 or len(set(cells)) != len(cells):
        raise RedrawError("merge needs at least two different cells")
    with _editing(session, actor, draft_id, "merge", {"cells": cells},
                  **_common(tolerance_m, code_format, draft_id, title or f"merge {' '.join(cells)}",
                            expected_version)) as ed:
        recs = [ed.state.get(c, "cell") for c in cells]
        comms = {r.parent_code for r in recs}
        if len(comms) > 1:
            listing = ", ".join(f"{r.code} in {r.parent_code}" for r in recs)
            raise RedrawError(f"cells of different communities cannot be merged ({listing}): transfer the area "
                              f"to one community first")
        epsg = metric_epsg([r.geom for r in recs])
        # connected through shared edges longer than the tolerance
        linked = {0}
        frontier = [0]
        while frontier:
            i = frontier.pop()
            for j in range(len(recs)):
                if j not in linked and _shared_m(recs[i].geom, recs[j].geom, epsg) > ed.tol:
                    linked.add(j)
                    frontier.append(j)
        if len(linked) < len(recs):
            apart = [recs[j] for j in range(len(recs)) if j not in linked]
            lon, lat = where(apart[0].geom)
            corner = any(recs[i].geom.touches(a.geom) for i in linked for a in apart)
            how = "only touch at a corner" if corner else "do not touch"
            raise RedrawError(
                f"cells {', '.join(a.code for a in apart)} {how} {', '.join(recs[i].code for i in sorted(linked))}: "
                f"merged cells must share an edge of positive length ({apart[0].code} {fmt_at(lon, lat)})",
                [DraftProblem("error", "not_adjacent", f"{a.code} shares no edge with the others", (a.code,),
                              *where(a.geom), a.geom) for a in apart])
        geoms = np.array([r.geom for r in recs], dtype=object)
        merged = (shapely.coverage_union_all(geoms) if shapely.coverage_is_valid(geoms)
                  else shapely.union_all(geoms))
        ed.change(recs[0], merged, **({"name": name} if name else {}))
        for r in recs[1:]:
            ed.retire(r)
    return ed.draft


def _shared_edge(a, b):
    e = shapely.line_merge(shapely.intersection(shapely.boundary(a), shapely.boundary(b)))
    parts = [p for p in shapely.get_parts(e) if shapely.get_type_id(p) in (1, 2)]
    return parts


def move_edge(session: Session, actor: Actor, cell_a: str, cell_b: str, line: Any, *, draft_id: int | None = None,
              title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
              expected_version: int | None = None) -> BoundaryDraft:
    """Replace part of the edge shared by ``cell_a`` and ``cell_b`` by ``line``, drawn from one
    point on that edge to another (ends within the tolerance are snapped onto it) and staying
    inside the two cells. The faces enclosed between the old edge and the line change owner:
    both neighbours change together and nothing else moves."""
    line_g = drawn_line(line)
    with _editing(session, actor, draft_id, "move_edge", {"cells": [cell_a, cell_b], "line": _wkt(line_g)},
                  **_common(tolerance_m, code_format, draft_id, title or f"move edge {cell_a}/{cell_b}",
                            expected_version)) as ed:
        a, b = ed.state.get(cell_a, "cell"), ed.state.get(cell_b, "cell")
        epsg = metric_epsg([a.geom, b.geom])
        edges = _shared_edge(a.geom, b.geom)
        if not edges or _shared_m(a.geom, b.geom, epsg) <= ed.tol:
            raise RedrawError(f"cells {a.code} and {b.code} share no edge: pick two neighbours")
        xy = shapely.get_coordinates(line_g)
        p, q = shapely.Point(xy[0]), shapely.Point(xy[-1])
        tol_deg = tol_degrees(ed.tol) / max(math.cos(math.radians(p.y)), 0.2)
        edge = min(edges, key=lambda e: e.distance(p) + e.distance(q))
        for end, name in ((p, "start"), (q, "end")):
            if edge.distance(end) > tol_deg:
                raise RedrawError(f"the line's {name} ({end.x:.6f} {end.y:.6f}) is not on the edge between {a.code} "
                                  f"and {b.code}: start and end the new edge on the old one",
                                  [DraftProblem("error", "off_edge", f"{name} not on the shared edge",
                                                (a.code, b.code), end.x, end.y, edge)])
        dp, dq = edge.project(p), edge.project(q)
        if abs(dp - dq) <= tol_deg:
            raise RedrawError("the line starts and ends at the same point of the edge: nothing would change")
        lo_, hi_ = sorted((dp, dq))
        old_part = shapely.ops.substring(edge, lo_, hi_)
        ends = shapely.get_coordinates(old_part)
        mid = shapely.get_coordinates(snap_drawn(line_g, [a.geom, b.geom], ed.tol))[1:-1]
        start, end = (ends[0], ends[-1]) if dp <= dq else (ends[-1], ends[0])
        new_line = shapely.LineString(np.vstack([start, mid, end]) if len(mid) else np.vstack([start, end]))
        union = shapely.union(a.geom, b.geom)
        stray = shapely.difference(new_line, union)
        if not stray.is_empty and float(shapely.length(_metric([stray], epsg))[0]) > ed.tol:
            lon, lat = where(stray)
            raise RedrawError(f"the new edge leaves cells {a.code} and {b.code} {fmt_at(lon, lat)}: keep it inside "
                              f"the two cells (use reshape or transfer for more)",
                              [DraftProblem("error", "outside", "new edge outside the two cells", (a.code, b.code),
                                            lon, lat, stray)])
        loops = as_multi(shapely.polygonize(shapely.get_parts(shapely.union_all([old_part, new_line]))))
        if loops is None:
            raise RedrawError("the new edge encloses no area with the old one: nothing would change")
        to_b = shapely.intersection(a.geom, loops)
        to_a = shapely.intersection(b.geom, loops)
        ed.change(a, shapely.union(shapely.difference(a.geom, loops), to_a))
        ed.change(b, shapely.union(shapely.difference(b.geom, loops), to_b))
    return ed.draft


def _give_away(ed: Editor, lost, siblings: list[AreaRec], epsg: int) -> None:
    """Each piece of ``lost`` goes to the sibling sharing the longest border with it."""
    if lost is None or lost.is_empty:
        return
    for piece in shapely.get_parts(as_multi(lost) or shapely.MultiPolygon()):
        if thin(_metric([piece], epsg), ed.tol)[0]:
            cands = siblings
        else:
            cands = [s for s in siblings if _shared_m(piece, ed.state.recs[s.code].geom, epsg) > ed.tol]
        if not cands:
            continue  # stays a gap: the check reports it with its place
        best = max(cands, key=lambda s: (_shared_m(piece, ed.state.recs[s.code].geom, epsg), s.code))
        cur = ed.state.recs[best.code]
        ed.change(cur, shapely.union(cur.geom, piece))


def reshape_cell(session: Session, actor: Actor, cell: str, polygon: Any, *, draft_id: int | None = None,
                 title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
                 expected_version: int | None = None) -> BoundaryDraft:
    """Give ``cell`` a new outline (within its community). Its siblings change with it: area the
    cell gains is taken from them; each piece it gives up goes to the sibling sharing the longest
    border with that piece. A sibling left with nothing is retired."""
    poly = drawn_polygon(polygon)
    with _editing(session, actor, draft_id, "reshape", {"cell": cell, "polygon": _wkt(poly)},
                  **_common(tolerance_m, code_format, draft_id, title or f"reshape {cell}", expected_version)) as ed:
        rec = ed.state.get(cell, "cell")
        comm = ed.state.get(rec.parent_code, "community")
        epsg = metric_epsg([comm.geom])
        sibs = [s for s in ed.state.children(comm.code) if s.code != rec.code]
        nbrs = ed.state.near("cell", poly, exclude=[rec.code])
        poly = snap_drawn(poly, [rec.geom, comm.geom] + [n.geom for n in nbrs], ed.tol)
        out = _outside(poly, comm.geom, ed.tol, epsg)
        if out is not None:
            _refuse_outside(out, f"the new outline of {rec.code}", comm, epsg)
        new = as_multi(shapely.intersection(poly, comm.geom))
        if new is None:
            raise RedrawError(f"the new outline of {rec.code} is empty inside community {comm.code}")
        lost = shapely.difference(rec.geom, new)
        for s in sibs:
            cur = ed.state.recs[s.code]
            if cur.geom.intersects(new):
                ed.change(cur, shapely.difference(cur.geom, new))
        ed.change(rec, new)
        _give_away(ed, lost, [s for s in sibs if ed.state.recs.get(s.code) is not None
                              and ed.state.recs[s.code].active], epsg)
    return ed.draft


def create_cell(session: Session, actor: Actor, community: str, polygon: Any, *, name: str | None = None,
                code: str | None = None, draft_id: int | None = None, title: str | None = None,
                tolerance_m: float | None = None, code_format: str | None = None,
                expected_version: int | None = None) -> BoundaryDraft:
    """A new cell carved out of its community's cells (they lose what it takes; a cell left with
    nothing is retired). The polygon must lie inside the community (within the tolerance)."""
    poly = drawn_polygon(polygon)
    with _editing(session, actor, draft_id, "create_cell", {"community": community, "polygon": _wkt(poly)},
                  **_common(tolerance_m, code_format, draft_id, title or f"new cell in {community}",
                            expected_version)) as ed:
        comm = ed.state.get(community, "community")
        epsg = metric_epsg([comm.geom])
        nbrs = ed.state.near("cell", poly)
        poly = snap_drawn(poly, [comm.geom] + [n.geom for n in nbrs], ed.tol)
        out = _outside(poly, comm.geom, ed.tol, epsg)
        if out is not None:
            _refuse_outside(out, "the new cell", comm, epsg)
        new = as_multi(shapely.intersection(poly, comm.geom))
        if new is None or thin(_metric([new], epsg), ed.tol)[0]:
            raise RedrawError(f"the new cell is empty or thinner than {ed.tol:g} m inside community {comm.code}")
        for s in ed.state.children(comm.code):
            if s.geom.intersects(new):
                rest = as_multi(shapely.difference(s.geom, new))
                if rest is None or thin(_metric([rest], epsg), ed.tol).all():
                    ed.retire(s)
                else:
                    ed.change(s, rest)
        if code:
            ed.check_code(code)
        ed.create("cell", comm, new, name=name, code=code)
    return ed.draft


def retire_cell(session: Session, actor: Actor, cell: str, *, into: str | None = None, draft_id: int | None = None,
                title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
                expected_version: int | None = None) -> BoundaryDraft:
    """Retire ``cell``: its area goes to ``into`` (a sibling sharing an edge with it), else to
    the sibling sharing the longest edge. Its code is never used again."""
    with _editing(session, actor, draft_id, "retire_cell", {"cell": cell, "into": into},
                  **_common(tolerance_m, code_format, draft_id, title or f"retire {cell}", expected_version)) as ed:
        rec = ed.state.get(cell, "cell")
        epsg = metric_epsg([rec.geom])
        sibs = [s for s in ed.state.children(rec.parent_code) if s.code != rec.code]
        if into:
            target = ed.state.get(into, "cell")
            if target.parent_code != rec.parent_code:
                raise RedrawError(f"{into} is in community {target.parent_code}, {cell} in {rec.parent_code}: "
                                  f"its area must go to a cell of the same community")
            if _shared_m(rec.geom, target.geom, epsg) <= ed.tol:
                raise RedrawError(f"cells {cell} and {into} share no edge")
        else:
            cands = [(s, _shared_m(rec.geom, s.geom, epsg)) for s in sibs]
            cands = [c for c in cands if c[1] > ed.tol]
            if not cands:
                raise RedrawError(f"cell {cell} shares no edge with another cell of community {rec.parent_code}: "
                                  f"retire the community or transfer the area instead")
            target = max(cands, key=lambda c: (c[1], c[0].code))[0]
        geoms = np.array([target.geom, rec.geom], dtype=object)
        merged = (shapely.coverage_union_all(geoms) if shapely.coverage_is_valid(geoms)
                  else shapely.union_all(geoms))
        ed.change(target, merged)
        ed.retire(rec)
    return ed.draft


def _move_region(ed: Editor, region, target: AreaRec, *, retire_empty: bool = True) -> int:
    """Move ``region`` from the communities it covers to community ``target``; cells follow.
    Returns how many communities gave area."""
    state = ed.state
    epsg = metric_epsg([region, target.geom] if target.geom is not None else [region])
    givers = 0
    gained = []
    for src in state.near("community", region, exclude=[target.code]):
        src = state.recs[src.code]
        piece = as_multi(shapely.intersection(src.geom, region))
        if piece is None or thin(_metric([piece], epsg), ed.tol).all():
            continue
        # cells decide what exactly moves
        moved = []
        for c in state.children(src.code):
            inside = as_multi(shapely.intersection(c.geom, piece))
            if inside is None or thin(_metric([inside], epsg), ed.tol).all():
                continue
            outside = as_multi(shapely.difference(c.geom, piece))
            if outside is None or thin(_metric([outside], epsg), ed.tol).all():
                moved.append(c.geom)
                ed.retire(c)
                gained.append(("whole", c, c.geom))
            else:
                moved.append(inside)
                ed.change(c, outside)
                gained.append(("part", c, inside))
        eff = as_multi(shapely.union_all(moved)) if moved else piece
        if eff is None:
            continue
        givers += 1
        rest = as_multi(shapely.difference(src.geom, eff))
        if rest is None or thin(_metric([rest], epsg), ed.tol).all():
            if not retire_empty:
                raise RedrawError(f"the area takes all of community {src.code} {src.name}: use retire-community")
            ed.retire(src)
        else:
            ed.change(src, rest)
        # streets and districts follow when they differ
        s_anc = {a.level: a for a in state.ancestors(src)}
        t_anc = {a.level: a for a in state.ancestors(target)}
        for lvl in ("street", "district"):
            sa, ta = s_anc.get(lvl), t_anc.get(lvl)
            if sa is None or ta is None or sa.code == ta.code:
                continue
            sa, ta = state.recs[sa.code], state.recs[ta.code]
            rest = as_multi(shapely.difference(sa.geom, eff))
            if rest is None or thin(_metric([rest], epsg), ed.tol).all():
                ed.retire(sa)
            else:
                ed.change(sa, rest)
            ed.change(ta, shapely.union(ta.geom, eff))
        cur = state.recs.get(target.code, target)
        target = ed.change(cur, shapely.union(cur.geom, eff) if cur.geom is not None else eff)
    # the cells that follow: new cells of the target community (codes carry the community)
    for how, c, g in gained:
        ed.create("cell", state.recs[target.code], g, kind=c.kind,
                  name=c.name if how == "whole" and c.name else None)
    return givers


def transfer_area(session: Session, actor: Actor, polygon: Any, to_community: str, *, draft_id: int | None = None,
                  title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
                  expected_version: int | None = None) -> BoundaryDraft:
    """Move the drawn area from the communities it covers to ``to_community``. Its cells follow:
    a cell wholly inside becomes a new cell of the target (new code; the old one is retired, so
    its history stays exact), a cell cut by the area keeps the rest and the part inside becomes
    a new cell of the target. Streets and districts follow when they differ."""
    poly = drawn_polygon(polygon)
    with _editing(session, actor, draft_id, "transfer", {"to": to_community, "polygon": _wkt(poly)},
                  **_common(tolerance_m, code_format, draft_id, title or f"transfer to {to_community}",
                            expected_version)) as ed:
        target = ed.state.get(to_community, "community")
        nbrs = ed.state.near("community", poly)
        refs = [n.geom for n in nbrs] + [c.geom for c in ed.state.near("cell", poly)]
        region = snap_drawn(poly, refs, ed.tol)
        if not _move_region(ed, region, target, retire_empty=False):
            raise RedrawError(f"the area takes nothing from any other community: draw it over the area that "
                              f"should go to {to_community}")
    return ed.draft


def create_community(session: Session, actor: Actor, street: str, name: str, polygon: Any, *,
                     code: str | None = None, kind: str = "residents", draft_id: int | None = None,
                     title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
                     expected_version: int | None = None) -> BoundaryDraft:
    """A new community of ``street`` made of the drawn area (taken from the street's communities;
    their cells inside follow as in :func:`transfer_area`). Code: given, else the street's next
    free one (001–199 residents, 200–399 village)."""
    if kind not in COMMUNITY_SEQ:
        raise RedrawError(f"a community's kind is residents or village, not {kind!r}")
    if not (name or "").strip():
        raise RedrawError("a new community needs a name")
    poly = drawn_polygon(polygon)
    with _editing(session, actor, draft_id, "create_community",
                  {"street": street, "name": name, "code": code, "polygon": _wkt(poly)},
                  **_common(tolerance_m, code_format, draft_id, title or f"new community {name}",
                            expected_version)) as ed:
        st = ed.state.get(street, "street")
        epsg = metric_epsg([st.geom])
        refs = [st.geom] + [c.geom for c in ed.state.children(st.code)] + [
            c.geom for c in ed.state.near("cell", poly)]
        region = snap_drawn(poly, refs, ed.tol)
        out = _outside(region, st.geom, ed.tol, epsg)
        if out is not None:
            _refuse_outside(out, f"the new community {name}", st, epsg)
        region = as_multi(shapely.intersection(region, st.geom))
        if code:
            ed.check_code(code)
        new = AreaRec("community", code or ed.new_code(st, "community", kind), name.strip(), st.code, kind,
                      None, None, None)
        ed.state.recs[new.code] = new  # placeholder, given its geometry by the move
        new.action = "create"
        if not _move_region(ed, region, new, retire_empty=True):
            raise RedrawError(f"the new community takes no area from {street}'s communities")
    return ed.draft


def retire_community(session: Session, actor: Actor, community: str, into: str, *, draft_id: int | None = None,
                     title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
                     expected_version: int | None = None) -> BoundaryDraft:
    """Retire ``community``: all its area goes to the neighbouring community ``into``; its cells
    become new cells of ``into`` (streets and districts follow when they differ)."""
    with _editing(session, actor, draft_id, "retire_community", {"community": community, "into": into},
                  **_common(tolerance_m, code_format, draft_id, title or f"retire {community}",
                            expected_version)) as ed:
        src = ed.state.get(community, "community")
        tgt = ed.state.get(into, "community")
        epsg = metric_epsg([src.geom, tgt.geom])
        if _shared_m(src.geom, tgt.geom, epsg) <= ed.tol:
            raise RedrawError(f"communities {community} and {into} share no edge: its area must go to a neighbour")
        _move_region(ed, src.geom, tgt, retire_empty=True)
        if ed.state.recs.get(community) is not None and ed.state.recs[community].active:
            ed.retire(ed.state.recs[community])
    return ed.draft


def replace_cells(session: Session, actor: Actor, community: str, source: Any, *, draft_id: int | None = None,
                  match_by_overlap: bool = False, title: str | None = None, tolerance_m: float | None = None,
                  code_format: str | None = None, expected_version: int | None = None, crs: str | None = None,
                  code_field: str | None = None, name_field: str | None = None) -> BoundaryDraft:
    """Replace all cells of ``community`` by the features of ``source``: a boundary file (read with
    :func:`gridmap.boundaries.io.read_boundary_file`), a BoundaryLayer, or a list of dicts
    (code, name, geometry, households, population).

    A feature whose code is a cell of this community changes that cell (identity kept); a
    feature with a full cell code of this community that never existed creates that cell; a
    feature without a code, or with a placeholder (1, 2, 3 …: the file reader wants a number),
    gets a new one (or, with ``match_by_overlap``, the code of the old cell
    it overlaps most, each at most once); a code of any other area, ever, is refused. Old cells
    not in the source are retired. Figures given in the file are kept; missing ones are
    re-allocated by area.
    """
    feats = _features(source, crs=crs, code_field=code_field, name_field=name_field)
    with _editing(session, actor, draft_id, "replace_cells", {"community": community, "features": len(feats)},
                  **_common(tolerance_m, code_format, draft_id, title or f"replace cells of {community}",
                            expected_version)) as ed:
        comm = ed.state.get(community, "community")
        epsg = metric_epsg([comm.geom])
        olds = {c.code: c for c in ed.state.children(comm.code)}
        outside_cells = [c for c in ed.state.near("cell", comm.geom) if c.parent_code != comm.code]
        refs = [comm.geom] + [c.geom for c in outside_cells] + [c.geom for c in olds.values()]
        geoms = []
        for k, f in enumerate(feats):
            g = f["geometry"]
            if g is None or shapely.get_type_id(g) not in (3, 6) or not g.is_valid:
                reason = shapely.is_valid_reason(g) if g is not None else "no geometry"
                lon, lat = where(g) if g is not None else (None, None)
                raise RedrawError(f"feature {k + 1} ({f.get('code') or 'no code'}): not a valid polygon ({reason})",
                                  [DraftProblem("error", "invalid_drawing", reason, (f.get("code") or "",), lon, lat,
                                                g)])
            geoms.append(snap_drawn(as_multi(g), refs, ed.tol))
        # identities
        codes: list[str | None] = []
        full_len = len(ed.code_format.format(community=comm.code, seq=1))
        for f in feats:
            c = (str(f.get("code")).strip() if f.get("code") not in (None, "") else None)
            if c is not None and c not in olds:
                if c.startswith(comm.code) and len(c) == full_len:
                    ed.check_code(c)  # an explicit new code: must never have existed
                else:
                    c = None  # a placeholder (1, 2, 3 …): gridmap numbers the new cell
            codes.append(c)
        if len([c for c in codes if c]) != len({c for c in codes if c}):
            raise RedrawError("the source names the same cell code twice")
        if match_by_overlap:
            free_old = [o for o in olds.values() if o.code not in codes]
            if free_old:
                pairs = _overlaps(free_old, [AreaRec("cell", str(k), "", None, None, None, None, g)
                                            for k, g in enumerate(geoms)], epsg)
                taken_old, taken_new = set(), set()
                for i, j, a in sorted(pairs, key=lambda p: -p[2]):
                    if codes[j] is None and i not in taken_old and j not in taken_new:
                        codes[j] = free_old[i].code
                        taken_old.add(i)
                        taken_new.add(j)
        keep = {c for c in codes if c in olds}
        for code, o in olds.items():
            if code not in keep:
                ed.retire(o)
        for f, g, c in zip(feats, geoms, codes):
            fixed = f.get("households") is not None or f.get("population") is not None
            attrs = {}
            if f.get("name"):
                attrs["name"] = str(f["name"])
            if fixed:
                attrs.update(households=f.get("households"), population=f.get("population"), fixed_figures=True)
            if c in olds:
                ed.change(ed.state.recs[c], g, **attrs)
            else:
                ed.create("cell", comm, g, name=attrs.get("name"), code=c, kind=f.get("kind") or "base",
                          households=attrs.get("households"), population=attrs.get("population"),
                          fixed_figures=fixed)
        # the community is the frame: its old cells' outline
        ed._frames.setdefault("cell", []).append(comm.geom)
    return ed.draft


def _features(source: Any, *, crs=None, code_field=None, name_field=None) -> list[dict]:
    from gridmap.boundaries.io import BoundaryFileError, BoundaryLayer, read_boundary_file

    if isinstance(source, (str, os.PathLike)):
        try:
            source = read_boundary_file(str(source), "cell", crs=crs, code_field=code_field, name_field=name_field)
        except BoundaryFileError as e:
            raise RedrawError(str(e)) from None
        except Exception as e:  # noqa: BLE001 - coordinate system errors and the like
            raise RedrawError(f"{source}: {e}") from None
    if isinstance(source, BoundaryLayer):
        errs = source.errors
        if errs:
            raise RedrawError(f"{source.path}: {len(errs)} errors, first: {errs[0].message}",
                              [DraftProblem("error", p.kind, p.message, tuple(p.codes), p.lon, p.lat)
                               for p in errs])
        out = []
        for f in source.features.itertuples(index=False):
            out.append({"code": f.code if isinstance(f.code, str) and f.code.strip() else None,
                        "name": f.name if isinstance(f.name, str) and f.name.strip() else None,
                        "kind": f.kind if isinstance(f.kind, str) and f.kind else None,
                        "households": None if _isna(f.households) else int(f.households),
                        "population": None if _isna(f.population) else int(f.population),
                        "geometry": f.geometry})
        return out
    out = []
    for f in source:
        g = f.get("geometry")
        out.append({**f, "geometry": parse_geometry(g) if g is not None and not isinstance(g, shapely.Geometry) else g})
    if not out:
        raise RedrawError("the source holds no cells")
    return out


def _isna(v) -> bool:
    try:
        import pandas as pd

        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False
