"""Hot spots (Getis-Ord Gi*) on case counts per area, and the kernel-density grid of the heat view.

Owns:
- ``contiguity``: the queen contiguity of areas (two areas are neighbours when their boundaries
  share at least one point), found with a shapely STRtree ``intersects`` query and returned as a
  libpysal ``Graph`` (esda takes it as it takes a ``W``). This is the queen rule itself; unlike
  libpysal's vertex matching it also links cells that meet at a T-junction, and it is ~7× faster
  (on the Zhoushan demo's 1,968 cells both give the same 9,510 links). Areas with no neighbour at
  all (an island with one cell: Zhoushan's demo has 153) are linked to their nearest area in
  metres, both ways: Gi* of a lone area would otherwise compare the area with itself and come out
  "significant". Weights are cached per database, level, area set and boundary stamp
  (``boundaries.lookup.boundary_stamp``), so they are rebuilt only when boundaries change.
- ``hotspots``: counts per area in SQL (GROUP BY) (or, with ``measure="rate"``, cases per 1,000
  households: areas without a household figure are left out of the test and say so), then the
  local Gi* (esda ``G_Local(y, w, transform="B", star=True)``) and ONE conditional permutation
  test that gives both the significance and the direction (``local_gi``): with R permutations,
  ``ge`` = replications with Gi* ≥ the observed one and ``le`` = replications ≤ it (ties count on
  both sides, so a zero among zeros is in neither tail), p = min(1, 2·min(ge + 1, le + 1)/(R + 1))
  (two-sided, folded correctly) and the direction is "hot" when the observed Gi* lies in the upper
  tail (ge < le), "cold" when in the lower (le < ge). Then the Benjamini–Hochberg false-discovery-
  rate correction across all tested areas (``correction="fdr"``, the default; ``"none"`` to
  switch it off): ``q_value`` is the BH-adjusted p-value, and an area is significant at level α
  when q ≤ α, which is BH's step-up rule at α (our own 10 lines; esda's ``fdr`` returns one
  cut-off per α and falls back to Bonferroni when nothing passes). Classes: hot/cold at 99 %
  (q ≤ 0.01), 95 % (≤ 0.05), 90 % (≤ 0.10). An area with no cases is never a hot spot (it stays
  "not significant" however busy its neighbours). ``gi_z`` is esda's analytic z (for display and
  ranking only), ``sim_z`` the observed Gi* standardised by its permutation distribution.
  esda runs its permutation test in a Python loop per area unless numba is installed (numba
  compiles for ~50 s in every new process), so the permutations run vectorised with numpy on
  esda's own permuted ids (``gi_star`` keeps esda's folded one-sided p_sim, identical to esda's, for
  comparison: on zero-heavy counts that fold calls a zero among zeros "significant", the bug the
  two-sided test above fixes).
- ``density``: a kernel-density surface (Gaussian kernel, bandwidth in metres) on a regular grid:
  cases are binned in SQL, smoothed with scipy, reported as cases per km².

No cases, no areas or too few areas → an empty result with a ``message``, never an error.
"""
from __future__ import annotations

import hashlib
import json
import math
import threading
import warnings

import numpy as np
import shapely
from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.analysis.common import (CASE_AREA_COLUMN, LEVEL_ZH, AnalysisError, areas_in_scope, case_where,
                                     check_level, period, resolve_area)
from gridmap.incidents.models import Case

PERMUTATIONS = 999
SEED = 20260301
#: class → (label, p threshold, sign)
CLASSES = (
    ("hot_99", "热点 99%", 0.01, 1), ("hot_95", "热点 95%", 0.05, 1), ("hot_90", "热点 90%", 0.10, 1),
    ("cold_99", "冷点 99%", 0.01, -1), ("cold_95", "冷点 95%", 0.05, -1), ("cold_90", "冷点 90%", 0.10, -1),
)
CLASS_NAMES = {c[0]: c[1] for c in CLASSES} | {"not_significant": "不显著"}
CLASS_NAMES = CLASS_NAMES | {"not_tested": "未检验（无户数）"}
MIN_AREAS = 3
CORRECTIONS = ("fdr", "none")
MEASURES = ("count", "rate")

_cache: dict = {}
_cache_lock = threading.Lock()


