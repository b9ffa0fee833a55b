"""The guarantees checked on the state a draft would produce.

Owns: :func:`check_state`: every touched area a valid (Multi)Polygon; cells tile their community,
communities their street, streets their district (coverage checks of the touched parents only);
codes unique and never reused; every active cell with a responsible worker (or listed); cell size
against the household band as a warning. Problems carry codes, a place and a geometry.
"""
from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import shapely
import shapely.errors
import shapely.ops
from sqlalchemy import select

from gridmap.boundaries.checks import check_layer
from gridmap.boundaries.models import PARENT_LEVEL, Area, AreaGeometry
from gridmap.geo import measure
from gridmap.geo.shapes import fmt_at, metric_epsg, thin, tol_degrees, where
from gridmap.redraw.impact import responsible_cells
from gridmap.redraw.models import DEFAULT_TARGET_HOUSEHOLDS, DEFAULT_TOLERANCE_M
from gridmap.redraw.problems import DraftProblem
from gridmap.redraw.state import AreaRec, DraftState, chunks, parents_to_check


def _frame(recs: list[AreaRec]):

    return gpd.GeoDataFrame({"code": [r.code for r in recs], "name": [r.name for r in recs],
                             "parent_code": [r.parent_code for r in recs]},
                            geometry=[r.geom for r in recs], crs=4326)


def _coverage_problems(state: DraftState, level: str, parents: set[str], touched: dict[str, AreaRec],
                       tolerance_m: float) -> list[DraftProblem]:
    """Per parent: the siblings must be an exact coverage (GEOS coverage validation, gaps up
    to the tolerance count) and, with check_layer, tile the parent."""

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
        for i, chunk in enumerate(chunks(list(bases))):
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
    check_parents = parents_to_check(state, touched)
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
    for chunk in chunks(created):
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

    m = re.search(r"\[(-?[\d.e+-]+)\s+(-?[\d.e+-]+)\]", reason or "")
    if m:
        return round(float(m.group(1)), 7), round(float(m.group(2)), 7)
    return where(geom)
