"""The balance advisor: are cells the right size, and how could a community be cut better?

Owns: the household report per cell against a target band (default 300–500 households, the
urban practice in Anhui and Haikou; a warning, never a hard limit), with the outliers; household
points for a community (the address register's points inside it, else synthetic points spread
uniformly over each cell, as many as its households); and the proposal tool, which re-partitions
a community into N contiguous, compact cells with balanced households and hands the result to
:func:`gridmap.redraw.operations.replace_cells` as a DRAFT to review — never a silent change.

How a proposal is made (a simplified ReCom / recursive spanning-tree bisection, after GerryChain):

1. units: a regular lon/lat grid (about 40 units per wanted cell) noded with the community's
   outline and polygonized, so the units tile the community exactly; islands are joined to the
   nearest unit of the mainland by a virtual edge;
2. weights: household points per unit (each point weighs total households / points);
3. the unit graph (units sharing an edge) is cut recursively: for a region to be split into k
   cells, many random spanning trees are drawn and the tree edge whose removal leaves one side
   closest to floor(k/2)/k of the region's households is cut (ties: the shorter cut boundary, for
   compactness); both sides are split again until every part is one cell;
4. a local search then moves boundary units between neighbouring parts while that lowers the
   largest deviation and keeps both parts contiguous;
5. each cell is the coverage union of its units; cells are numbered north to south, then west
   to east. Reported per cell: households, deviation from the ideal (total / N) in %, and the
   Polsby–Popper compactness 4πA/P² (1 for a disc, measured in metres).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.boundaries.service import load_level
from gridmap.geo import measure
from gridmap.geo.shapes import as_multi, metric_epsg
from gridmap.incidents.models import Address
from gridmap.redraw.models import DEFAULT_TARGET_HOUSEHOLDS
from gridmap.redraw.operations import replace_cells
from gridmap.redraw.problems import DraftError, DraftNotFound
from gridmap.redraw.state import DraftState

UNITS_PER_CELL = 40


class BalanceError(DraftError):
    pass


# ============================================================================ report
def balance_report(session: Session, *, community: str | None = None, street: str | None = None,
                   target: tuple[int, int] = DEFAULT_TARGET_HOUSEHOLDS) -> dict:
    """Households and population per current cell (of a community, a street, or everything)
    against the ``target`` band; outliers sorted by how far they are outside it."""

    lo, hi = int(target[0]), int(target[1])
    if lo <= 0 or hi < lo:
        raise BalanceError(f"the target band must be 0 < min ≤ max, got {lo}–{hi}")
    cells = load_level(session, "cell")
    scope = None
    if community:
        comms = load_level(session, "community")
        if community not in set(comms["code"]):
            raise DraftNotFound(f"no community with code {community}")
        cells = cells[cells["parent_code"] == community]
        scope = community
    elif street:
        comms = load_level(session, "community")
        if street not in set(load_level(session, "street")["code"]):
            raise DraftNotFound(f"no street with code {street}")
        cells = cells[cells["parent_code"].isin(set(comms.loc[comms["parent_code"] == street, "code"]))]
        scope = street
    rows = []
    for r in cells.itertuples():
        hh, pop = _int_or_none(r.households), _int_or_none(r.population)
        if hh is None:
            status, dev = "unknown", None
        elif hh < lo:
            status, dev = "low", round(100.0 * (hh - lo) / lo, 1)
        elif hh > hi:
            status, dev = "high", round(100.0 * (hh - hi) / hi, 1)
        else:
            status, dev = "ok", 0.0
        rows.append({"code": r.code, "name": r.name, "community": r.parent_code, "households": hh,
                     "population": pop, "area_m2": round(float(r.area_m2), 1), "status": status,
                     "outside_band_pct": dev})
    known = [r["households"] for r in rows if r["households"] is not None]
    outliers = sorted((r for r in rows if r["status"] in ("low", "high")),
                      key=lambda r: -abs(r["outside_band_pct"]))
    return {"scope": scope, "target": [lo, hi], "cells": rows, "outliers": outliers,
            "summary": {"cells": len(rows), "low": sum(r["status"] == "low" for r in rows),
                        "high": sum(r["status"] == "high" for r in rows),
                        "ok": sum(r["status"] == "ok" for r in rows),
                        "unknown": sum(r["status"] == "unknown" for r in rows),
                        "households": int(sum(known)) if known else None,
                        "min": min(known) if known else None, "max": max(known) if known else None,
                        "mean": round(float(np.mean(known)), 1) if known else None}}


def _int_or_none(v):
    import pandas as pd

    return None if v is None or pd.isna(v) else int(v)


# ============================================================================ points
def synthetic_points(geom, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniformly inside ``geom`` (lon/lat), as an (n, 2) array (rejection sampling)."""
    if n <= 0 or geom is None or geom.is_empty:
        return np.empty((0, 2))
    x0, y0, x1, y1 = geom.bounds
    shapely.prepare(geom)
    out = []
    need = n
    frac = max(shapely.area(geom) / max((x1 - x0) * (y1 - y0), 1e-30), 0.05)
    while need > 0:
        k = int(need / frac * 1.2) + 16
        xy = np.column_stack([rng.uniform(x0, x1, k), rng.uniform(y0, y1, k)])
        inside = shapely.contains_xy(geom, xy[:, 0], xy[:, 1])
        got = xy[inside][:need]
        out.append(got)
        need -= len(got)
    return np.vstack(out)


