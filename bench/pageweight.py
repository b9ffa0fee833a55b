#!/usr/bin/env python
"""Benchmark: what a map page weighs and how fast it draws, with many cases in the database.

Loads the demo city (Zhoushan, ~2,000 cells; or the 16-cell test city) and N synthetic cases
(default 200,000, written with COPY) into a fresh PostGIS database, serves the app in-process,
opens map pages in Debian's Chromium (Playwright, no browser download) and prints for each view:
bytes transferred (CDP Network.loadingFinished encodedDataLength, cache disabled), of which
/api/ data, the number of requests, and the time to first render (navigation start → a
``.leaflet-container`` with a first layer drawn: an SVG path, a marker or the heat canvas).

Views: ``worker`` (the bbox of the busiest cell, a grid worker's scale), ``city`` (the whole city,
areas by zoom: districts) and ``city-cells`` (the whole city with every cell drawn). The page is the built-in ``/_bench/map`` (gridmap.web.maps: cells + clustered cases)
unless ``--path`` names others; ``{worker_bbox}`` and ``{city_bbox}`` in a path are replaced.

Usage:
  GRIDMAP_BENCH_DATABASE_URL=postgresql+psycopg://… python bench/pageweight.py [--cases N] [--city demo|test]
  python bench/pageweight.py --path '/map?bbox={city_bbox}' --path …      # the app's own pages
  python bench/pageweight.py --base-url http://host:5000 --path /map --token T   (or --cookie session=…)
        measures pages of a running server; nothing is loaded.
The database comes from GRIDMAP_BENCH_DATABASE_URL (else GRIDMAP_TEST_DATABASE_URL); a database
``gm_bench_<pid>`` is created on that server and dropped afterwards (``--keep-db`` keeps it).
No assertions: it prints figures.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
READY_JS = """() => {
  const c = document.querySelector('.leaflet-container');
  return !!(c && c.querySelector('.leaflet-overlay-pane path, .leaflet-marker-pane > *, canvas.leaflet-heatmap-layer'));
}"""
UTC = dt.timezone.utc


# ----------------------------------------------------------------------------- database

def create_database(server_url: str) -> tuple[str, callable]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"gm_bench_{os.getpid()}_{uuid.uuid4().hex[:4]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name)
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    eng.dispose()

    def drop():
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.render_as_string(hide_password=False), drop


def load_boundaries(sessionmaker, city: str, tmp: Path) -> None:
    from gridmap.boundaries.io import read_boundary_file
    from gridmap.boundaries.service import import_layer
    from gridmap.db import transaction

    if city == "demo":
        from gridmap.demo import DEMO_LEVELS

        files = [(lvl, ROOT / "data" / "shapefiles" / f) for lvl, f in DEMO_LEVELS]
    else:
        from tests.conftest import city_features, write_geojson

        feats = city_features()
        files = [(lvl, write_geojson(tmp / f"{lvl}.geojson", feats[lvl]))
                 for lvl in ("district", "street", "community", "cell")]
    for level, path in files:
        layer = read_boundary_file(str(path), level, parent_field="parent" if level != "district" else None)
        with transaction(sessionmaker) as s:
            rep = import_layer(s, layer)
            if not rep.ok:
                raise SystemExit(f"{path}: {rep.errors[0].message}")


def _cells(session):
    """Current cells: ids, parent chain ids, households, geometries."""
    import shapely
    from sqlalchemy import func, select
    from sqlalchemy.orm import aliased

    from gridmap.boundaries.models import Area, AreaGeometry

    comm, street = aliased(Area), aliased(Area)
    rows = session.execute(
        select(Area.id, comm.id, street.id, street.parent_id, Area.households, func.ST_AsBinary(AreaGeometry.geom))
        .join(AreaGeometry, AreaGeometry.area_id == Area.id).join(comm, comm.id == Area.parent_id)
        .join(street, street.id == comm.parent_id)
        .where(Area.level == "cell", AreaGeometry.valid_to.is_(None))).all()
    ids = np.array([[r[0], r[1], r[2], r[3]] for r in rows], dtype=np.int64)
    hh = np.array([r[4] or 300 for r in rows], dtype=float)
    geoms = shapely.from_wkb([bytes(r[5]) for r in rows])
    return ids, hh, geoms


def random_points_in(geoms, rng):
    """One uniform random point inside each geometry (rejection sampling in its bbox)."""
    import shapely

    n = len(geoms)
    b = shapely.bounds(geoms)
    x = np.empty(n)
    y = np.empty(n)
    todo = np.arange(n)
    for _ in range(200):
        if not len(todo):
            break
        cx = rng.uniform(b[todo, 0], b[todo, 2])
        cy = rng.uniform(b[todo, 1], b[todo, 3])
        ok = shapely.contains_xy(geoms[todo], cx, cy)
        x[todo[ok]], y[todo[ok]] = cx[ok], cy[ok]
        todo = todo[~ok]
    if len(todo):
        p = shapely.point_on_surface(geoms[todo])
        x[todo], y[todo] = shapely.get_x(p), shapely.get_y(p)
    return np.round(x, 6), np.round(y, 6)


def load_cases(engine, sessionmaker, n: int, seed: int = 2026) -> float:
    """N synthetic cases in random cells (weighted by households), written with COPY; seconds taken."""
    from gridmap.accounts.service import create_user
    from gridmap.db import transaction
    from gridmap.incidents.models import STATUSES, Category

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    with transaction(sessionmaker) as s:
        cats = [Category(code=f"bench.{i}", name=name, kind="event", active=True)
                for i, name in enumerate(["暴露垃圾", "道路破损", "占道经营", "噪音扰民", "消防隐患", "路灯损坏"])]
        s.add_all(cats)
        s.flush()
        cat_ids = np.array([c.id for c in cats])
        create_user(s, "bench", "admin")
    with sessionmaker() as s:
        ids, hh, geoms = _cells(s)
    pick = rng.choice(len(ids), size=n, p=hh / hh.sum())
    lon, lat = (a.tolist() for a in random_points_in(geoms[pick], rng))
    status_p = {"dispatched": .3, "in_progress": .2, "handled": .05, "verifying": .05, "closed": .3,
                "evaluated": .05, "reported": .03, "filed": .02}
    statuses = rng.choice(list(status_p), size=n, p=list(status_p.values()))
    assert set(statuses) <= set(STATUSES)
    now = dt.datetime.now(UTC)
    age_days = rng.uniform(0, 365, n).tolist()
    deadline_days = rng.uniform(-5, 10, n).tolist()
    urgent = (rng.random(n) < 0.05).tolist()
    statuses = statuses.tolist()
    titles = ["路面破损，行人易绊倒", "楼道堆放杂物", "邻里噪音纠纷", "垃圾未及时清运", "违规占道经营", "路灯不亮"]
    cols = ["number", "source", "category_id", "title", "description", "status", "urgent", "supervised", "geom",
            "lon", "lat", "placement", "cell_id", "community_id", "street_id", "district_id", "snapped",
            "escalation_level", "reported_at", "deadline_at", "self_handled", "overdue", "extension_count",
            "extension_pending", "rework_count", "return_count", "version", "updated_at"]
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            # the rows reference existing categories and areas by construction: skip the per-row
            # foreign-key triggers (needs a superuser, as on the throwaway test cluster)
            try:
                cur.execute("SET session_replication_role = replica")
            except Exception:  # noqa: BLE001
                raw.rollback()
            with cur.copy(f"COPY cases ({', '.join(cols)}) FROM STDIN") as cp:
                for i in range(n):
                    c = ids[pick[i]]
                    t = titles[i % len(titles)]
                    running = statuses[i] in ("dispatched", "in_progress")
                    reported = now - dt.timedelta(days=age_days[i])
                    dl = reported + dt.timedelta(days=deadline_days[i]) if running else None
                    cp.write_row((f"B{i:08d}", "patrol", int(cat_ids[i % len(cat_ids)]), t, t, statuses[i],
                                  urgent[i], False, f"SRID=4326;POINT({lon[i]!r} {lat[i]!r})",
                                  lon[i], lat[i], "point", int(c[0]), int(c[1]), int(c[2]), int(c[3]),
                                  False, 0, reported, dl, False, bool(running and dl < now), 0, False, 0, 0, 1,
                                  now))
        raw.commit()
        with raw.cursor() as cur:
            cur.execute("RESET session_replication_role")
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - t0


def token_for(sessionmaker, username: str = "bench") -> str:
    from gridmap.accounts.service import create_token
    from gridmap.db import transaction

    with transaction(sessionmaker) as s:
        return create_token(s, username, name="pageweight")


def views(session) -> dict[str, tuple[float, float, float, float]]:
    """worker: the busiest cell's bbox (padded a little); city: all districts."""
    from sqlalchemy import func, select

    from gridmap.boundaries.models import Area, AreaGeometry
    from gridmap.incidents.models import Case

    busiest = session.execute(select(Case.cell_id, func.count()).group_by(Case.cell_id)
                              .order_by(func.count().desc()).limit(1)).first()
    ext = [func.ST_XMin(func.ST_Extent(AreaGeometry.geom)), func.ST_YMin(func.ST_Extent(AreaGeometry.geom)),
           func.ST_XMax(func.ST_Extent(AreaGeometry.geom)), func.ST_YMax(func.ST_Extent(AreaGeometry.geom))]
    cell = session.execute(select(*ext).where(AreaGeometry.area_id == busiest[0],
                                              AreaGeometry.valid_to.is_(None))).one()
    city = session.execute(select(*ext).join(Area, Area.id == AreaGeometry.area_id)
                           .where(Area.level == "district", AreaGeometry.valid_to.is_(None))).one()
    pad = 0.1 * max(cell[2] - cell[0], cell[3] - cell[1])
    return {"worker": (cell[0] - pad, cell[1] - pad, cell[2] + pad, cell[3] + pad), "city": tuple(city)}


