"""Places where the same problem keeps coming back (反复发生点位).

Owns: finding clusters of cases of the same category within ``radius_m`` of one another that
number at least ``min_count`` (inside a ``window_days`` window when one is given). The rule is
DBSCAN's: a case with at least ``min_count - 1`` same-category cases within ``radius_m`` is a core;
cores within ``radius_m`` of one another form one place; other cases within ``radius_m`` of a core
join it. Distances are metres in the CGCS2000 Gauss-Krüger zone of the data; neighbours come from
one shapely STRtree ``dwithin`` query over all cases, components from scipy's connected_components,
so there is no Python loop per case pair. With ``window_days``, a place is kept only when some
``window_days`` window holds ``min_count`` of its cases.

No cases → an empty list with a message.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.analysis.common import AnalysisError, case_where, period, resolve_area
from gridmap.boundaries.models import Area
from gridmap.incidents.models import Case, Category

MAX_CASES = 500_000
MAX_IDS = 50


def repeats(session: Session, actor: Actor | None, *, date_from=None, date_to=None, category: str | None = None,
            area: str | None = None, radius_m: float = 50.0, min_count: int = 3, window_days: int | None = None,
            limit: int = 500, per=None) -> dict:
    """Repeat places, most cases first: category, count, centre, radius, first/last, cell, case ids."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from gridmap.geo.coords import gk_zone_epsg, transformer

    if not (1 <= radius_m <= 5000):
        raise AnalysisError("radius_m", "radius_m must be from 1 to 5000 metres")
    if not (2 <= min_count <= 1000):
        raise AnalysisError("min_count", "min_count must be from 2 to 1000")
    if window_days is not None and not (1 <= window_days <= 3660):
        raise AnalysisError("window_days", "window_days must be from 1 to 3660")
    per = per or period(date_from, date_to, default_days=90)
    within = resolve_area(session, area)
    where = case_where(session, actor, per, category=category, area=within) + [Case.lon.isnot(None),
                                                                             Case.lat.isnot(None)]
    rows = session.execute(select(Case.id, Case.number, Case.category_id, Case.lon, Case.lat, Case.reported_at,
                                  Case.cell_id).where(*where).order_by(Case.id).limit(MAX_CASES + 1)).all()
    meta = {"period": per.as_dict(), "category": category, "area": within.code if within else None,
            "radius_m": radius_m, "min_count": min_count, "window_days": window_days,
            "rule": f"at least {min_count} cases of the same category within {radius_m:g} m of one another "
                    f"(DBSCAN: eps={radius_m:g} m, min_samples={min_count})"
                    + (f", {min_count} of them within {window_days} days" if window_days else "")}
    if len(rows) > MAX_CASES:
        raise AnalysisError("from", f"more than {MAX_CASES:,} cases in the period: narrow the period, area or category")
    if not rows:
        return {**meta, "places": [], "count": 0, "message": f"no located cases from {per.date_from} to {per.date_to}"}
    df = pd.DataFrame(rows, columns=["id", "number", "category_id", "lon", "lat", "reported_at", "cell_id"])
    epsg = gk_zone_epsg(float(df["lon"].median()))
    x, y = transformer(4326, epsg).transform(df["lon"].to_numpy(), df["lat"].to_numpy())
    pts = shapely.points(x, y)
    tree = shapely.STRtree(pts)
    a, b = tree.query(pts, predicate="dwithin", distance=radius_m)
    cat = df["category_id"].to_numpy()
    same = cat[a] == cat[b]
    a, b = a[same], b[same]  # includes every case with itself
    n = len(df)
    degree = np.bincount(a, minlength=n)
    core = degree >= min_count
    cc = core[a] & core[b]
    graph = coo_matrix((np.ones(int(cc.sum())), (a[cc], b[cc])), shape=(n, n)).tocsr()
    _, comp = connected_components(graph, directed=False)
    label = np.where(core, comp, -1)
    # border cases join the cluster of (the smallest-index) core within reach
    border = (~core[a]) & core[b]
    if border.any():
        first = pd.Series(b[border]).groupby(a[border]).min()
        label[first.index.to_numpy()] = comp[first.to_numpy()]
    df["label"] = label
    df["x"], df["y"] = x, y
    df = df[df["label"] >= 0]
    if df.empty:
        return {**meta, "places": [], "count": 0, "message": "no place with repeated cases"}
    sizes = df.groupby("label")["id"].count()
    keep = sizes[sizes >= min_count].index
    df = df[df["label"].isin(keep)]
    if window_days:
        span = pd.Timedelta(days=window_days)

        def fits(times: pd.Series) -> bool:
            t = times.sort_values().to_numpy()
            return bool(len(t) >= min_count and (t[min_count - 1:] - t[:len(t) - min_count + 1] <= span).any())

        ok = df.groupby("label")["reported_at"].apply(fits)
        df = df[df["label"].isin(ok[ok].index)]
    if df.empty:
        return {**meta, "places": [], "count": 0, "message": "no place with repeated cases"}
    g = df.groupby("label")
    summary = g.agg(count=("id", "count"), category_id=("category_id", "first"), x=("x", "mean"), y=("y", "mean"),
                    lon=("lon", "mean"), lat=("lat", "mean"), first=("reported_at", "min"),
                    last=("reported_at", "max"), cell_id=("cell_id", lambda s: s.mode().iat[0] if s.notna().any()
                                                            else None))
    df = df.join(summary[["x", "y"]].rename(columns={"x": "x_c", "y": "y_c"}), on="label")
    df["d"] = np.hypot(df["x"] - df["x_c"], df["y"] - df["y_c"])
    summary["radius"] = df.groupby("label")["d"].max()
    summary = summary.sort_values(["count", "last"], ascending=[False, False]).head(limit)
    cats = dict((i, (c, nm)) for i, c, nm in session.execute(select(Category.id, Category.code, Category.name)
                                                             .where(Category.id.in_([int(v) for v in summary["category_id"]]))))
    cell_ids = [int(v) for v in summary["cell_id"].dropna()]
    cells = dict((i, (c, nm)) for i, c, nm in session.execute(select(Area.id, Area.code, Area.name)
                                                              .where(Area.id.in_(cell_ids)))) if cell_ids else {}
    members = df.sort_values("reported_at").groupby("label")
    places = []
    for lab, r in summary.iterrows():  # one row per place, not per case
        m = members.get_group(lab)
        c = cats.get(int(r["category_id"]), (None, None))
        cell = cells.get(int(r["cell_id"])) if pd.notna(r["cell_id"]) else None
        places.append({"category": c[0], "category_name": c[1], "count": int(r["count"]),
                       "lon": round(float(r["lon"]), 7), "lat": round(float(r["lat"]), 7),
                       "radius_m": round(float(r["radius"]), 1), "first": r["first"].isoformat(),
                       "last": r["last"].isoformat(), "cell": {"code": cell[0], "name": cell[1]} if cell else None,
                       "case_ids": [int(v) for v in m["id"].head(MAX_IDS)],
                       "case_numbers": [v for v in m["number"].head(MAX_IDS)]})
    return {**meta, "places": places, "count": len(places), "message": None}
