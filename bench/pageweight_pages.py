#!/usr/bin/env python
"""Benchmark: page weight and time to first render of the REAL role pages with many cases.

Like bench/pageweight.py (whose functions it reuses: database, COPY of N synthetic cases, in-process
server, the CDP measurement) but measures the app's own pages as their users see them:

  /worker   as a grid worker user: the primary worker of the busiest cell (target < 500 KB)
  /centre   as a city user (target < 2 MB and first render < 2 s)

Data: the demo city loaded with ``gridmap.demo.load_demo`` (boundaries, real categories, workers,
accounts), then N cases (default 200,000) written with COPY (pageweight.load_cases); each case is
then given a real leaf category and assigned to its cell's primary worker, as routing would.
Users log in through the ``/login`` form (CSRF token and all) in Chromium; the session cookie is
then used for the measured loads. Each page: bytes transferred (encoded, i.e. after gzip), of which
/api/ data, request count, time to first render (navigation start → a ``.leaflet-container`` with a
first layer drawn); cache disabled; best of ``--repeat`` (3) by first render, with the range.

Usage:
  GRIDMAP_BENCH_DATABASE_URL=postgresql+psycopg://… python bench/pageweight_pages.py [--cases N] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from democity import fresh_demo_db, loadavg  # noqa: E402

import pageweight as pw_bench  # noqa: E402

TARGETS = {"/worker": (500 * 1024, None), "/centre": (2 * 1024 * 1024, 2000)}
PASSWORD = "bench-password-123"


def prepare(engine, sm, n_cases: int) -> str:
    """Cases, real categories and assignees; returns the worker code of the busiest cell's primary worker."""
    from sqlalchemy import text

    from gridmap.accounts.service import create_user
    from gridmap.db import transaction

    secs = pw_bench.load_cases(engine, sm, n_cases)
    print(f"{n_cases:,} cases written with COPY in {secs:.1f} s ({loadavg()})", flush=True)
    t = time.perf_counter()
    with engine.begin() as c:
        leaf = [r[0] for r in c.execute(text(
            "SELECT id FROM categories k WHERE code NOT LIKE 'bench.%' AND active AND NOT EXISTS "
            "(SELECT 1 FROM categories s WHERE s.parent_id = k.id) ORDER BY code"))]
        c.execute(text("UPDATE cases SET category_id = (:ids)[1 + id % :n]"), {"ids": leaf, "n": len(leaf)})
        c.execute(text("UPDATE cases c SET assignee_worker_id = r.worker_id, assignee_level = 'cell' "
                       "FROM responsibilities r WHERE r.cell_id = c.cell_id AND r.role = 'primary' "
                       "AND r.valid_to IS NULL"))
        busiest = c.execute(text("SELECT cell_id, count(*) FROM cases GROUP BY 1 ORDER BY 2 DESC LIMIT 1")).one()
        w = c.execute(text("SELECT w.code, a.code FROM responsibilities r JOIN workers w ON w.id = r.worker_id "
                           "JOIN areas a ON a.id = r.cell_id WHERE r.cell_id = :c AND r.role = 'primary' "
                           "AND r.valid_to IS NULL"), {"c": busiest[0]}).first()
        c.execute(text("ANALYZE cases"))
    with engine.connect() as c:
        n_open = c.execute(text("SELECT count(*) FROM cases WHERE assignee_worker_id = (SELECT id FROM workers "
                                "WHERE code = :w) AND status NOT IN ('closed', 'evaluated')"), {"w": w[0]}).scalar()
    print(f"categories and assignees set in {time.perf_counter() - t:.1f} s; busiest cell {w[1]}: "
          f"{busiest[1]} cases; its primary worker {w[0]} has {n_open} open cases", flush=True)
    with transaction(sm) as s:
        create_user(s, "bench_worker", "worker", password=PASSWORD, worker_code=w[0])
        create_user(s, "bench_city", "city", password=PASSWORD)
    return w[0]


def login_cookie(browser, base: str, username: str) -> str:
    """Log in through /login (the form, with its CSRF token); the session cookie as NAME=VALUE."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.locator("form[action$='/login'] [type=submit], form[action$='/login'] button").first.click()
    if "/login" in page.url:
        raise SystemExit(f"login as {username} failed: still at {page.url}")
    cookies = [c for c in ctx.cookies() if "session" in c["name"]]
    ctx.close()
    if not cookies:
        raise SystemExit(f"login as {username}: no session cookie")
    return f"{cookies[0]['name']}={cookies[0]['value']}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    print(f"real pages with {args.cases:,} cases ({loadavg()})", flush=True)
    url, engine, sm, drop = fresh_demo_db()
    srv = None
    tmp = Path(tempfile.mkdtemp(prefix="gm-pages-"))
    try:
        prepare(engine, sm, args.cases)
        engine.dispose()
        base, srv = pw_bench.serve(url, tmp / "instance")
        if not os.path.exists(pw_bench.CHROMIUM):
            raise SystemExit(f"no Chromium at {pw_bench.CHROMIUM}: tools/sysdeps.sh browser")
        ok = True
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=pw_bench.CHROMIUM, args=pw_bench.CHROMIUM_ARGS,
                                        headless=True)
            for path, user in (("/worker", "bench_worker"), ("/centre", "bench_city")):
                cookie = login_cookie(browser, base, user)
                runs = [pw_bench.measure(browser, base, path, cookie=cookie) for _ in range(args.repeat)]
                best = min(runs, key=lambda r: r["first_render_ms"])
                print(f"\n{path} as {user} (best of {args.repeat}, cache off; {loadavg()}):")
                pw_bench.print_result(path.strip("/"), best)
                print(f"         range: bytes {min(r['bytes'] for r in runs) / 1024:.1f}–"
                      f"{max(r['bytes'] for r in runs) / 1024:.1f} KiB, first render "
                      f"{min(r['first_render_ms'] for r in runs)}–{max(r['first_render_ms'] for r in runs)} ms")
                max_bytes, max_ms = TARGETS[path]
                verdict = [f"bytes {best['bytes'] / 1024:.0f} KiB {'<' if best['bytes'] < max_bytes else '≥'} "
                           f"{max_bytes // 1024} KiB"]
                good = best["bytes"] < max_bytes
                if max_ms:
                    verdict.append(f"first render {best['first_render_ms']} ms "
                                   f"{'<' if best['first_render_ms'] < max_ms else '≥'} {max_ms} ms")
                    good = good and best["first_render_ms"] < max_ms
                ok = ok and good
                print(f"         target: {'; '.join(verdict)} → {'MET' if good else 'MISSED'}", flush=True)
            browser.close()
        return 0 if ok else 1
    finally:
        if srv is not None:
            srv.shutdown()
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
        if args.keep_db:
            print(f"database kept: {url}")
        else:
            drop()


if __name__ == "__main__":
    sys.exit(main())