# ----------------------------------------------------------------------------- serving

def bench_page():
    from flask import request

    from gridmap.web import maps

    bounds = tuple(float(v) for v in request.args["bounds"].split(","))
    m = maps.make_map(bounds=bounds, basemap="none")
    if request.args.get("levels") == "cell":
        maps.add_cells_layer(m)
    else:  # what an overview page does: districts, streets, communities, cells as one zooms in
        maps.add_cells_layer(m, levels=maps.LEVELS_BY_ZOOM)
    maps.add_cases_layer(m, case_url="/cases/{id}")
    return maps.render_page(m, title="pageweight")


def serve(database_url: str, instance: Path):
    from werkzeug.serving import make_server

    from gridmap import create_app

    app = create_app({"GRIDMAP_DATABASE_URL": database_url, "INSTANCE_PATH": str(instance),
                      "SECRET_KEY": "bench", "GRIDMAP_BASEMAP": "none"})
    if "geo_api" not in app.blueprints:
        from gridmap.web.geo_api import bp

        app.register_blueprint(bp)
    app.add_url_rule("/_bench/map", "bench_map", bench_page)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{srv.server_port}", srv


# ----------------------------------------------------------------------------- measuring

def measure(browser, base_url: str, path: str, *, token: str | None = None, cookie: str | None = None,
            timeout_ms: int = 120_000) -> dict:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, service_workers="block")
    origin = urlsplit(base_url).netloc
    if cookie:
        name, _, value = cookie.partition("=")
        ctx.add_cookies([{"name": name, "value": value, "url": base_url}])
    foreign: list[str] = []

    def route(r):
        if urlsplit(r.request.url).netloc == origin:
            headers = dict(r.request.headers)
            if token:
                headers["authorization"] = f"Bearer {token}"
            r.continue_(headers=headers)
        else:  # the benchmark measures the app alone: the network beyond it is closed
            foreign.append(r.request.url)
            r.abort("internetdisconnected")

    ctx.route("**/*", route)
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    urls: dict[str, str] = {}
    sizes: dict[str, int] = {}
    cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
    cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], int(e["encodedDataLength"])))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base_url + path, wait_until="commit", timeout=timeout_ms)
    page.wait_for_function(READY_JS, timeout=timeout_ms, polling=10)
    first_render_ms = page.evaluate("performance.now()")
    try:
        page.wait_for_load_state("networkidle", timeout=timeout_ms)
    except Exception:  # noqa: BLE001 - figures are still worth printing
        pass
    page.wait_for_timeout(500)
    layers = page.evaluate("""() => window.GridmapLayers ? Object.fromEntries(Object.entries(GridmapLayers.all())
        .map(([k, h]) => [k, h.lastData && (h.lastData.count ?? (Array.isArray(h.lastData) ? h.lastData.length : null)),
        ])) : {}""")
    aggregated = page.evaluate("""() => { const h = window.GridmapLayers && GridmapLayers.get('cases');
        return h && h.lastData ? !!h.lastData.aggregated : null; }""")
    total = sum(sizes.values())
    api = sum(v for k, v in sizes.items() if "/api/" in urls.get(k, ""))
    ctx.close()
    return {"path": path, "bytes": total, "api_bytes": api, "requests": len(sizes),
            "first_render_ms": round(first_render_ms), "layers": layers, "aggregated": aggregated,
            "foreign": foreign, "errors": errors}


