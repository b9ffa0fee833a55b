"""Shared by the intake benchmarks: a fresh PostGIS database with the Zhoushan demo city loaded.

``fresh_demo_db()`` creates ``gm_bench_<pid>_<hex>`` on the server named by GRIDMAP_BENCH_DATABASE_URL
(else GRIDMAP_TEST_DATABASE_URL), migrates it and loads the demo city through ``gridmap.demo.load_demo``
(boundaries, categories, calendar, 3,401 workers, demo accounts; no synthetic cases unless asked).
Returns (url, engine, sessionmaker, drop). Also: the machine's load average, leaf category codes.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def loadavg() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.2f} {b:.2f} {c:.2f}"


def server_url() -> str:
    url = os.environ.get("GRIDMAP_BENCH_DATABASE_URL") or os.environ.get("GRIDMAP_TEST_DATABASE_URL")
    if not url:
        raise SystemExit("set GRIDMAP_BENCH_DATABASE_URL to a PostGIS server (e.g. `tools/pg_test_cluster.sh | tail -1`)")
    return url


def fresh_demo_db(cases: int = 0, quiet: bool = True):
    from pageweight import create_database

    from gridmap import migrate
    from gridmap.db import make_engine, make_sessionmaker
    from gridmap.demo import load_demo

    url, drop = create_database(server_url())
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        sm = make_sessionmaker(engine)
        t = time.perf_counter()
        load_demo(sm, ROOT / "data" / "shapefiles", cases=cases, echo=(lambda m: None) if quiet else print)
        print(f"demo city loaded in {time.perf_counter() - t:.1f} s ({loadavg()})", flush=True)
    except BaseException:
        drop()
        raise
    return url, engine, sm, drop


def leaf_category_codes() -> list[str]:
    """Category codes of data/categories.json that have no subcategory (what a report is filed under)."""
    cats = json.loads((ROOT / "data" / "categories.json").read_text(encoding="utf-8"))["categories"]
    codes = [c["code"] for c in cats]
    return [c for c in codes if not any(o.startswith(c + ".") for o in codes)]
