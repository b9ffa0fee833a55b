#!/usr/bin/env python
"""Benchmark: bulk import of cases from CSV (``gridmap cases import`` = ``import_cases_csv``) on PostGIS.

Loads the demo city into a fresh PostGIS database, writes a CSV of N cases (default 1,000,000):
random points inside the demo city's cells (the lookup index's geometries, cells weighted by
households), leaf category codes of data/categories.json, unique external ids, reported_at in the
last year, and ~0.1 % bad rows (a quarter each: lon not a number, lon out of range, a point far
outside the city, an unknown category). Then imports it with ``import_cases_csv`` (what the CLI
calls) and prints cases/s end to end and where the time goes: the import's own functions are
wrapped with timers (no cProfile: its overhead would distort a per-row loop):

  parse+validate  reading the CSV and checking rows (the time outside ``_flush``)
  skip-check      the (source, external_id) look-up of what is there already (+ small Python work)
  locate          ``CellIndex.locate`` + ``level_codes`` (vectorized point in cell)
  routing         ``base_route`` (once per cell × category) + ``explain_route`` (per row)
  ids             ``_allocate_ids`` (nextval × n)
  insert cases    COPY into cases (with the server's index / foreign-key upkeep)
  insert history  COPY into case_events ("report" events)
  commit          the batch transaction's commit

Then imports the same file again (everything is skipped: 0 new) and times that.

Usage:
  GRIDMAP_BENCH_DATABASE_URL=postgresql+psycopg://… python bench/intake_bulk.py [--rows N] [--batch 5000]
The database is dropped afterwards (``--keep-db`` keeps it). No assertions except the re-run's 0 new.
"""
from __future__ import annotations

import argparse
import collections
import csv
import datetime as dt
import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from democity import fresh_demo_db, leaf_category_codes, loadavg  # noqa: E402

BAD_SHARE = 0.001
TEXTS = ["路面破损，行人易绊倒", "楼道堆放杂物，存在消防隐患", "邻里因噪音发生纠纷", "垃圾未及时清运",
         "违规占道经营", "路灯不亮", "小区内私搭乱建", "河道漂浮物较多"]


def write_csv(sm, path: Path, rows: int, seed: int = 2026, chunk: int = 100_000) -> int:
    """The CSV; returns the number of deliberately bad rows."""
    from pageweight import random_points_in

    from gridmap.boundaries.lookup import get_index

    rng = np.random.default_rng(seed)
    with sm() as s:
        idx = get_index(s)
        geoms = idx.geoms
    n_cells = len(geoms)
    codes = leaf_category_codes()
    now = dt.datetime(2026, 6, 1, 12, 0)
    n_bad = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["external_id", "category", "description", "lon", "lat", "reported_at"])
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            pick = rng.integers(0, n_cells, n)
            lon, lat = random_points_in(geoms[pick], rng)
            cat = rng.integers(0, len(codes), n)
            age = rng.uniform(0, 365 * 24 * 3600, n)
            bad = rng.random(n) < BAD_SHARE
            kind = rng.integers(0, 4, n)
            for i in range(n):
                ext = f"BULK-{start + i:08d}"
                code = codes[cat[i]]
                x, y = repr(float(lon[i])), repr(float(lat[i]))
                if bad[i]:
                    n_bad += 1
                    k = kind[i]
                    if k == 0:
                        x = "122.1x"                 # not a number
                    elif k == 1:
                        x = "222.1"                  # out of range
                    elif k == 2:
                        x, y = "116.397", "39.909"   # Beijing: outside every cell
                    else:
                        code = "no.such.category"
                w.writerow([ext, code, TEXTS[i % len(TEXTS)], x, y,
                            (now - dt.timedelta(seconds=float(age[i]))).strftime("%Y-%m-%d %H:%M:%S")])
    return n_bad, n_cells, len(codes)


class Timers:
    def __init__(self):
        self.t = collections.defaultdict(float)
        self.n = collections.Counter()

    def wrap(self, owner, attr, label, label_fn=None):
        orig = getattr(owner, attr)

        @functools.wraps(orig)
        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return orig(*a, **kw)
            finally:
                lab = label_fn(*a, **kw) if label_fn else label
                self.t[lab] += time.perf_counter() - t0
                self.n[lab] += 1

        setattr(owner, attr, timed)
        return orig

    def reset(self):
        self.t.clear()
        self.n.clear()


def instrument(timers: Timers) -> None:
    from gridmap.boundaries import lookup
    from gridmap.incidents import bulk, intake

    timers.wrap(bulk, "_flush", "flush")
    timers.wrap(bulk, "_write_batch", "write_batch")
    timers.wrap(lookup.CellIndex, "locate", "locate")
    timers.wrap(lookup.CellIndex, "level_codes", "locate")
    timers.wrap(intake, "base_route", "routing", label_fn=lambda *a, **k: "routing")
    timers.wrap(intake, "explain_route", "explain_route")
    timers.wrap(bulk, "_allocate_ids", "ids")
    timers.wrap(bulk, "_bulk_insert", None,
                label_fn=lambda session, table, rows: "insert history" if table.name == "case_events"
                else "insert cases")


def breakdown(timers: Timers, total: float) -> list[tuple[str, float]]:
    t = timers.t
    inner = sum(t[k] for k in ("locate", "routing", "explain_route", "ids", "insert cases", "insert history"))
    return [("parse+validate", total - t["flush"]), ("skip-check", t["write_batch"] - inner),
            ("locate", t["locate"]), ("routing", t["routing"] + t["explain_route"]), ("ids", t["ids"]),
            ("insert cases", t["insert cases"]), ("insert history", t["insert history"]),
            ("commit", t["flush"] - t["write_batch"])]