def print_result(view: str, r: dict) -> None:
    print(f"{view:8s} {r['bytes'] / 1024:9.1f} KiB total, {r['api_bytes'] / 1024:8.1f} KiB API data, "
          f"{r['requests']:3d} requests, first render {r['first_render_ms']:6d} ms; features {r['layers']}"
          + (" (cases aggregated per cell)" if r["aggregated"] else ""))
    if r["foreign"]:
        print(f"         ! requests to other hosts (blocked): {r['foreign'][:3]}")
    if r["errors"]:
        print(f"         ! page errors: {r['errors'][:3]}")
    print(f"         {r['path']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=200_000)
    ap.add_argument("--city", choices=("demo", "test"), default="demo")
    ap.add_argument("--path", action="append", help="page path(s) to measure ({worker_bbox}, {city_bbox})")
    ap.add_argument("--base-url", help="measure a running server instead (no data is loaded)")
    ap.add_argument("--token", help="API token sent as Authorization: Bearer to the app's host")
    ap.add_argument("--cookie", help="NAME=VALUE session cookie for the app's host")
    ap.add_argument("--repeat", type=int, default=2, help="loads per view (the best is printed)")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    drop = srv = None
    token = args.token
    try:
        if args.base_url:
            if not args.path:
                ap.error("--base-url needs --path")
            base = args.base_url.rstrip("/")
            paths = {f"page{i + 1}": p for i, p in enumerate(args.path)}
        else:
            import tempfile

            from gridmap import migrate
            from gridmap.db import make_engine, make_sessionmaker

            server = os.environ.get("GRIDMAP_BENCH_DATABASE_URL") or os.environ.get("GRIDMAP_TEST_DATABASE_URL")
            if not server:
                ap.error("set GRIDMAP_BENCH_DATABASE_URL to a PostGIS server (e.g. `tools/pg_test_cluster.sh | tail -1`)")
            url, drop = create_database(server)
            tmp = Path(tempfile.mkdtemp(prefix="gm-pageweight-"))
            engine = make_engine(url)
            migrate.upgrade(engine)
            sm = make_sessionmaker(engine)
            t = time.perf_counter()
            load_boundaries(sm, args.city, tmp)
            print(f"{args.city} city loaded in {time.perf_counter() - t:.1f} s")
            secs = load_cases(engine, sm, args.cases)
            print(f"{args.cases:,} cases written with COPY in {secs:.1f} s ({args.cases / secs:,.0f}/s)")
            token = token or token_for(sm)
            with sm() as s:
                v = views(s)
            engine.dispose()
            base, srv = serve(url, tmp / "instance")
            fmt = {f"{k}_bbox": ",".join(f"{x:.6f}" for x in b) for k, b in v.items()}
            if args.path:
                paths = {f"page{i + 1}": p.format(**fmt) for i, p in enumerate(args.path)}
            else:
                paths = {k: f"/_bench/map?bounds={fmt[f'{k}_bbox']}" for k in ("worker", "city")}
                paths["city-cells"] = paths["city"] + "&levels=cell"  # every cell drawn at city scale
        if not os.path.exists(CHROMIUM):
            raise SystemExit(f"no Chromium at {CHROMIUM}: tools/sysdeps.sh browser")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            print(f"page weight and time to first render ({args.repeat} loads per view, best shown; cache off):")
            for view, path in paths.items():
                runs = [measure(browser, base, path, token=token, cookie=args.cookie) for _ in range(args.repeat)]
                print_result(view, min(runs, key=lambda r: r["first_render_ms"]))
            browser.close()
    finally:
        if srv is not None:
            srv.shutdown()
        if drop is not None:
            if args.keep_db:
                print(f"database kept: {url}")
            else:
                drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