# ----------------------------------------------------------------------------- weights

def contiguity(geoms, *, attach_islands: bool = True):
    """(libpysal Graph, info) of queen contiguity over ``geoms`` (lon/lat polygons, in this order)."""
    import scipy.sparse as sp
    from libpysal.graph import Graph

    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a != b
    a, b = a[keep], b[keep]
    deg = np.bincount(a, minlength=n)
    islands = np.flatnonzero(deg == 0)
    attached = 0
    if attach_islands and len(islands) and n > 1:
        from gridmap.geo.measure import to_metric

        metric = to_metric(geoms)
        mtree = shapely.STRtree(metric)
        ia, ib = [], []
        for i in islands:  # islands are few; each finds its nearest other area
            cand, dist = mtree.query_nearest(metric[i], exclusive=True, return_distance=True, all_matches=False)
            if len(cand):
                ia.append(i)
                ib.append(int(cand[0]))
        if ia:
            attached = len(ia)
            a = np.concatenate([a, ia, ib])
            b = np.concatenate([b, ib, ia])
    adj = sp.csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    adj.data[:] = 1.0  # duplicates (an island linked both ways) stay binary
    adj.sum_duplicates()
    adj.data[:] = 1.0
    w = Graph.from_sparse(adj)
    info = {"areas": n, "links": int(adj.nnz), "islands": int(len(islands)), "islands_attached": attached,
            "mean_neighbours": round(float(adj.nnz) / n, 2) if n else 0.0}
    return w, info


