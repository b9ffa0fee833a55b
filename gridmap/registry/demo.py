"""The demo's base register: a SYNTHETIC 一标三实 for Zhoushan, generated from a seed at run time.

Owns: what the demo register holds and how it is made. Nothing here is real: roads are named
after the synthetic communities, residents have generated names, well-formed but fake identity
numbers (valid GB 11643 check digits for birth dates and district codes of Zhoushan) and fake
phones; organisations get generated unified social credit codes with valid check characters.

Scale (so that ``gridmap demo`` stays fast): the communities in ``FULL_COMMUNITIES`` (中昌社区,
whose first cell is the demo worker ``wangge``'s) get every household of each cell's household
figure (≈2,450 households in 8 cells); every other cell gets a sample (one building with two
households), about 6,400 households and 16,000 residents in all instead of the city's 534,000
households. Every community gets addresses on its named roads and a few organisations (shops,
a school and a factory per street, a port). The register is written as CSV files and loaded
through the ordinary import (gridmap.registry.imports), so the demo exercises the real path.
"""
from __future__ import annotations

import csv
import datetime as dt
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import shapely
from sqlalchemy import select

from gridmap.boundaries.lookup import get_index
from gridmap.boundaries.models import Area
from gridmap.db import transaction
from gridmap.registry import pii

FULL_COMMUNITIES = ("330903003003",)
SAMPLE_HOUSEHOLDS = 2  # per cell elsewhere
SEED = 2026
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余叶")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰海波建国志红梅文斌晓燕鹏飞宇浩然欣怡子涵")
ROAD_SUFFIX = ("路", "街", "一路", "二路")
GENERIC_ROADS = ("人民路", "解放路", "和平路", "海港路", "新桥路", "东海路", "环城路", "昌国路", "朝阳路",
                 "文化路", "育才路", "渔港路", "沿港路", "建设路", "兴舟路", "滨海大道", "桃花路", "金岛路")
SHOPS = ("便利店", "海鲜排档", "理发店", "药店", "水果店", "五金店", "早餐店", "渔具店")
USCC = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def load_registry_demo(sessionmaker, *, keys: pii.PiiKeys | None = None, instance_path: str | None = None,
                       echo: Callable[[str], None] = print) -> str:
    """Generate and import the synthetic register; returns the demo's one-line summary."""
    from gridmap.registry.imports import import_file

    keys = keys or _keys(instance_path)
    with sessionmaker() as s:
        idx = get_index(s)
        areas = {a.code: a for a in s.scalars(select(Area))}
    if not len(idx):
        return "registry: no cells"
    rng = np.random.default_rng(SEED)
    with tempfile.TemporaryDirectory(prefix="gridmap-demo-registry-") as tmp:
        files = _generate(Path(tmp), idx, areas, rng)
        counts = {}
        with transaction(sessionmaker) as s:
            for kind in ("addresses", "buildings", "households", "persons", "organisations"):
                echo(f"registry: importing synthetic {kind}")
                rep = import_file(s, kind, files[kind], keys=keys)
                counts[kind] = rep.inserted + rep.updated + rep.unchanged
                if rep.bad:
                    echo(f"registry: {len(rep.bad)} generated {kind} rows refused, e.g. line {rep.bad[0][0]}: "
                         f"{rep.bad[0][1]}")
    return ("registry (SYNTHETIC, generated from seed {seed}): {addresses} addresses, {buildings} buildings, "
            "{households} households, {persons} residents, {organisations} organisations; full households in "
            "{full}, a sample elsewhere".format(seed=SEED, full=", ".join(FULL_COMMUNITIES), **counts))


def _keys(instance_path: str | None) -> pii.PiiKeys:
    try:
        from flask import current_app, has_app_context

        if has_app_context():
            return pii.keys_from_config(current_app.config, current_app.instance_path)
    except ImportError:  # pragma: no cover
        pass
    return pii.keys_from_config({}, instance_path or tempfile.gettempdir())