def run_import(sm, path, batch, timers, label, timeout_s):
    from gridmap.incidents.bulk import import_cases_csv

    timers.reset()
    size = os.path.getsize(path)
    done = [0]
    t0 = time.perf_counter()
    last = [t0]

    def progress(nbytes):
        done[0] += nbytes
        now = time.perf_counter()
        if now - last[0] > 30:
            last[0] = now
            print(f"  … {label}: {done[0] / size:5.1%} of the file in {now - t0:.0f} s ({loadavg()})", flush=True)
        if now - t0 > timeout_s:
            raise TimeoutError(f"{label}: over {timeout_s} s at {done[0] / size:.1%} of the file")

    rep = import_cases_csv(sm, path, batch=batch, progress=progress)
    return rep, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--timeout", type=float, default=1200, help="give up an import after this many seconds")
    ap.add_argument("--estimate-rows", type=int, default=1_000_000,
                    help="extrapolate the first import's time to this many rows (labelled as an estimate)")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args(argv)

    print(f"bulk intake benchmark: {args.rows:,} rows, batch {args.batch} ({loadavg()})", flush=True)
    url, engine, sm, drop = fresh_demo_db()
    tmp = Path(tempfile.mkdtemp(prefix="gm-intake-bulk-"))
    path = tmp / "cases.csv"
    try:
        t = time.perf_counter()
        n_bad, n_cells, n_codes = write_csv(sm, path, args.rows)
        print(f"CSV written: {path.stat().st_size / 2**20:.0f} MiB, {args.rows:,} rows of which {n_bad} made bad, "
              f"in {time.perf_counter() - t:.1f} s ({loadavg()})", flush=True)
        timers = Timers()
        instrument(timers)

        rep, secs = run_import(sm, path, args.batch, timers, "first import", args.timeout)
        la = loadavg()
        print(f"\nfirst import: {rep['rows']:,} rows: imported {rep['imported']:,}, skipped {rep['skipped']:,}, "
              f"bad {rep['bad']:,} (made bad: {n_bad}) in {secs:.1f} s = {rep['imported'] / secs:,.0f} cases/s "
              f"end to end ({la})")
        reasons = collections.Counter(" ".join(r.split()[:3]) for _l, r in rep["bad_rows"])
        print(f"  bad reasons (first words): {dict(reasons)}")
        for name, v in breakdown(timers, secs):
            print(f"  {name:15s} {v:8.1f} s  {v / secs:6.1%}")
        n_route = timers.n["routing"]
        per_route = timers.t["routing"] / max(n_route, 1)
        print(f"  (routing: {n_route:,} base_route calls = distinct routing keys (cell, or cell + category where the category routes to a department), "
              f"{per_route * 1000:.1f} ms each, + {timers.n['explain_route']:,} explain_route; "
              f"batches: {timers.n['flush']:,}; {n_cells:,} cells × {n_codes} leaf categories)")
        if args.estimate_rows and args.estimate_rows != args.rows:
            # ESTIMATE: per-row work scales with rows; routing with the distinct (cell, category) pairs
            pairs = n_cells * n_codes
            est_pairs = pairs * (1 - np.exp(-args.estimate_rows * (1 - BAD_SHARE) / pairs))
            per_row = (secs - timers.t["routing"]) / args.rows
            est = per_row * args.estimate_rows + per_route * est_pairs
            print(f"  ESTIMATE (extrapolated, not measured) for {args.estimate_rows:,} rows: ~{est / 60:.0f} min "
                  f"(~{args.estimate_rows / est:,.0f} cases/s): {per_row * args.estimate_rows / 60:.0f} min per-row "
                  f"work + ~{est_pairs:,.0f} distinct pairs × {per_route * 1000:.1f} ms routing")

        with engine.connect() as c:
            from sqlalchemy import text

            n_cases = c.execute(text("SELECT count(*) FROM cases WHERE source = 'import'")).scalar()
            n_ev = c.execute(text("SELECT count(*) FROM case_events e JOIN cases k ON k.id = e.case_id "
                                  "WHERE k.source = 'import'")).scalar()
            routed = c.execute(text("SELECT count(*) FROM cases WHERE source = 'import' AND "
                                    "(assignee_worker_id IS NOT NULL OR assignee_department_id IS NOT NULL)")).scalar()
        print(f"  in the database: {n_cases:,} imported cases ({routed:,} routed to a worker or department), "
              f"{n_ev:,} report events")

        rep2, secs2 = run_import(sm, path, args.batch, timers, "re-run", args.timeout)
        print(f"\nre-run (same file): {rep2['rows']:,} rows: imported {rep2['imported']:,}, skipped "
              f"{rep2['skipped']:,}, bad {rep2['bad']:,} in {secs2:.1f} s = {rep2['rows'] / secs2:,.0f} rows/s "
              f"({loadavg()}); {secs2 / secs:.2f}× the first import's time")
        for name, v in breakdown(timers, secs2):
            if v > 0.05 * secs2:
                print(f"  {name:15s} {v:8.1f} s  {v / secs2:6.1%}")
        if rep2["imported"] != 0:
            print("  ! the re-run imported cases: NOT idempotent")
            return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        engine.dispose()
        if args.keep_db:
            print(f"database kept: {url}")
        else:
            drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
