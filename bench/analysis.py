#!/usr/bin/env python
"""Benchmark: hot spots (Gi*) and generated ledgers at city scale.

1. Gi* on 3,000 and 50,000 synthetic Voronoi cells with synthetic counts (Poisson background plus
   two clusters): queen contiguity (gridmap.analysis.hotspots.contiguity: STRtree + libpysal W),
   then esda G_Local(star=True, permutations=999). Pure Python esda (no numba: its JIT costs
   ~50 s in every new process, see the docstring of gridmap.analysis.hotspots).
2. A year of city-scale cases in PostGIS (GRIDMAP_BENCH_DATABASE_URL; a throwaway database is
   created on that server and dropped): the Zhoushan demo boundaries (1,968 cells), --cases
   synthetic cases (default 300,000: ~150 per cell and year, Zhejiang's 2022 rate) COPYed in bulk,
   then the four ledgers (台账) of the busiest street for the year: build, .xlsx, .html (and .pdf
   with --pdf), and the analyses of that year city-wide (rates, trend, Gi* on the demo cells,
   repeats, scorecards).
Usage: python bench/analysis.py [--cells 3000,50000] [--cases N] [--pdf] [--no-postgis]
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import sys
import tempfile
import time
import uuid
import warnings

import numpy as np
import shapely

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

BOUNDS = (121.9, 29.9, 122.5, 30.3)
UTC = dt.timezone.utc


def voronoi_cells(n, rng):
    x0, y0, x1, y1 = BOUNDS
    pts = shapely.multipoints(np.c_[rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])
    env = shapely.box(*BOUNDS)
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=env)), env)
    return cells[~shapely.is_empty(cells)]


def bench_gi(n: int, rng) -> None:
    from gridmap.analysis.hotspots import classify, contiguity, gi_star

    cells = voronoi_cells(n, rng)
    c = shapely.centroid(cells)
    x, y = shapely.get_x(c), shapely.get_y(c)
    lam = 2.0 + 25 * np.exp(-((x - 122.05) ** 2 + (y - 30.05) ** 2) / 0.0008) \
        + 15 * np.exp(-((x - 122.35) ** 2 + (y - 30.2) ** 2) / 0.0004)
    counts = rng.poisson(lam).astype(float)
    t = time.perf_counter()
    w, info = contiguity(cells)
    t_w = time.perf_counter() - t
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z, p = gi_star(counts, w, permutations=999)
    t_gi = time.perf_counter() - t
    cls = classify(z, p)
    hot = int(np.char.startswith(cls.astype(str), "hot").sum())
    cold = int(np.char.startswith(cls.astype(str), "cold").sum())
    print(f"  {len(cells):>6,} cells, {int(counts.sum()):>9,} cases: queen weights {t_w:6.2f} s "
          f"({info['mean_neighbours']} neighbours each), Gi* 999 permutations {t_gi:6.2f} s  → {hot} hot, {cold} cold")


def _copy_cases(engine, n: int, rng, year: int) -> tuple[float, int]:
    """COPY n synthetic cases of ``year`` into cases (+ one report event each for the dispute cases)."""
    from sqlalchemy import text

    from gridmap.boundaries.lookup import get_index
    from gridmap.db import make_sessionmaker

    sm = make_sessionmaker(engine)
    with sm() as s:
        idx = get_index(s)
        areas = {code: i for i, code in s.execute(text("SELECT id, code FROM areas")).all()}
        cats = s.execute(text("SELECT id, code, kind FROM categories WHERE code LIKE '%.%'")).all()
        workers = dict(s.execute(text("SELECT r.cell_id, r.worker_id FROM responsibilities r WHERE r.role = 'primary'"))
                       .all())
    t = time.perf_counter()
    # points: uniform inside random cells (rejection on each cell's bounding box, vectorised)
    k = rng.integers(0, len(idx), n * 3)
    b = shapely.bounds(idx.geoms[k])
    lon = b[:, 0] + rng.random(len(k)) * (b[:, 2] - b[:, 0])
    lat = b[:, 1] + rng.random(len(k)) * (b[:, 3] - b[:, 1])
    res = idx.locate(lon, lat, "wgs84", snap_m=0)
    ok = np.flatnonzero(res.cell >= 0)[:n]
    lon, lat, cell = lon[ok], lat[ok], res.cell[ok]
    n = len(ok)
    codes = {lvl: idx.level_codes(lvl, cell) for lvl in ("cell", "community", "street", "district")}
    ids = {lvl: np.array([areas[c] for c in codes[lvl]]) for lvl in codes}
    start = dt.datetime(year, 1, 1, tzinfo=UTC).timestamp()
    reported = start + rng.random(n) * 365 * 86400
    cat = rng.integers(0, len(cats), n)
    status = rng.choice(["closed", "evaluated", "in_progress", "dispatched", "closed"], n)
    limit = 3 * 86400
    deadline = reported + 3600 + limit
    closed = np.where(np.isin(status, ["closed", "evaluated"]), reported + rng.random(n) * 5 * 86400, np.nan)
    sat = rng.integers(2, 6, n)

    def ts(v):
        return "\\N" if not np.isfinite(v) else dt.datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%d %H:%M:%S")

    buf = io.StringIO()
    for i in range(n):  # formatting rows for COPY (this is data generation, not the code under test)
        c_id, c_code, _kind = cats[cat[i]]
        w = workers.get(int(ids["cell"][i]))
        cl = closed[i]
        on_time = "\\N" if not np.isfinite(cl) else ("t" if cl <= deadline[i] else "f")
        ev = ts(cl + 86400) if status[i] == "evaluated" else "\\N"
        buf.write("\t".join([
            f"{year}-{i:07d}", "hotline" if i % 3 else "patrol", str(c_id), f"测试事件 {c_code}", status[i],
            "f", "f", f"SRID=4326;POINT({lon[i]:.7f} {lat[i]:.7f})", f"{lon[i]:.7f}", f"{lat[i]:.7f}", "point",
            str(ids["cell"][i]), str(ids["community"][i]), str(ids["street"][i]), str(ids["district"][i]), "f",
            "\\N" if w is None else str(w), "cell", "0", ts(reported[i]), ts(reported[i]), ts(reported[i] + 3600),
            ts(deadline[i]), ts(cl), on_time, ts(cl - 3600) if np.isfinite(cl) else "\\N", ev,
            str(sat[i]) if status[i] == "evaluated" else "\\N", "\\N" if w is None else str(w),
            "f", "f", "0", "f", "0", "0", "1", ts(reported[i])]) + "\n")
    cols = ("number, source, category_id, description, status, urgent, supervised, geom, lon, lat, placement, "
            "cell_id, community_id, street_id, district_id, snapped, assignee_worker_id, assignee_level, "
            "escalation_level, reported_at, filed_at, dispatched_at, deadline_at, closed_at, closed_on_time, "
            "handled_at, evaluated_at, satisfaction, handled_by_worker_id, self_handled, overdue, extension_count, "
            "extension_pending, rework_count, return_count, version, updated_at")
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY cases ({cols}) FROM STDIN") as cp:
            cp.write(buf.getvalue())
        cur.execute("""INSERT INTO case_events (case_id, seq, action, to_status, at, actor_name, data)
                       SELECT c.id, 1, 'report', 'reported', c.reported_at, 'system',
                              '{"parties": ["甲", "乙"], "outcome": "达成协议"}'
                       FROM cases c JOIN categories k ON k.id = c.category_id WHERE k.kind = 'dispute'""")
        cur.execute("ANALYZE cases")
        cur.execute("ANALYZE case_events")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - t, n


def bench_city(url: str, n_cases: int, rng, pdf: bool) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from gridmap import migrate
    from gridmap.accounts.actor import SYSTEM
    from gridmap.analysis import ledgers as L
    from gridmap.analysis.hotspots import hotspots
    from gridmap.analysis.rates import rates, trend
    from gridmap.analysis.repeats import repeats
    from gridmap.analysis.scorecards import scorecards
    from gridmap.db import make_engine, make_sessionmaker
    from gridmap.demo import load_demo

    base = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"gm_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(base.set(database=name).render_as_string(hide_password=False))
    try:
        with engine.begin() as c:
            c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        migrate.upgrade(engine)
        sm = make_sessionmaker(engine)
        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            load_demo(sm, os.path.join(os.path.dirname(__file__), "..", "data", "shapefiles"), cases=0,
                      instance_path=tmp, echo=lambda m: None)
        print(f"  demo city loaded in {time.perf_counter() - t:.1f} s")
        year = 2025
        t_copy, n = _copy_cases(engine, n_cases, rng, year)
        print(f"  {n:,} cases of {year} generated and COPYed in {t_copy:.1f} s")
        with sm() as s:
            street, sname, k = s.execute(text(
                "SELECT a.code, a.name, count(*) FROM cases c JOIN areas a ON a.id = c.street_id "
                "GROUP BY a.code, a.name ORDER BY count(*) DESC LIMIT 1")).one()
            print(f"  busiest street {street} {sname}: {k:,} cases in the year")
            frm, to = f"{year}-01-01", f"{year}-12-31"
            t = time.perf_counter()
            leds = L.build_ledgers(s, "all", area=street, date_from=frm, date_to=to, actor=SYSTEM)
            t_build = time.perf_counter() - t
            rows = {x.kind: len(x.rows) for x in leds}
            print(f"  ledgers built in {t_build:.2f} s: {rows}")
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                L.write_xlsx(leds, os.path.join(tmp, "l.xlsx"))
                t_x = time.perf_counter() - t
                t = time.perf_counter()
                html = L.render_html(s, leds)
                t_h = time.perf_counter() - t
                size = os.path.getsize(os.path.join(tmp, "l.xlsx"))
                print(f"  .xlsx written in {t_x:.2f} s ({size / 1e6:.1f} MB); .html rendered in {t_h:.2f} s "
                      f"({len(html) / 1e6:.1f} MB)")
                if pdf:  # a PDF is capped at L.MAX_PDF_ROWS rows: print the street's case ledger of one month
                    month = L.build_ledgers(s, "cases", area=street, date_from=f"{year}-03-01",
                                            date_to=f"{year}-03-31", actor=SYSTEM)
                    t = time.perf_counter()
                    L.write_ledgers(s, month, os.path.join(tmp, "l.pdf"))
                    print(f"  .pdf of one month's case ledger ({len(month[0].rows):,} rows) printed by Chromium in "
                          f"{time.perf_counter() - t:.1f} s ({os.path.getsize(os.path.join(tmp, 'l.pdf')) / 1e6:.1f} MB)")
            for label, fn, kw in (
                    ("rates per community", rates, {"level": "community"}),
                    ("trend by week and category", trend, {"unit": "week", "by": "category"}),
                    ("Gi* on the demo cells", hotspots, {"level": "cell"}),
                    ("Gi* again (weights cached)", hotspots, {"level": "cell"}),
                    ("repeats 50 m ≥ 3, one street", repeats, {"area": street}),
                    ("scorecards by worker", scorecards, {"level": "worker"})):
                t = time.perf_counter()
                fn(s, SYSTEM, date_from=frm, date_to=to, **kw)
                print(f"  {label:<32} {time.perf_counter() - t:6.2f} s")
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", default="3000,50000", help="comma-separated cell counts for Gi*")
    ap.add_argument("--cases", type=int, default=300_000)
    ap.add_argument("--pdf", action="store_true", help="also print the street's ledgers to PDF with Chromium")
    ap.add_argument("--no-postgis", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(20260301)
    import esda
    import libpysal

    print(f"Gi* (esda {esda.__version__}, libpysal {libpysal.__version__}, one core):")
    for n in (int(v) for v in args.cells.split(",") if v):
        bench_gi(n, rng)
    url = None if args.no_postgis else os.environ.get("GRIDMAP_BENCH_DATABASE_URL")
    if url:
        print(f"\nA year of city-scale data in PostGIS ({args.cases:,} cases):")
        bench_city(url, args.cases, rng, args.pdf)
    else:
        print("\n(set GRIDMAP_BENCH_DATABASE_URL to a PostGIS server for the ledger part; `make bench` does)")


if __name__ == "__main__":
    main()