def _points_in(geom, n: int, rng) -> np.ndarray:
    """``n`` random points inside ``geom`` (rejection sampling, vectorized per round)."""
    x0, y0, x1, y1 = geom.bounds
    out = np.empty((0, 2))
    for _ in range(50):
        k = max(n * 3, 16)
        xy = np.column_stack([rng.uniform(x0, x1, k), rng.uniform(y0, y1, k)])
        inside = shapely.contains_xy(geom, xy[:, 0], xy[:, 1])
        out = np.vstack([out, xy[inside]])
        if len(out) >= n:
            return np.round(out[:n], 7)
    c = shapely.point_on_surface(geom)
    return np.tile([[c.x, c.y]], (n, 1))


def _person_ids(region: str, births: list[dt.date], males: np.ndarray, rng, taken: set) -> list[str]:
    out = []
    for born, male in zip(births, males):
        while True:
            seq = int(rng.integers(0, 500)) * 2 + (1 if male else 0)
            first = f"{region}{born:%Y%m%d}{seq:03d}"
            idn = first + pii.id_check_digit(first)
            if idn not in taken:
                taken.add(idn)
                out.append(idn)
                break
    return out


def _credit(rng, head: str, region: str) -> str:
    body = head + region + "".join(USCC[int(i)] for i in rng.integers(0, 31, 9))
    return body + pii.credit_check_char(body)