def cached_contiguity(session: Session, level: str, ids, geoms):
    """``contiguity`` cached per database, level, set of areas and boundary stamp."""
    from gridmap.boundaries.lookup import boundary_stamp

    digest = hashlib.sha1(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()
    key = (str(session.get_bind().url), level, digest, boundary_stamp(session))
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit[0], dict(hit[1], cached=True)
    w, info = contiguity(geoms)
    with _cache_lock:
        if len(_cache) > 16:
            _cache.clear()
        _cache[key] = (w, info)
    return w, dict(info, cached=False)


# ----------------------------------------------------------------------------- Gi*

def classify(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    out = np.full(len(z), "not_significant", dtype=object)
    for name, _label, thr, sign in reversed(CLASSES):  # strictest last, so it wins
        hit = np.isfinite(z) & (p <= thr) & (np.sign(z) == sign)
        out[hit] = name
    return out


def gi_star(y, w, *, permutations: int = PERMUTATIONS, seed: int | None = SEED,
            engine: str = "numpy") -> tuple[np.ndarray, np.ndarray]:
    """(gi_z, p_value) of esda's Gi* with binary weights and its conditional permutation test.

    The statistic always comes from esda ``G_Local``. The permutation test is esda's own
    (``engine="esda"``: without numba a Python loop that copies all n counts for each area, so its
    time grows with n²: ~4 s for 10,000 areas, ~40 s for 50,000) or the same
    test vectorised with numpy (``engine="numpy"``, the default, ~10× faster): the same permuted ids
    (``esda.crand.vec_permutations`` with the same seed), the same sums and the same folded p-value,
    so the p-values are identical (tests/test_analysis.py checks that against esda), in time
    linear in n (a binary search per area and replication instead of a copy of all counts).
    """
    from esda.getisord import G_Local

    y = np.asarray(y, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # esda's notices on the 'alternative' default and on islands
        if permutations and engine == "esda":
            g = G_Local(y, w, transform="B", star=True, permutations=permutations, seed=seed, n_jobs=1,
                        keep_simulations=False)
            return np.asarray(g.Zs, dtype="float64"), np.asarray(g.p_sim, dtype="float64")
        g = G_Local(y, w, transform="B", star=True, permutations=0)
    z = np.asarray(g.Zs, dtype="float64")
    if not permutations:
        return z, np.asarray(g.p_norm, dtype="float64")
    if engine != "numpy":
        raise ValueError(f"unknown engine {engine!r}: numpy or esda")
    return z, _permutation_p(y, w, np.asarray(g.Gs, dtype="float64"), permutations, seed)


def _permutation_p(y: np.ndarray, w, observed: np.ndarray, permutations: int, seed: int | None) -> np.ndarray:
    """esda's folded one-sided pseudo p-value, (min(ge, R − ge) + 1) / (R + 1), from ``_permutation_counts``."""
    ge, _le, _m, _sd = _permutation_counts(y, w, observed, permutations, seed, rel_tol=0.0)
    low = (permutations - ge) < ge
    ge = ge.copy()
    ge[low] = permutations - ge[low]
    return (ge + 1.0) / (permutations + 1.0)


def _permutation_counts(y: np.ndarray, w, observed: np.ndarray, permutations: int, seed: int | None,
                        chunk_elements: int = 4_000_000, rel_tol: float = 1e-9):
    """esda's conditional randomisation for Gi* (binary weights, self-weight 1), vectorised.

    For area i with k neighbours, each replication draws k of the other n − 1 areas (the first k
    of one row of the shared permuted ids, skipping i) and sums their counts with i's own. Returns
    per area (ge, le, mean, sd): replications with Gi* ≥ / ≤ the observed one (a tie counts in
    both; compared with a relative tolerance ``rel_tol`` so float sums of equal counts tie; esda's
    own fold compares exactly, ``rel_tol=0``), and the
    mean and standard deviation of the replicated Gi*.
    """
    from esda.crand import vec_permutations

    adj = w.sparse.tocsr().copy()
    adj.setdiag(0)
    adj.eliminate_zeros()
    card = np.diff(adj.indptr)
    n = len(y)
    if seed is None:
        seed = int(np.random.randint(12345, 12345000))
    ids = np.asarray(vec_permutations(int(card.max()) if n else 0, n, permutations, seed), dtype=np.int64)
    scaling = y.sum()
    diff = y[1:] - y[:-1]  # drawing id j ≥ i means area j + 1: its count differs by diff[j]
    ge = np.empty(n, dtype=np.int64)
    le = np.empty(n, dtype=np.int64)
    mean = np.empty(n)
    sd = np.empty(n)
    reps = np.arange(permutations)
    for k in np.unique(card):
        rows = np.flatnonzero(card == k)
        if k == 0:  # an island: only itself (esda's island_weight 0): every replication ties
            rsum_parts = None
        else:
            srt = np.sort(ids[:, :k], axis=1)  # (R, k): the ids each replication draws, sorted
            base = y[srt].sum(axis=1)  # the draw's sum if no id needed skipping
            suffix = np.zeros((permutations, k + 1))
            suffix[:, :k] = np.cumsum(diff[srt][:, ::-1], axis=1)[:, ::-1]  # correction for ids ≥ position
            rsum_parts = (srt, base, suffix)
        step = max(1, chunk_elements // max(1, permutations))
        for c0 in range(0, len(rows), step):
            r = rows[c0:c0 + step]
            if rsum_parts is None:
                rsum = np.zeros((len(r), permutations))
            else:
                srt, base, suffix = rsum_parts
                pos = np.empty((len(r), permutations), dtype=np.int64)
                for j in range(permutations):  # ids below i stay, ids from i on shift by one
                    pos[:, j] = np.searchsorted(srt[j], r, side="left")
                rsum = base[None, :] + suffix[reps[None, :], pos]
            rstat = (rsum + y[r][:, None]) / scaling
            obs = observed[r][:, None]
            tol = rel_tol * np.abs(obs)
            ge[r] = (rstat >= obs - tol).sum(axis=1)
            le[r] = (rstat <= obs + tol).sum(axis=1)
            mean[r] = rstat.mean(axis=1)
            sd[r] = rstat.std(axis=1)
    return ge, le, mean, sd


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values: q_(i) = min over j ≥ i of p_(j)·m/j (capped at 1).

    ``q ≤ α`` exactly when BH's step-up procedure at level α rejects the area's hypothesis.
    """
    p = np.asarray(p, dtype="float64")
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def local_gi(y, w, *, permutations: int = PERMUTATIONS, seed: int | None = SEED,
             correction: str = "fdr") -> dict[str, np.ndarray]:
    """Gi* with one two-sided permutation test for significance and direction, then BH (see module doc).

    Returns arrays: ``gi_z`` (esda's analytic z), ``sim_z``, ``p_value`` (two-sided permutation p),
    ``q_value`` (BH-adjusted, or p itself with ``correction="none"``), ``direction`` (+1 hot side,
    −1 cold side, 0 neither), ``class``. ``permutations=0``: the analytic two-sided normal p-value
    and the sign of z (no permutation test).
    """
    from esda.getisord import G_Local
    from scipy.stats import norm

    if correction not in CORRECTIONS:
        raise AnalysisError("correction", f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    y = np.asarray(y, dtype="float64")
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")  # a constant neighbourhood has no variance: z is NaN, shown as null
        g = G_Local(y, w, transform="B", star=True, permutations=0)
    z = np.asarray(g.Zs, dtype="float64")
    if permutations:
        ge, le, mean, sd = _permutation_counts(y, w, np.asarray(g.Gs, dtype="float64"), permutations, seed)
        p = np.minimum(1.0, 2.0 * (np.minimum(ge, le) + 1.0) / (permutations + 1.0))
        direction = np.sign(le - ge).astype(np.int64)  # fewer replications above → observed in the upper tail
        with np.errstate(divide="ignore", invalid="ignore"):
            sim_z = np.where(sd > 0, (np.asarray(g.Gs) - mean) / sd, 0.0)
    else:
        zz = np.nan_to_num(z, nan=0.0)
        p = np.minimum(1.0, 2.0 * norm.sf(np.abs(zz)))
        direction = np.sign(zz).astype(np.int64)
        sim_z = zz
    q = bh_qvalues(p) if correction == "fdr" else p.copy()
    cls = classify(direction.astype("float64"), q)
    cls[(y <= 0) & (direction > 0)] = "not_significant"  # an area with no cases is never a hot spot
    return {"gi_z": z, "sim_z": sim_z, "p_value": p, "q_value": q, "direction": direction, "class": cls}


def _int_or_none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


def _num(v, digits=4):
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def hotspots(session: Session, actor: Actor | None, *, level: str = "cell", date_from=None, date_to=None,
             category: str | None = None, area: str | None = None, permutations: int = PERMUTATIONS,
             seed: int | None = SEED, simplify_m: float = 0.0, per=None, correction: str = "fdr",
             measure: str = "count") -> dict:
    """A GeoJSON FeatureCollection (dict) of the areas of ``level`` in scope with count, gi_z, p_value,
    q_value, direction and class (see ``local_gi``); ``measure="rate"`` tests cases per 1,000 households."""
    level = check_level(level, ("cell", "community", "street"))
    if not 0 <= permutations <= 9999:
        raise AnalysisError("permutations", "permutations must be from 0 to 9999")
    if correction not in CORRECTIONS:
        raise AnalysisError("correction", f"correction must be one of {', '.join(CORRECTIONS)}, got {str(correction)[:20]!r}")
    if measure not in MEASURES:
        raise AnalysisError("measure", f"measure must be one of {', '.join(MEASURES)}, got {str(measure)[:20]!r}")
    per = per or period(date_from, date_to)
    within = resolve_area(session, area)
    col = CASE_AREA_COLUMN[level]
    where = case_where(session, actor, per, category=category, area=within)
    counts = dict(session.execute(select(col, func.count(Case.id)).where(*where, col.isnot(None))
                                  .group_by(col)).all())
    meta = {"level": level, "level_name": LEVEL_ZH[level], "period": per.as_dict(), "category": category,
            "area": within.code if within else None, "method": "Getis-Ord Gi* (esda G_Local, star=True, binary "
            "queen contiguity); one two-sided conditional permutation test gives significance and direction "
            "(p = min(1, 2·min(#sim ≥ obs + 1, #sim ≤ obs + 1)/(R + 1)))", "permutations": permutations,
            "correction": correction, "correction_method": ("Benjamini–Hochberg false discovery rate across the "
                                                            "tested areas; class by q-value" if correction == "fdr"
                                                            else "none: class by the raw p-value"),
            "measure": measure, "measure_name": "每千户事件数" if measure == "rate" else "事件数",
            "min_p": (round(2.0 / (permutations + 1), 6) if permutations else None),
            "rules": ["an area with no cases is never a hot spot"],
            "classes": CLASS_NAMES, "message": None}
    total = int(sum(counts.values()))
    if total == 0:
        return {"type": "FeatureCollection", **meta, "total": 0, "weights": None, "features": [],
                "message": f"no cases reported from {per.date_from} to {per.date_to}"
                           f"{' of category ' + category if category else ''}: nothing to analyse",
                "message_code": "no_cases"}
    areas = areas_in_scope(session, actor, level, within=within)
    hh = areas["households"].to_numpy(dtype=object)
    if measure == "rate":
        tested = np.array([h is not None and not (isinstance(h, float) and math.isnan(h)) and h > 0 for h in hh])
    else:
        tested = np.ones(len(areas), dtype=bool)
    if tested.sum() < MIN_AREAS:
        return {"type": "FeatureCollection", **meta, "total": total, "weights": None, "features": [],
                "message": f"only {int(tested.sum())} {level} areas in scope"
                           f"{' with households' if measure == 'rate' else ''}: hot spots need at least {MIN_AREAS}",
                "message_code": "too_few_areas"}
    ids = areas["id"].to_numpy(dtype=np.int64)
    geoms = np.asarray(areas.geometry.values, dtype=object)
    cnt = np.array([counts.get(int(i), 0) for i in ids], dtype="float64")
    n = len(ids)
    res = {k: np.full(n, np.nan) for k in ("gi_z", "sim_z", "p_value", "q_value")}
    res["direction"] = np.zeros(n, dtype=np.int64)
    res["class"] = np.full(n, "not_tested", dtype=object)
    if measure == "rate":
        y = np.zeros(n)
        y[tested] = cnt[tested] * 1000.0 / np.array([float(h) for h in hh[tested]])
    else:
        y = cnt
    w, info = cached_contiguity(session, level + ("/rate" if measure == "rate" else ""), ids[tested], geoms[tested])
    out = local_gi(y[tested], w, permutations=permutations, seed=seed, correction=correction)
    for k, v in out.items():
        res[k][tested] = v
    classes = res["class"]
    if simplify_m and simplify_m > 0:
        geoms = shapely.simplify(geoms, simplify_m / 111_000.0, preserve_topology=True)
    gj = shapely.to_geojson(geoms)
    feats = []
    for k in range(n):
        props = {"id": int(ids[k]), "code": areas["code"].iat[k], "name": areas["name"].iat[k],
                 "count": int(cnt[k]), "households": _int_or_none(areas["households"].iat[k]),
                 "per_1000_households": _num(y[k], 3) if measure == "rate" and tested[k] else None,
                 "gi_z": _num(res["gi_z"][k]), "sim_z": _num(res["sim_z"][k]), "p_value": _num(res["p_value"][k]),
                 "q_value": _num(res["q_value"][k]), "direction": int(res["direction"][k]),
                 "class": classes[k], "class_name": CLASS_NAMES[classes[k]]}
        feats.append({"type": "Feature", "id": int(ids[k]), "properties": props, "geometry": json.loads(gj[k])})
    summary = {c: int((classes == c).sum()) for c in CLASS_NAMES}
    single = (cnt[tested] > 0).sum() <= 1
    return {"type": "FeatureCollection", **meta, "total": total, "weights": info, "summary": summary,
            "tested": int(tested.sum()), "features": feats,
            "message": "cases in a single area only: Gi* cannot tell a cluster from one busy area" if single else None,
            "message_code": "single_area" if single else None}


# ----------------------------------------------------------------------------- kernel density

def density(session: Session, actor: Actor | None, *, date_from=None, date_to=None, category: str | None = None,
            area: str | None = None, bbox=None, cell_m: float = 100.0, bandwidth_m: float = 300.0,
            max_cells: int = 250_000, limit: int = 20_000, per=None) -> dict:
    """A Gaussian kernel-density grid of case locations (cases per km²).

    The grid covers ``bbox`` (minlon, minlat, maxlon, maxlat), else the area, else the reader's
    scope; ``cell_m`` is the grid spacing, ``bandwidth_m`` the kernel's standard deviation. A grid
    of more than ``max_cells`` is coarsened until it fits (the answer gives the ``cell_m`` used). Returns
    the grid's geometry and ``points``: [[lat, lon, density], …] for grid cells above 1 % of the
    maximum (at most ``limit``, densest first), ready for a Leaflet heat layer.
    """
    from scipy.ndimage import gaussian_filter

    if not (5 <= cell_m <= 50_000):
        raise AnalysisError("cell_m", "cell_m must be from 5 to 50000 metres")
    if not (cell_m <= bandwidth_m <= 100_000):
        raise AnalysisError("bandwidth_m", "bandwidth_m must be from cell_m to 100000 metres")
    per = per or period(date_from, date_to)
    within = resolve_area(session, area)
    if bbox is None:
        level = within.level if within else "district"
        areas = areas_in_scope(session, actor, level, within=within)
        if areas.empty:
            areas = areas_in_scope(session, actor, "cell", within=within)
        if areas.empty:
            return {"grid": None, "points": [], "total": 0, "period": per.as_dict(),
                    "message": "no areas in your scope"}
        x0, y0, x1, y1 = shapely.total_bounds(areas.geometry.values)
    else:
        x0, y0, x1, y1 = bbox
    lat0 = math.radians((y0 + y1) / 2)
    dx = cell_m / (111_320.0 * max(math.cos(lat0), 1e-6))
    dy = cell_m / 110_574.0
    pad = 3 * bandwidth_m / cell_m  # room for the kernel's tails
    x0, y0 = x0 - pad * dx, y0 - pad * dy
    nx, ny = int(math.ceil((x1 - x0) / dx + pad)), int(math.ceil((y1 - y0) / dy + pad))
    if nx * ny > max_cells:  # a whole city at 100 m is millions of cells: coarsen the grid to fit
        f = math.sqrt(nx * ny / max_cells) * 1.01
        return density(session, actor, date_from=date_from, date_to=date_to, category=category, area=area,
                       bbox=bbox, cell_m=round(cell_m * f, 1), bandwidth_m=max(bandwidth_m, round(cell_m * f, 1)),
                       max_cells=max_cells, limit=limit, per=per)
    where = case_where(session, actor, per, category=category, area=within)
    where += [Case.lon >= x0, Case.lon < x0 + nx * dx, Case.lat >= y0, Case.lat < y0 + ny * dy]
    if session.get_bind().dialect.name == "postgresql":  # PostgreSQL's cast rounds; floor first
        gx, gy = cast(func.floor((Case.lon - x0) / dx), Integer), cast(func.floor((Case.lat - y0) / dy), Integer)
    else:  # SQLite's cast truncates, which is floor for these non-negative offsets
        gx, gy = cast((Case.lon - x0) / dx, Integer), cast((Case.lat - y0) / dy, Integer)
    rows = session.execute(select(gx, gy, func.count(Case.id)).where(*where).group_by(gx, gy)).all()
    meta = {"period": per.as_dict(), "category": category, "area": within.code if within else None,
            "cell_m": cell_m, "bandwidth_m": bandwidth_m, "units": "cases per km²"}
    grid = {"x0": round(x0, 8), "y0": round(y0, 8), "dx": dx, "dy": dy, "nx": nx, "ny": ny}
    if not rows:
        return {**meta, "grid": grid, "points": [], "total": 0, "max": 0.0,
                "message": f"no located cases from {per.date_from} to {per.date_to}"}
    arr = np.zeros((ny, nx))
    ix = np.array([r[0] for r in rows], dtype=np.int64).clip(0, nx - 1)
    iy = np.array([r[1] for r in rows], dtype=np.int64).clip(0, ny - 1)
    np.add.at(arr, (iy, ix), np.array([r[2] for r in rows], dtype="float64"))
    total = float(arr.sum())
    dens = gaussian_filter(arr, sigma=bandwidth_m / cell_m, mode="constant", truncate=4.0)
    dens *= 1e6 / (cell_m * cell_m)  # per grid cell → per km²
    peak = float(dens.max())
    jy, jx = np.nonzero(dens >= peak * 0.01)
    vals = dens[jy, jx]
    order = np.argsort(-vals)[:limit]
    pts = [[round(y0 + (jy[k] + 0.5) * dy, 6), round(x0 + (jx[k] + 0.5) * dx, 6), round(float(vals[k]), 3)]
           for k in order]
    return {**meta, "grid": grid, "points": pts, "total": int(total), "max": round(peak, 3),
            "truncated": len(vals) > limit, "message": None}