def household_points(session: Session, community: str, *, seed: int = 0) -> tuple[np.ndarray, str]:
    """Points standing for the community's households: the address register's points inside it,
    else synthetic ones (uniform within each cell, as many as its households). Returns (xy, origin)."""

    state = DraftState(session)
    comm = state.get(community, "community")
    x0, y0, x1, y1 = comm.geom.bounds
    rows = session.execute(select(Address.lon, Address.lat).where(Address.lon >= x0, Address.lon <= x1,
                                                                  Address.lat >= y0, Address.lat <= y1)).all()
    if rows:
        xy = np.array(rows, dtype="float64")
        xy = xy[shapely.contains_xy(comm.geom, xy[:, 0], xy[:, 1]) | shapely.intersects_xy(comm.geom, xy[:, 0],
                                                                                             xy[:, 1])]
        if len(xy) >= 10:
            return xy, "addresses"
    rng = np.random.default_rng(seed)
    parts = []
    for c in state.children(comm.code):
        n = c.households if c.households is not None else 0
        parts.append(synthetic_points(c.geom, int(n), rng))
    xy = np.vstack(parts) if parts else np.empty((0, 2))
    if len(xy) == 0:
        xy = synthetic_points(comm.geom, 1000, rng)
        return xy, "uniform"
    return xy, "cells"


# ============================================================================ units and graph
def _units(geom, n_units: int):
    """Faces of a lon/lat grid noded with ``geom``'s outline: an exact tiling of ``geom``."""
    x0, y0, x1, y1 = geom.bounds
    aspect = (x1 - x0) * math.cos(math.radians((y0 + y1) / 2)) / max(y1 - y0, 1e-12)
    nx = max(1, int(round(math.sqrt(n_units * aspect))))
    ny = max(1, int(round(n_units / nx)))
    xs = np.linspace(x0, x1, nx + 1)[1:-1]
    ys = np.linspace(y0, y1, ny + 1)[1:-1]
    lines = [shapely.LineString([(x, y0), (x, y1)]) for x in xs] + [shapely.LineString([(x0, y), (x1, y)])
                                                                  for y in ys]
    lines += list(shapely.get_parts(shapely.boundary(geom)))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(np.array(lines,
                                                                                              dtype=object)))))
    if not len(faces):
        return np.empty(0, dtype=object)
    rep = shapely.point_on_surface(faces)
    shapely.prepare(geom)
    return faces[shapely.contains(geom, rep)]