def _generate(tmp: Path, idx, areas: dict, rng) -> dict[str, Path]:
    today = dt.date.today()
    rows = {k: [] for k in ("addresses", "buildings", "households", "persons", "organisations")}
    taken: set[str] = set()
    comm_codes = idx.hierarchy["community"][0]
    roads_of: dict[str, list[str]] = {}
    door = {}
    for k in range(len(idx)):
        cell_code, comm = str(idx.codes[k]), comm_codes[k]
        comm_area, cell_area = areas.get(comm), areas.get(cell_code)
        if comm_area is None or cell_area is None:
            continue
        street = areas.get(comm[:9])
        district = areas.get(comm[:6])
        stem = comm_area.name.replace("社区", "").replace("村", "")[:3] or "海"
        if comm not in roads_of:
            roads_of[comm] = [stem + s for s in ROAD_SUFFIX[: 2 + int(rng.integers(0, 3))]] + \
                             [GENERIC_ROADS[int(rng.integers(len(GENERIC_ROADS)))]]
        prefix = f"{district.name if district else ''}{street.name if street else ''}"
        full = comm in FULL_COMMUNITIES
        n_hh = int(cell_area.households or 300) if full else SAMPLE_HOUSEHOLDS
        per_bldg = 24 if full else SAMPLE_HOUSEHOLDS
        n_bldg = max(1, -(-n_hh // per_bldg))
        pts = _points_in(idx.geoms[k], n_bldg, rng)
        made = 0
        for b in range(n_bldg):
            road = roads_of[comm][b % len(roads_of[comm])]
            door[road] = door.get(road, 0) + int(rng.integers(1, 4))
            acode = f"A{cell_code}{b:03d}"
            rows["addresses"].append((acode, f"{prefix}{road}{door[road]}号", pts[b, 0], pts[b, 1]))
            bcode = f"B{cell_code}{b:03d}"
            floors = int(rng.integers(4, 12)) if full else int(rng.integers(2, 7))
            rows["buildings"].append((bcode, acode, f"{road}{door[road]}号楼", floors, "住宅"))
            for h in range(min(per_bldg, n_hh - made)):
                made += 1
                hcode = f"H{cell_code}{b:03d}{h:02d}"
                unit, rest = divmod(h, max(per_bldg // 2, 1))
                room = f"{unit + 1}单元{rest // 2 + 1}0{rest % 2 + 1}"
                use = ("own", "rent", "vacant")[int(rng.choice(3, p=[0.75, 0.2, 0.05]))]
                size = 0 if use == "vacant" else int(rng.choice([1, 2, 3, 4, 5], p=[0.2, 0.3, 0.25, 0.15, 0.1]))
                rows["households"].append((hcode, acode, room, size, use))
                if not size:
                    continue
                ages = [int(rng.integers(28, 88))] + [int(rng.integers(0, 90)) for _ in range(size - 1)]
                males = rng.random(size) < 0.5
                births = [today.replace(year=today.year - a, month=1, day=1) + dt.timedelta(days=int(rng.integers(0, 365)))
                          for a in ages]
                births = [min(b_, today - dt.timedelta(days=1)) for b_ in births]
                region = str(district.code) if district else "330902"
                ids = _person_ids(region, births, males, rng, taken)
                surname = SURNAMES[int(rng.integers(len(SURNAMES)))]
                for p in range(size):
                    name = (surname if p == 0 or rng.random() < 0.6 else SURNAMES[int(rng.integers(len(SURNAMES)))]) + \
                        "".join(GIVEN[int(i)] for i in rng.integers(0, len(GIVEN), 1 + int(rng.random() < 0.7)))
                    tags = []
                    age = ages[p]
                    if age >= 70 and size == 1:
                        tags.append("独居老人")
                    if rng.random() < 0.03:
                        tags.append("低保")
                    if rng.random() < 0.02:
                        tags.append("残疾人")
                    if age < 16 and use == "own" and rng.random() < 0.08:
                        tags.append("留守儿童")
                    if age >= 18 and rng.random() < 0.004:
                        tags.append(["社区矫正", "刑满释放", "精神障碍"][int(rng.integers(3))])
                    if males[p] and age > 40 and rng.random() < 0.03:
                        tags.append("退役军人")
                    phone = f"1{int(rng.choice([3, 5, 7, 8, 9]))}{int(rng.integers(0, 10**9)):09d}" \
                        if age >= 16 and rng.random() < 0.85 else ""
                    residence = "流动" if use == "rent" and rng.random() < 0.7 else ("境外" if rng.random() < 0.01
                                                                                   else "户籍")
                    rows["persons"].append((ids[p], name, phone, hcode, births[p].isoformat(),
                                            "男" if males[p] else "女", ";".join(tags), residence))
        # organisations: a shop in every community's first cell, a school and a factory per street
        if cell_code.endswith("001"):
            region = str(district.code) if district else "330902"
            shop = SHOPS[int(rng.integers(len(SHOPS)))]
            rows["organisations"].append((_credit(rng, "92", region), f"{stem}{shop}", f"A{cell_code}000", "商铺",
                                          SURNAMES[int(rng.integers(len(SURNAMES)))] + "老板",
                                          f"13{int(rng.integers(0, 10**9)):09d}"))
            if comm.endswith("001"):
                rows["organisations"].append((_credit(rng, "12", region), f"{stem}小学", f"A{cell_code}000", "学校",
                                              "校办", f"0580{int(rng.integers(2000000, 8999999))}"))
                rows["organisations"].append((_credit(rng, "91", region), f"舟山{stem}水产加工有限公司",
                                              f"A{cell_code}000", "工厂", "厂办", f"0580{int(rng.integers(2000000, 8999999))}"))
    if rows["addresses"]:
        first = rows["addresses"][len(rows["addresses"]) // 2][0]
        rows["organisations"].append((_credit(rng, "91", "330900"), "舟山港综合保税码头有限公司（虚构）", first,
                                      "港口", "调度室", "05802000000"))
    headers = {"addresses": ("code", "address", "lon", "lat"),
               "buildings": ("code", "address_code", "name", "floors", "kind"),
               "households": ("code", "address_code", "room", "size", "use"),
               "persons": ("id_number", "name", "phone", "household_code", "birth_date", "gender", "tags", "residence"),
               "organisations": ("credit_code", "name", "address_code", "kind", "contact", "phone")}
    out = {}
    for kind, rs in rows.items():
        p = tmp / f"{kind}.csv"
        with open(p, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(headers[kind])
            w.writerows(rs)
        out[kind] = p
    return out
