#!/usr/bin/env python
"""Benchmark: redrawing on the demo city (Zhoushan, ~2,000 cells under ~400 communities).

Prints, on PostGIS (GRIDMAP_BENCH_DATABASE_URL, else the throwaway test cluster of
tools/pg_test_cluster.sh, in a fresh database) — and with --spatialite on a SpatiaLite file too:
  1. validating the whole cell coverage: check_stored("cell") (check_layer) and GEOS
     coverage_is_valid per community;
  2. one local edit: splitting a cell — the draft operation end to end, and the check of the
     resulting state alone (target < 50 ms);
  3. a publish that re-routes 10,000 open cases: a community retired into its neighbour (every
     cell retired and re-created there), 10,000 open cases in it (target < 5 s on PostGIS).
Usage: python bench/redraw.py [--cases N] [--spatialite] [--keep]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time

import numpy as np
import shapely

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/pageweight.py

from sqlalchemy import func, insert, select  # noqa: E402

from gridmap import migrate  # noqa: E402
from gridmap.accounts.actor import Actor  # noqa: E402
from gridmap.db import make_engine, make_sessionmaker, transaction, utcnow  # noqa: E402

ADMIN = Actor(name="bench", role="admin")
SPLIT_TARGET_S = 0.050
PUBLISH_TARGET_S = 5.0


def _postgis_url(keep: bool) -> tuple[str, callable]:
    """A fresh PostGIS database (bench/pageweight.create_database) on the bench server, or on the
    throwaway test cluster when none is named."""
    from pageweight import create_database

    base = os.environ.get("GRIDMAP_BENCH_DATABASE_URL")
    if not base:
        out = subprocess.run([os.path.join(ROOT, "tools", "pg_test_cluster.sh")], capture_output=True, text=True,
                             check=True)
        base = out.stdout.strip().splitlines()[-1]
    url, drop = create_database(base)
    if keep:
        return url, lambda: print(f"kept database {url.rsplit('/', 1)[-1]}")
    return url, drop


def load_city(sm) -> float:
    from gridmap.demo import load_demo

    t = time.perf_counter()
    load_demo(sm, os.path.join(ROOT, "data", "shapefiles"), echo=lambda m: None)
    return time.perf_counter() - t


def bench_validate(sm) -> None:
    from gridmap.boundaries.service import check_stored, load_level

    with sm() as s:
        t = time.perf_counter()
        cells = load_level(s, "cell")
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        problems = check_stored(s, "cell")
        t_check = time.perf_counter() - t
    t = time.perf_counter()
    bad = 0
    for _, grp in cells.groupby("parent_code"):
        if not shapely.coverage_is_valid(np.array(grp.geometry.values, dtype=object)):
            bad += 1
    t_cov = time.perf_counter() - t
    errors = sum(p.severity == "error" for p in problems)
    print(f"  whole coverage, {len(cells)} cells in {cells['parent_code'].nunique()} communities: "
          f"load {t_load * 1000:.0f} ms, check_stored(cell) {t_check * 1000:.0f} ms ({errors} errors), "
          f"coverage_is_valid per community {t_cov * 1000:.0f} ms ({bad} invalid)")


def _pick_cell(sm):
    """A cell in the middle of a community with at least 4 cells."""
    from gridmap.boundaries.service import load_level

    with sm() as s:
        cells = load_level(s, "cell")
    sizes = cells.groupby("parent_code").size()
    comm = sizes[sizes >= 4].index[len(sizes[sizes >= 4]) // 2]
    row = cells[cells["parent_code"] == comm].iloc[0]
    return row["code"], row.geometry


def bench_local_edit(sm) -> None:
    from gridmap import redraw

    code, g = _pick_cell(sm)
    c = g.centroid
    x0, y0, x1, y1 = g.bounds
    line = shapely.LineString([(c.x, y1 + (y1 - y0)), (c.x, y0 - (y1 - y0))])
    times, checks = [], []
    for _ in range(5):
        with transaction(sm) as s:
            t = time.perf_counter()
            d = redraw.split_cell(s, ADMIN, code, line)
            times.append(time.perf_counter() - t)
            state = redraw.DraftState(s, d)
            state.preload()
            t = time.perf_counter()
            problems = redraw.check_state(state)
            checks.append(time.perf_counter() - t)
            errs = [p for p in problems if p.severity == "error"]
            s.rollback()
    best = min(checks)
    verdict = "ok" if best < SPLIT_TARGET_S else "SLOW"
    print(f"  local edit (split {code}): operation end to end {min(times) * 1000:.0f} ms (load, snap, node, "
          f"save, check); check of the resulting state {best * 1000:.1f} ms (target < 50 ms: {verdict}); "
          f"{len(errs)} errors")


def bench_publish(sm, n_cases: int) -> None:
    from gridmap.assign.models import Responsibility, Worker
    from gridmap import redraw
    from gridmap.redraw.state import DraftState
    from gridmap.boundaries.models import Area
    from gridmap.boundaries.service import load_level
    from gridmap.incidents.models import Case, CaseEvent, Category

    with sm() as s:
        cells = load_level(s, "cell")
        comms = load_level(s, "community")
    sizes = cells.groupby("parent_code").size()
    # a community with a neighbour in the same street
    src = into = None
    tree = shapely.STRtree(comms.geometry.values)
    for code in sizes.sort_values(ascending=False).index[:60]:
        row = comms[comms["code"] == code].iloc[0]
        for j in tree.query(row.geometry, predicate="intersects"):
            other = comms.iloc[j]
            if other["code"] != code and other["parent_code"] == row["parent_code"] and \
                    shapely.length(shapely.intersection(row.geometry.boundary, other.geometry.boundary)) > 1e-4:
                src, into = row, other
                break
        if src is not None:
            break
    rng = np.random.default_rng(1)
    from gridmap.redraw.balance import synthetic_points

    xy = synthetic_points(src.geometry, n_cases, rng)
    with transaction(sm) as s:
        cat = Category(code="bench.redraw", name="基准", kind="event", limit_value=2, limit_unit="natural_days",
                       active=True)
        s.add(cat)
        s.flush()
        ids = dict(s.execute(select(Area.code, Area.id)).all())
        mine = cells[cells["parent_code"].isin([src["code"], into["code"]])]
        for k, code in enumerate(mine["code"]):
            w = Worker(code=f"BW{k:05d}", name=f"网格员{k}", role="worker", active=True)
            s.add(w)
            s.flush()
            s.add(Responsibility(worker_id=w.id, cell_id=ids[code], role="primary", valid_from=dt.date(2020, 1, 1)))
        s.flush()
        # each case in the cell that holds its point (edge rule aside, points are random)
        src_cells = cells[cells["parent_code"] == src["code"]]
        t = shapely.STRtree(src_cells.geometry.values)
        pi, ci = t.query(shapely.points(xy), predicate="intersects")
        cell_of = np.full(len(xy), -1)
        cell_of[pi] = ci
        comm_id = ids[src["code"]]
        street_id = ids[src["parent_code"]]
        district_id = s.scalar(select(Area.parent_id).where(Area.id == street_id))
        now = utcnow()
        rows = []
        for k, ((x, y), c) in enumerate(zip(xy, cell_of)):
            if c < 0:
                continue
            rows.append({"source": "patrol", "category_id": cat.id, "description": "基准事件", "status": "dispatched",
                         "lon": float(x), "lat": float(y), "geom": f"SRID=4326;POINT({x} {y})", "placement": "point",
                         "cell_id": ids[src_cells.iloc[c]["code"]], "community_id": comm_id, "street_id": street_id,
                         "district_id": district_id, "reported_at": now, "updated_at": now, "version": 1,
                         "urgent": False, "supervised": False, "escalation_level": 0, "self_handled": False,
                         "overdue": False, "extension_count": 0, "extension_pending": False, "rework_count": 0,
                         "return_count": 0, "number": f"B{k:06d}"})
        s.execute(insert(Case.__table__), rows)
        case_ids = s.scalars(select(Case.id).where(Case.category_id == cat.id)).all()
        s.execute(insert(CaseEvent.__table__), [{"case_id": i, "seq": 1, "action": "report", "to_status": "reported",
                                                 "at": now, "actor_name": "system"} for i in case_ids])
    with transaction(sm) as s:
        t = time.perf_counter()
        d = redraw.retire_community(s, ADMIN, src["code"], into["code"])
        t_op = time.perf_counter() - t
        did = d.id
        errs = [p.message for p in redraw.draft_problems(d) if p.severity == "error"]
    if errs:
        print(f"  publish: the draft has errors, not published: {errs[:3]}")
        return
    with sm() as s:
        t = time.perf_counter()
        imp = redraw.draft_impact(s, redraw.load_draft(s, did), state=DraftState(s, redraw.load_draft(s, did)))
        t_imp = time.perf_counter() - t
    t = time.perf_counter()
    with transaction(sm) as s:
        rep = redraw.publish_draft(s, did, ADMIN, reason="bench")
    t_pub = time.perf_counter() - t
    with sm() as s:
        n_ev = s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.action == "reroute"))
        bench_cat = s.scalar(select(Category.id).where(Category.code == "bench.redraw"))
        moved = s.scalar(select(func.count()).select_from(Case).where(Case.community_id == ids[into["code"]],
                                                                      Case.category_id == bench_cat))
    verdict = "ok" if t_pub < PUBLISH_TARGET_S else "SLOW"
    print(f"  retire community {src['code']} ({len(src_cells)} cells) into {into['code']}: draft {t_op:.2f} s, "
          f"impact preview {t_imp:.2f} s ({imp['summary']['cases_rerouted']} cases listed)")
    print(f"  publish: {t_pub:.2f} s for {rep.cases_rerouted} re-routed open cases ({n_ev} history rows, {moved} "
          f"bench cases now in {into['code']}; {rep.created} areas created, {rep.changed} changed, {rep.retired} retired) "
          f"(target < 5 s: {verdict})")


def run(label: str, url: str, n_cases: int) -> None:
    print(f"{label}:")
    eng = make_engine(url)
    migrate.upgrade(eng)
    sm = make_sessionmaker(eng)
    t = load_city(sm)
    print(f"  demo city loaded in {t:.1f} s")
    bench_validate(sm)
    bench_local_edit(sm)
    bench_publish(sm, n_cases)
    eng.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--spatialite", action="store_true", help="also run on a SpatiaLite file")
    ap.add_argument("--keep", action="store_true", help="keep the PostGIS database")
    args = ap.parse_args()
    url, drop = _postgis_url(args.keep)
    try:
        run("PostGIS", url, args.cases)
    finally:
        drop()
    if args.spatialite:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            run("SpatiaLite", f"sqlite:///{tmp}/bench.sqlite", args.cases)


if __name__ == "__main__":
    main()