def _graph(units: np.ndarray) -> list[set[int]]:
    tree = shapely.STRtree(units)
    a, b = tree.query(units, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    adj: list[set[int]] = [set() for _ in range(len(units))]
    if len(a):
        shared = shapely.length(shapely.intersection(shapely.boundary(units[a]), shapely.boundary(units[b])))
        for i, j, s in zip(a, b, shared):
            if s > 0:
                adj[i].add(int(j))
                adj[j].add(int(i))
    # islands: join each component to the nearest unit of the largest one
    comps = _components(range(len(units)), adj)
    if len(comps) > 1:
        comps.sort(key=len, reverse=True)
        main = list(comps[0])
        mtree = shapely.STRtree(units[main])
        for comp in comps[1:]:
            cl = list(comp)
            (qi, ti) = mtree.query_nearest(units[cl], all_matches=False)
            d = shapely.distance(units[np.array(cl)[qi]], units[np.array(main)[ti]])
            k = int(np.argmin(d))
            i, j = cl[qi[k]], main[ti[k]]
            adj[i].add(j)
            adj[j].add(i)
            main += cl
            mtree = shapely.STRtree(units[main])
    return adj


def _components(nodes, adj) -> list[set[int]]:
    nodes = set(nodes)
    out = []
    while nodes:
        start = nodes.pop()
        comp = {start}
        stack = [start]
        while stack:
            u = stack.pop()
            for v in adj[u]:
                if v in nodes:
                    nodes.discard(v)
                    comp.add(v)
                    stack.append(v)
        out.append(comp)
    return out


def _connected(nodes: set[int], adj) -> bool:
    if not nodes:
        return True
    start = next(iter(nodes))
    seen = {start}
    stack = [start]
    while stack:
        u = stack.pop()
        for v in adj[u]:
            if v in nodes and v not in seen:
                seen.add(v)
                stack.append(v)
    return len(seen) == len(nodes)


def _random_tree(nodes: list[int], adj, rng: random.Random) -> dict[int, list[int]]:
    """A random spanning tree of the induced subgraph (Kruskal on random weights)."""
    idx = set(nodes)
    edges = [(rng.random(), u, v) for u in nodes for v in adj[u] if v in idx and u < v]
    edges.sort()
    parent = {u: u for u in nodes}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    tree: dict[int, list[int]] = {u: [] for u in nodes}
    for _, u, v in edges:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[ru] = rv
            tree[u].append(v)
            tree[v].append(u)
    return tree


def _bisect(nodes: list[int], k: int, w: np.ndarray, adj, rng: random.Random, perim, tries: int):
    """Split ``nodes`` into two contiguous sides holding k1 = k // 2 and k - k1 cells' worth."""
    k1 = k // 2
    total = float(w[nodes].sum())
    target = total * k1 / k
    best = None
    for _ in range(tries):
        tree = _random_tree(nodes, adj, rng)
        root = nodes[0]
        order, par = [root], {root: None}
        for u in order:
            for v in tree[u]:
                if v not in par:
                    par[v] = u
                    order.append(v)
        if len(order) < len(nodes):
            continue  # not connected (should not happen after island joining)
        sub = {u: float(w[u]) for u in nodes}
        cnt = {u: 1 for u in nodes}
        for u in reversed(order[1:]):
            sub[par[u]] += sub[u]
            cnt[par[u]] += cnt[u]
        for u in order[1:]:
            for side_w, flip in ((sub[u], False), (total - sub[u], True)):
                dev = abs(side_w - target) / max(target, 1e-9)
                n_side = cnt[u] if not flip else len(nodes) - cnt[u]
                # both sides must be able to hold their cells: at least one unit per cell
                if n_side < k1 or len(nodes) - n_side < k - k1:
                    continue
                key = (round(dev, 3), perim(u, par[u]))
                if best is None or key < best[0]:
                    best = (key, u, par, order, flip)
    if best is None:
        raise BalanceError("cannot split the community: too few units for that many cells")
    _, u, par, order, flip = best
    below = {u}
    for v in order:
        p = par.get(v)
        if p is not None and p in below:
            below.add(v)
    # `order` is a BFS order, so every node's parent comes first: one pass collects the subtree
    side = below if not flip else set(nodes) - below
    return sorted(side), sorted(set(nodes) - side)


def _partition(n_parts: int, w: np.ndarray, adj, rng: random.Random, perim, tries: int) -> np.ndarray:
    label = np.full(len(w), -1, dtype=int)
    stack = [(list(range(len(w))), n_parts, 0)]
    nxt = 0
    while stack:
        nodes, k, _ = stack.pop()
        if k == 1:
            label[nodes] = nxt
            nxt += 1
            continue
        a, b = _bisect(nodes, k, w, adj, rng, perim, tries)
        stack.append((a, k // 2, 0))
        stack.append((b, k - k // 2, 0))
    return label


def _improve(label: np.ndarray, w: np.ndarray, adj, n_parts: int, max_moves: int = 2000) -> np.ndarray:
    """Move boundary units between neighbouring parts while the largest deviation drops."""
    ideal = float(w.sum()) / n_parts
    if ideal <= 0:
        return label
    sums = np.bincount(label, weights=w, minlength=n_parts)
    members = [set(np.flatnonzero(label == p)) for p in range(n_parts)]
    for _ in range(max_moves):
        dev = np.abs(sums - ideal)
        worst = int(np.argmax(dev))
        improved = False
        heavy = sums[worst] > ideal
        # candidate moves: out of the worst part when heavy, into it when light
        cands = []
        for u in (members[worst] if heavy else set().union(*(adj[x] for x in members[worst])) - members[worst]):
            for v in adj[u]:
                p_from, p_to = (worst, label[v]) if heavy else (label[u], worst)
                if p_from == p_to or (heavy and label[v] == worst):
                    continue
                cands.append((u, p_from, p_to))
        cur = float(dev.max())
        rng_order = sorted(set(cands), key=lambda c: -w[c[0]])
        for u, p_from, p_to in rng_order:
            if len(members[p_from]) <= 1 or w[u] == 0 and heavy:
                continue
            new_from, new_to = sums[p_from] - w[u], sums[p_to] + w[u]
            trial = dev.copy()
            trial[p_from], trial[p_to] = abs(new_from - ideal), abs(new_to - ideal)
            if trial.max() >= cur - 1e-9:
                continue
            if not _connected(members[p_from] - {u}, adj):
                continue
            members[p_from].discard(u)
            members[p_to].add(u)
            label[u] = p_to
            sums[p_from], sums[p_to] = new_from, new_to
            improved = True
            break
        if not improved:
            break
    return label


@dataclass
class Proposal:
    community: str
    n: int
    cells: list[dict] = field(default_factory=list)  # name, geometry, households, deviation_pct, polsby_popper
    largest_deviation_pct: float = 0.0
    mean_polsby_popper: float = 0.0
    points: int = 0
    points_origin: str = ""
    total_households: int = 0

    def as_dict(self) -> dict:
        return {"community": self.community, "n": self.n, "points": self.points,
                "points_origin": self.points_origin, "total_households": self.total_households,
                "largest_deviation_pct": self.largest_deviation_pct, "mean_polsby_popper": self.mean_polsby_popper,
                "cells": [{k: v for k, v in c.items() if k != "geometry"} for c in self.cells],
                "geojson": {"type": "FeatureCollection", "features": [
                    {"type": "Feature", "geometry": shapely.geometry.mapping(c["geometry"]),
                     "properties": {k: v for k, v in c.items() if k != "geometry"}} for c in self.cells]}}

    def features(self) -> list[dict]:
        """For :func:`gridmap.redraw.operations.replace_cells` (codes matched by overlap there)."""
        return [{"code": None, "name": None, "geometry": c["geometry"], "households": c["households"]}
                for c in self.cells]


def propose_partition(geom, points: np.ndarray, n: int, *, total_households: int | None = None, seed: int = 0,
                      tries: int = 24, community: str = "") -> Proposal:
    """Cut ``geom`` (a community, lon/lat) into ``n`` contiguous cells balanced on ``points``."""
    if n < 1:
        raise BalanceError("the number of cells must be at least 1")
    geom = as_multi(geom)
    units = _units(geom, max(UNITS_PER_CELL * n, 60))
    if len(units) < n:
        raise BalanceError(f"the community is too small to cut into {n} cells")
    pts = np.asarray(points, dtype="float64").reshape(-1, 2)
    total = int(total_households if total_households is not None else len(pts))
    tree = shapely.STRtree(units)
    counts = np.zeros(len(units))
    if len(pts):
        pi, ui = tree.query(shapely.points(pts), predicate="intersects")
        first = np.full(len(pts), -1)
        order = np.argsort(ui, kind="stable")[::-1]
        first[pi[order]] = ui[order]  # a point on a shared edge counts once (the smallest unit index)
        got = first >= 0
        counts = np.bincount(first[got], minlength=len(units)).astype(float)
    w = counts * (total / counts.sum()) if counts.sum() > 0 else np.full(len(units), total / len(units))
    adj = _graph(units)
    epsg = metric_epsg([geom])
    um = measure.to_metric(units, epsg)
    cent = shapely.centroid(um)
    cx, cy = shapely.get_x(cent), shapely.get_y(cent)

    def perim(u, v):  # prefer cutting between close units: a short, compact cut
        return round(math.hypot(cx[u] - cx[v], cy[u] - cy[v]), 1) if v is not None else 0.0

    rng = random.Random(seed)
    best = None
    for attempt in range(3):
        label = _partition(n, w, adj, rng, perim, tries)
        label = _improve(label, w, adj, n)
        sums = np.bincount(label, weights=w, minlength=n)
        dev = float(np.max(np.abs(sums - total / n)) / max(total / n, 1e-9))
        if best is None or dev < best[0]:
            best = (dev, label)
        if dev < 0.05:
            break
    label = best[1]
    parts = []
    for p in range(n):
        fs = units[label == p]
        g = as_multi(shapely.coverage_union_all(fs) if len(fs) > 1 else fs[0])
        parts.append(g)
    # households: integer, largest remainder, summing to the total
    raw = np.bincount(label, weights=w, minlength=n)
    hh = np.floor(raw).astype(int)
    rest = total - int(hh.sum())
    if rest > 0:
        hh[np.argsort(-(raw - hh), kind="stable")[:rest]] += 1
    pm = measure.to_metric(np.array(parts, dtype=object), epsg)
    area, per = shapely.area(pm), shapely.length(pm)
    pp = 4 * math.pi * area / np.maximum(per * per, 1e-9)
    c = shapely.centroid(np.array(parts, dtype=object))
    order = sorted(range(n), key=lambda k: (-round(shapely.get_y(c[k]), 3), shapely.get_x(c[k])))
    ideal = total / n if n else 0
    cells = []
    for rank, k in enumerate(order, start=1):
        cells.append({"seq": rank, "geometry": parts[k], "households": int(hh[k]), "area_m2": round(float(area[k]), 1),
                      "deviation_pct": round(100.0 * (hh[k] - ideal) / ideal, 1) if ideal else 0.0,
                      "polsby_popper": round(float(pp[k]), 3), "parts": len(shapely.get_parts(parts[k]))})
    return Proposal(community, n, cells,
                    largest_deviation_pct=round(max(abs(c["deviation_pct"]) for c in cells), 1),
                    mean_polsby_popper=round(float(np.mean(pp)), 3), points=int(len(pts)), total_households=total)


def propose_for_community(session: Session, community: str, n: int | None = None, *, seed: int = 0,
                          target: tuple[int, int] = DEFAULT_TARGET_HOUSEHOLDS,
                          points: np.ndarray | None = None) -> Proposal:
    """A proposal for ``community``: ``n`` cells (default: households / middle of the band)."""
    state = DraftState(session)
    comm = state.get(community, "community")
    cells = state.children(comm.code)
    known = [c.households for c in cells if c.households is not None]
    if points is None:
        xy, origin = household_points(session, community, seed=seed)
    else:
        xy, origin = np.asarray(points, dtype="float64").reshape(-1, 2), "given"
    total = int(sum(known)) if known else int(len(xy))
    if n is None:
        mid = (target[0] + target[1]) / 2
        n = max(1, int(round(total / mid))) if total else max(1, len(cells))
    prop = propose_partition(comm.geom, xy, n, total_households=total, seed=seed, community=community)
    prop.points_origin = origin
    return prop


def proposal_to_draft(session: Session, actor: Actor, community: str, proposal: Proposal, *,
                      draft_id: int | None = None, tolerance_m: float | None = None,
                      code_format: str | None = None):
    """The proposal as a draft replacing the community's cells (old codes kept where a new cell
    overlaps an old one most; the rest numbered anew). To be reviewed and published like any draft."""

    return replace_cells(session, actor, community, proposal.features(), draft_id=draft_id, match_by_overlap=True,
                         title=f"balance {community} into {proposal.n} cells "
                               f"(largest deviation {proposal.largest_deviation_pct:g} %)",
                         tolerance_m=tolerance_m, code_format=code_format)
