#!/usr/bin/env python
"""Benchmark: the base register at city scale, in PostGIS.

1. Import of --persons residents (default 1,000,000) end to end through
   ``gridmap.registry.imports.import_file`` (read the CSV, check every row: GB 11643 check digit,
   dates, phones, tags; HMAC digests and AES-GCM ciphertexts; households resolved by code; COPY in
   batches) against the named baseline: a raw ``COPY … FROM STDIN (FORMAT csv)`` of the same file
   into a plain table with no index (the floor of any import). Prints both times and the ratio.
2. The summary per cell (``gridmap.registry.service.summary(level="cell")``: addresses, buildings,
   households, persons, organisations and persons per tag for every cell) on --cells cells
   (default 85,000, Zhejiang's count) against the named baseline of one bare
   ``SELECT cell_id, count(*) FROM registry_persons GROUP BY cell_id``. Prints ms and the ratio.

Set-up (not measured): a throwaway database on GRIDMAP_BENCH_DATABASE_URL (else
GRIDMAP_TEST_DATABASE_URL), migrated; a regular grid of cells (edges from np.linspace, 100 cells a
community, 10 communities a street, one district) COPYed in; one address, one building and
--households-per-cell households per cell COPYed in. Dropped at the end.
Usage: python bench/registry.py [--persons N] [--cells N]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

BOUNDS = (121.9, 29.9, 122.5, 30.3)


def make_database():
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = os.environ.get("GRIDMAP_BENCH_DATABASE_URL") or os.environ.get("GRIDMAP_TEST_DATABASE_URL")
    if not base:
        sys.exit("set GRIDMAP_BENCH_DATABASE_URL (or GRIDMAP_TEST_DATABASE_URL) to a PostGIS server")
    url = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"gm_bench_registry_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng = create_engine(url.set(database=name))
    with eng.begin() as c:
        c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    eng.dispose()
    return admin, name, url.set(database=name).render_as_string(hide_password=False)


def grid_areas(session, n_cells: int):
    """District → streets → communities (100 cells each) → cells, a regular grid; returns cell ids."""
    from gridmap.boundaries.models import Area, AreaGeometry
    from gridmap.db import bulk_insert, utcnow

    nx = int(np.ceil(np.sqrt(n_cells * 1.5)))
    ny = int(np.ceil(n_cells / nx))
    xs = np.linspace(BOUNDS[0], BOUNDS[2], nx + 1)
    ys = np.linspace(BOUNDS[1], BOUNDS[3], ny + 1)
    now = utcnow()
    areas = [{"id": 1, "level": "district", "code": "330999", "name": "基准区", "parent_id": None, "kind": "district",
              "households": None, "population": None, "created_at": now, "retired_at": None}]
    geoms = []
    cell_ids = []
    next_id = 2
    comm_of: dict[int, int] = {}
    street_of: dict[int, int] = {}
    k = 0
    for j in range(ny):
        for i in range(nx):
            if k >= n_cells:
                break
            comm_no, street_no = k // 100, k // 1000
            if street_no not in street_of:
                street_of[street_no] = next_id
                areas.append({"id": next_id, "level": "street", "code": f"330999{street_no + 1:03d}",
                              "name": f"街道{street_no + 1}", "parent_id": 1, "kind": "street", "households": None,
                              "population": None, "created_at": now, "retired_at": None})
                next_id += 1
            if comm_no not in comm_of:
                comm_of[comm_no] = next_id
                areas.append({"id": next_id, "level": "community",
                              "code": f"330999{street_no + 1:03d}{comm_no % 10 + 1:03d}{comm_no // 10000}",
                              "name": f"社区{comm_no + 1}", "parent_id": street_of[street_no], "kind": "residents",
                              "households": None, "population": None, "created_at": now, "retired_at": None})
                next_id += 1
            cid = next_id
            next_id += 1
            areas.append({"id": cid, "level": "cell", "code": f"C{k:07d}", "name": f"网格{k}",
                          "parent_id": comm_of[comm_no], "kind": "base", "households": 300, "population": 800,
                          "created_at": now, "retired_at": None})
            x0, x1, y0, y1 = float(xs[i]), float(xs[i + 1]), float(ys[j]), float(ys[j + 1])
            geoms.append({"area_id": cid, "version": 1, "area_m2": 1.0, "valid_from": now, "valid_to": None,
                          "geom": f"SRID=4326;MULTIPOLYGON((({x0!r} {y0!r},{x1!r} {y0!r},{x1!r} {y1!r},"
                                  f"{x0!r} {y1!r},{x0!r} {y0!r})))"})
            cell_ids.append(cid)
            k += 1
    bulk_insert(session, Area.__table__, areas)
    bulk_insert(session, AreaGeometry.__table__, geoms)
    return np.array(cell_ids), xs, ys, nx


def register_rows(session, cell_ids, xs, ys, nx, per_cell: int):
    """One address and one building per cell, ``per_cell`` households each (COPY, not measured)."""
    from gridmap.db import bulk_insert, utcnow
    from gridmap.registry.models import Address, Building, Household

    now = utcnow()
    n = len(cell_ids)
    k = np.arange(n)
    lon = (xs[k % nx] + xs[k % nx + 1]) / 2
    lat = (ys[k // nx] + ys[k // nx + 1]) / 2
    from sqlalchemy import select

    from gridmap.boundaries.models import Area

    parent = dict(session.execute(select(Area.id, Area.parent_id)).all())
    addr, bld, hh = [], [], []
    for p, cid in enumerate(cell_ids.tolist()):
        comm = parent[cid]
        street = parent[comm]
        areas = {"cell_id": cid, "community_id": comm, "street_id": street, "district_id": 1}
        addr.append({"id": p + 1, "code": f"A{p:07d}", "address": f"基准路{p}号", "normalized": f"基准路{p}号",
                     "road": "基准路", "number": str(p), "building": None, "unit": None, "room": None,
                     "lon": float(lon[p]), "lat": float(lat[p]), "cell_code": f"C{p:07d}", "updated_at": now, **areas})
        bld.append({"id": p + 1, "code": f"B{p:07d}", "address_id": p + 1, "name": None, "floors": 6, "kind": "住宅",
                    "footprint": None, "updated_at": now, **areas})
        for h in range(per_cell):
            hh.append({"id": len(hh) + 1, "code": f"H{p:07d}{h:02d}", "address_id": p + 1, "building_id": p + 1,
                       "room": str(h), "size": 3, "use": "own", "updated_at": now, **areas})
    bulk_insert(session, Address.__table__, addr)
    bulk_insert(session, Building.__table__, bld)
    bulk_insert(session, Household.__table__, hh)
    from sqlalchemy import text

    for t in ("addresses", "registry_buildings", "registry_households", "areas", "area_geometries"):
        session.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"))
    return len(hh)


def persons_file(path: str, n: int, n_households: int, per_cell: int, rng) -> None:
    """``n`` residents with well-formed synthetic identity numbers (vectorized check digits)."""
    from gridmap.registry.pii import _ID_CHECK, _ID_WEIGHTS

    born = np.datetime64("1930-01-01") + rng.integers(0, 365 * 90, n).astype("timedelta64[D]")
    ymd = np.char.replace(np.datetime_as_string(born, unit="D"), "-", "")
    # region "3" + 5 digits, birth date, 3 order digits: (region, order) unique for up to 10^8 residents
    first = np.char.add(np.char.add(np.char.add("3", np.char.zfill((np.arange(n) // 1000 % 100000).astype(str), 5)),
                                    ymd), np.char.zfill((np.arange(n) % 1000).astype(str), 3))
    digits = np.frombuffer("".join(first.tolist()).encode(), dtype=np.uint8).reshape(n, 17).astype(np.int64) - 48
    check = np.array(list(_ID_CHECK))[(digits * np.array(_ID_WEIGHTS)).sum(axis=1) % 11]
    ids = np.char.add(first, check)
    gender = np.where(digits[:, 16] % 2 == 1, "男", "女")
    surnames = np.array(list("王李张刘陈杨黄赵吴周"))
    given = np.array(["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋"])
    names = np.char.add(surnames[rng.integers(0, 10, n)], given[rng.integers(0, 10, n)])
    phones = np.char.add("13", np.char.zfill(rng.integers(0, 10**9, n).astype(str), 9))
    hh = rng.integers(0, n_households, n)
    hcode = np.char.add(np.char.add("H", np.char.zfill((hh // per_cell).astype(str), 7)),
                        np.char.zfill((hh % per_cell).astype(str), 2))
    tags = np.where(rng.random(n) < 0.1, np.array(["独居老人", "低保", "残疾人"])[rng.integers(0, 3, n)], "")
    birth = np.datetime_as_string(born, unit="D")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("id_number,name,phone,household_code,birth_date,gender,tags\n")
        for chunk in range(0, n, 100_000):
            sl = slice(chunk, chunk + 100_000)
            fh.write("\n".join(",".join(t) for t in zip(ids[sl], names[sl], phones[sl], hcode[sl], birth[sl],
                                                         gender[sl], tags[sl])) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--cells", type=int, default=85_000)
    ap.add_argument("--households-per-cell", type=int, default=5)
    args = ap.parse_args()
    from sqlalchemy import text

    from gridmap import migrate
    from gridmap.db import make_engine, make_sessionmaker, transaction
    from gridmap.registry.imports import import_file
    from gridmap.registry.pii import PiiKeys
    from gridmap.registry.service import summary

    rng = np.random.default_rng(1)
    admin, name, url = make_database()
    try:
        eng = make_engine(url)
        migrate.upgrade(eng)
        sm = make_sessionmaker(eng)
        t = time.perf_counter()
        with transaction(sm) as s:
            cell_ids, xs, ys, nx = grid_areas(s, args.cells)
            n_hh = register_rows(s, cell_ids, xs, ys, nx, args.households_per_cell)
        print(f"set-up: {len(cell_ids)} cells, {len(cell_ids)} addresses and buildings, {n_hh} households "
              f"({time.perf_counter() - t:.1f} s)")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "persons.csv")
            t = time.perf_counter()
            persons_file(path, args.persons, n_hh, args.households_per_cell, rng)
            print(f"generated {args.persons} residents ({os.path.getsize(path) / 1e6:.0f} MB, "
                  f"{time.perf_counter() - t:.1f} s)")
            # baseline: raw COPY of the same file into a plain table
            with eng.begin() as c:
                c.execute(text("CREATE TABLE raw_persons (id_number text, name text, phone text, household_code text, "
                               "birth_date text, gender text, tags text)"))
            t = time.perf_counter()
            with eng.begin() as c:
                raw = c.connection.driver_connection
                with raw.cursor() as cur, open(path, "rb") as fh:
                    with cur.copy("COPY raw_persons FROM STDIN (FORMAT csv, HEADER true)") as cp:
                        while data := fh.read(1 << 20):
                            cp.write(data)
            t_copy = time.perf_counter() - t
            keys = PiiKeys("bench-key-" + "k" * 40)
            t = time.perf_counter()
            prof = None
            if os.environ.get("BENCH_PROFILE"):
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
            with transaction(sm) as s:
                rep = import_file(s, "persons", path, keys=keys, batch=20_000)
            if prof:
                import pstats

                prof.disable()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            t_imp = time.perf_counter() - t
        print(f"raw COPY (baseline):        {t_copy:8.1f} s  {args.persons / t_copy:10,.0f} rows/s")
        print(f"import_file end to end:     {t_imp:8.1f} s  {args.persons / t_imp:10,.0f} rows/s  "
              f"({rep.inserted} inserted, {len(rep.bad)} bad)")
        print(f"ratio import / raw COPY:    {t_imp / t_copy:8.1f} ×")
        with sm() as s:
            for _ in range(2):  # warm
                t = time.perf_counter()
                res = summary(s, "cell")
                t_sum = time.perf_counter() - t
            t = time.perf_counter()
            base = s.execute(text("SELECT cell_id, count(*) FROM registry_persons GROUP BY cell_id")).all()
            t_base = time.perf_counter() - t
        print(f"summary per cell ({res['areas']} cells, {res['totals']['persons']} persons): {t_sum * 1000:8.0f} ms")
        print(f"baseline GROUP BY persons only ({len(base)} rows):            {t_base * 1000:8.0f} ms")
        print(f"ratio summary / one GROUP BY:  {t_sum / t_base:6.1f} ×")
        eng.dispose()
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
