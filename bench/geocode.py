#!/usr/bin/env python
"""Benchmark: bulk point-in-cell lookup.

gridmap's CellIndex.locate (STRtree + edge rule + snapping) against two named baselines in the
same run, on the same points and cells:
  * geopandas.sjoin(points, cells, predicate="within") — the usual GeoPandas way (no edge rule:
    points on a shared edge get no cell)
  * a PostGIS join (points COPYed into a table, ST_Intersects against GiST-indexed cells,
    min(code) per point for the same edge rule), when GRIDMAP_BENCH_DATABASE_URL is set.
Cells: 10,000 irregular (Voronoi) cells and 10,000 regular cells over the Zhoushan area.
Points: 1,000,000 uniform points, GPS-like rounded to 6 decimals. Prints points/s and ratios.
Usage: python bench/geocode.py [--points N] [--cells N] [--no-postgis]   (or `make bench`)
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time

import numpy as np
import shapely

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from gridmap.boundaries.lookup import CellIndex  # noqa: E402

BOUNDS = (121.9, 29.9, 122.5, 30.3)


def voronoi_cells(n, rng):
    x0, y0, x1, y1 = BOUNDS
    pts = shapely.multipoints(np.c_[rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])
    env = shapely.box(*BOUNDS)
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=env))
    cells = shapely.intersection(cells, env)
    return cells[~shapely.is_empty(cells)]


def regular_cells(n):
    k = int(round(np.sqrt(n)))
    xs = np.linspace(BOUNDS[0], BOUNDS[2], k + 1)
    ys = np.linspace(BOUNDS[1], BOUNDS[3], k + 1)
    return np.array([shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(k) for i in range(k)])


def timed(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_gridmap(cells, codes, lon, lat):
    t = time.perf_counter()
    idx = CellIndex(codes, codes, cells)
    idx._bucket_table()
    build = time.perf_counter() - t
    best, cell = timed(lambda: idx.locate(lon, lat, snap_m=0).cell)
    return best, cell, build, float((idx._buckets[-1] >= 0).mean())


def bench_sjoin(cells, codes, lon, lat):
    import geopandas as gpd

    gc = gpd.GeoDataFrame({"code": codes}, geometry=cells, crs=4326)

    def run():
        gp = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
        return gpd.sjoin(gp, gc, predicate="within", how="inner")

    return timed(run)


def bench_postgis(url, cells, codes, lon, lat):
    import psycopg

    url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_cells; DROP TABLE IF EXISTS bench_pts")
        conn.execute("CREATE TABLE bench_cells (code text, geom geometry(Polygon, 4326))")
        with conn.cursor().copy("COPY bench_cells (code, geom) FROM STDIN") as cp:
            for c, wkb in zip(codes, shapely.to_wkb(cells, hex=True, include_srid=False)):
                cp.write_row((c, f"SRID=4326;{shapely.to_wkt(shapely.from_wkb(wkb), rounding_precision=-1)}"))
        conn.execute("CREATE INDEX ON bench_cells USING gist (geom); ANALYZE bench_cells")
        t = time.perf_counter()
        conn.execute("CREATE TABLE bench_pts (id int, geom geometry(Point, 4326))")
        buf = io.StringIO()
        hexes = shapely.to_wkb(shapely.points(lon, lat), hex=True, include_srid=True, flavor="extended") \
            if "flavor" in shapely.to_wkb.__code__.co_varnames else None
        if hexes is None:
            pts = shapely.set_srid(shapely.points(lon, lat), 4326)
            hexes = shapely.to_wkb(pts, hex=True, include_srid=True)
        for i, h in enumerate(hexes):
            buf.write(f"{i}\t{h}\n")
        with conn.cursor().copy("COPY bench_pts (id, geom) FROM STDIN") as cp:
            cp.write(buf.getvalue())
        conn.execute("ANALYZE bench_pts")
        load = time.perf_counter() - t
        t = time.perf_counter()
        n = conn.execute(
            "SELECT count(*) FROM (SELECT p.id, min(c.code) FROM bench_pts p "
            "JOIN bench_cells c ON ST_Intersects(c.geom, p.geom) GROUP BY p.id) s").fetchone()[0]
        join = time.perf_counter() - t
        # the fastest plan stack.md measured: cells outer, a GiST index on the points
        t = time.perf_counter()
        conn.execute("CREATE INDEX ON bench_pts USING gist (geom)")
        idx = time.perf_counter() - t
        t = time.perf_counter()
        n2 = conn.execute(
            "SELECT count(*) FROM (SELECT p.id, min(c.code) FROM bench_cells c CROSS JOIN LATERAL "
            "(SELECT id FROM bench_pts p WHERE ST_Intersects(c.geom, p.geom)) p GROUP BY p.id) s").fetchone()[0]
        lateral = time.perf_counter() - t
        conn.execute("DROP TABLE bench_cells; DROP TABLE bench_pts")
    return load, join, n, idx, lateral, n2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--cells", type=int, default=10_000)
    ap.add_argument("--no-postgis", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(42)
    lon = np.round(rng.uniform(BOUNDS[0], BOUNDS[2], args.points), 6)
    lat = np.round(rng.uniform(BOUNDS[1], BOUNDS[3], args.points), 6)
    url = None if args.no_postgis else os.environ.get("GRIDMAP_BENCH_DATABASE_URL")
    print(f"{args.points:,} points, {args.cells:,} cells, shapely {shapely.__version__}, GEOS {shapely.geos_version_string}")
    for label, cells in (("irregular (Voronoi)", voronoi_cells(args.cells, rng)), ("regular", regular_cells(args.cells))):
        codes = np.array([f"C{i:06d}" for i in range(len(cells))], dtype=object)
        t_gm, cell, build, resolved = bench_gridmap(cells, codes, lon, lat)
        t_sj, sj = bench_sjoin(cells, codes, lon, lat)
        n = args.points
        print(f"\n{label} cells ({len(cells):,}):")
        print(f"  gridmap CellIndex.locate : {n / t_gm:>12,.0f} pts/s  ({t_gm:.2f} s, {int((cell >= 0).sum()):,} located, edge rule applied)")
        print(f"    index build {build:.2f} s once per boundary version ({resolved:.0%} of buckets resolve without geometry)")
        print(f"  geopandas.sjoin(within)  : {n / t_sj:>12,.0f} pts/s  ({t_sj:.2f} s, {len(sj):,} located, edge points dropped)"
              f"   ratio gridmap/sjoin = {t_sj / t_gm:.2f}x")
        if url:
            load, join, located, idx, lateral, located2 = bench_postgis(url, cells, codes, lon, lat)
            print(f"  PostGIS join, planner's plan (ST_Intersects + min(code)): {n / join:>12,.0f} pts/s  "
                  f"({join:.2f} s join, {load:.2f} s to COPY points, {located:,} located)   "
                  f"ratio gridmap/PostGIS = {join / t_gm:.2f}x")
            print(f"  PostGIS join, cells-outer LATERAL + points GiST:        {n / lateral:>12,.0f} pts/s  "
                  f"({lateral:.2f} s join, +{idx:.2f} s index, {located2:,} located)   "
                  f"ratio gridmap/PostGIS = {lateral / t_gm:.2f}x")
    print("\nOne core: shapely's STRtree and numpy run single-threaded here.")


if __name__ == "__main__":
    main()
