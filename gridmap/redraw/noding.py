"""Re-noding: changed areas and their neighbours made an exact coverage again.

Owns: :func:`node_coverage`: the boundaries of the changed areas, their neighbours and the frame
(the union of what they covered before) are noded together and polygonized; every face goes to
the area covering most of it. A face thinner than the tolerance that nobody or several areas
claim goes to one of them (an unchanged neighbour first, else the longest shared border), so
hand-drawn slivers vanish; a wider one stays a gap or an overlap and the draft's check reports it.
Also :func:`reallocate`: households and population of changed areas re-allocated by area.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import shapely
import shapely.errors
import shapely.ops

from gridmap.geo import measure
from gridmap.geo.shapes import as_multi, fmt_at, metric_epsg, thin, where
from gridmap.redraw.impact import overlaps
from gridmap.redraw.problems import DraftProblem
from gridmap.redraw.state import AreaRec, DraftState


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


def same_shape(a, b) -> bool:
    """Identical vertices (ring starts and order aside)."""
    if a is None or b is None:
        return a is b
    return bool(shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), tolerance=0))


def reallocate(state: DraftState, level: str, epsg: int) -> None:
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
    pairs = overlaps(olds, news, epsg)
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
        if r.code in state.base and [c for c, _ in r.sources] == [r.code] and same_shape(r.geom, state.base[r.code].geom):
            continue
        r.households, r.population = hh[j], pop[j]
