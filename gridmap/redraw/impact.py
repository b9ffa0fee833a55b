"""The impact preview of a draft: what publishing it would change for people and cases.

Owns: :func:`draft_impact`: cells created, changed and retired; households and population moved
(pro-rated by area); workers gaining or losing area (from the responsibilities valid today); open
cases whose cell changes and their new assignees (a lookup index over the draft's state and the
router); and the responsible workers of cells in a draft state (:func:`responsible_cells`).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import shapely
import shapely.errors
import shapely.ops
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gridmap.assign.calendar import local_date
from gridmap.assign.models import Responsibility, Worker
from gridmap.assign.router import route
from gridmap.boundaries.lookup import CellIndex
from gridmap.boundaries.models import LEVELS
from gridmap.db import utcnow
from gridmap.geo import measure
from gridmap.geo.shapes import metric_epsg
from gridmap.incidents.models import Case, Category
from gridmap.redraw.models import CLOSED_CASE_STATUSES, BoundaryDraft
from gridmap.redraw.state import AreaRec, DraftState, chunks, vertices_only


def local_today(now: dt.datetime) -> dt.date:

    return local_date(now)


def current_responsibilities(session: Session, cell_ids: list[int], day: dt.date) -> dict[int, list]:

    out: dict[int, list] = {}
    for chunk in chunks(cell_ids):
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


def inherit_from(state: DraftState, rec: AreaRec) -> AreaRec | None:
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

    day = day or local_date(utcnow())
    ids = {}
    for r in cells:
        if r.id is not None:
            ids[r.code] = r.id
        else:
            src = inherit_from(state, r)
            if src is not None:
                ids[r.code] = src.id
    resp = current_responsibilities(state.session, sorted(set(ids.values())), day)
    return {code: resp[i] for code, i in ids.items() if resp.get(i)}


def overlaps(olds: list[AreaRec], news: list[AreaRec], epsg: int):
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


def case_relocation(session: Session, state: DraftState, *, snap_m: float = 100.0) -> list[dict]:
    """Open cases in cells the draft changes or retires, located again against the draft's cells.

    Returns one dict per case whose cell (or whose cell's community) changes: case id, status,
    category, old cell id/code, new cell code. Cases with a point are located with a
    :class:`~gridmap.boundaries.lookup.CellIndex` over the touched cells' new geometries (snapping
    within ``snap_m``); cases without a point keep their cell unless it is retired, then go to
    the new cell that took most of its area.
    """

    touched = state.touched()
    cells_old = {c: state.base[c] for c, r in touched.items() if r.level == "cell" and c in state.base}
    if not cells_old:
        return []
    new_cells = [r for r in touched.values() if r.level == "cell" and r.active]
    by_id = {b.id: b for b in cells_old.values()}
    rows = []
    for chunk in chunks(list(by_id)):
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
        for i, j, a in overlaps(olds, new_cells, epsg):
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
        for i, j, a in overlaps(olds, news, epsg):
            if olds[i].code == news[j].code or a < 0.01:
                continue
            share = a / o_area[i] if o_area[i] > 0 else 0.0
            out["moved"].append({"from": olds[i].code, "to": news[j].code, "area_m2": round(a, 1),
                                 "households": round((olds[i].households or 0) * share),
                                 "population": round((olds[i].population or 0) * share)})

    # workers gaining or losing area (primary and backup responsibilities)
    if olds or news:
        old_resp = current_responsibilities(session, [b.id for b in olds if b.id is not None],
                                             local_today(now))
        new_resp = responsible_cells(state, news, local_today(now))
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
    moves = case_relocation(session, state, snap_m=snap_m)
    if moves:
        cats = {c.id: c for c in session.scalars(select(Category).where(
            Category.id.in_({m["category_id"] for m in moves})))}
        workers = {}
        cache: dict = {}
        for m in moves:
            nrec = state.recs[m["new_cell"]]
            src = nrec if nrec.id is not None else inherit_from(state, nrec)
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
