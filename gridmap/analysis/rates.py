"""Counts and rates per area, and counts over time (the time view).

Owns: ``rates`` (cases reported in a period per cell, community or street, counted in SQL with
GROUP BY, joined to every area of that level in the reader's scope so that areas without cases
show 0; rate = cases per 1,000 households, None where the households are unknown) and ``trend``
(cases per day, week (Monday–Sunday) or month of local time, zero-filled, optionally one series
per top-level category or per area, for a time slider or small multiples). Days are grouped in
the database; weeks and months are summed from the days.

An empty period or no cases gives an empty result with a ``message``, never an error.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.analysis.common import (CASE_AREA_COLUMN, LEVEL_ZH, AnalysisError, areas_in_scope, case_where,
                                     check_level, local_day, period, resolve_area)
from gridmap.incidents.models import Case, Category

TREND_PERIODS = ("day", "week", "month")
TREND_BY = ("none", "category", "cell", "community", "street")
#: at most this many series in one trend answer (the largest ones; the rest are summed as "other")
MAX_SERIES = 24


def rates(session: Session, actor: Actor | None, *, level: str = "cell", date_from=None, date_to=None,
          category: str | None = None, area: str | None = None, per=None) -> dict:
    """Cases reported in the period per area of ``level`` and per 1,000 households."""
    level = check_level(level, ("cell", "community", "street", "district"))
    per = per or period(date_from, date_to)
    within = resolve_area(session, area)
    col = CASE_AREA_COLUMN[level]
    where = case_where(session, actor, per, category=category, area=within)
    counts = dict(session.execute(select(col, func.count(Case.id)).where(*where, col.isnot(None))
                                  .group_by(col)).all())
    unplaced = int(session.scalar(select(func.count(Case.id)).where(*where, col.is_(None))) or 0)
    areas = areas_in_scope(session, actor, level, within=within, geometry=False)
    rows = []
    for aid, code, name, hh in zip(areas["id"], areas["code"], areas["name"], areas["households"]):
        n = int(counts.get(int(aid), 0))
        rows.append({"id": int(aid), "code": code, "name": name, "households": None if pd.isna(hh) else int(hh),
                     "count": n, "per_1000_households": round(n * 1000.0 / hh, 3) if hh and not pd.isna(hh) else None})
    rows.sort(key=lambda r: (-r["count"], r["code"]))
    total = sum(r["count"] for r in rows)
    out = {"level": level, "level_name": LEVEL_ZH[level], "period": per.as_dict(), "category": category,
           "area": within.code if within else None, "total": total, "unplaced": unplaced, "areas": len(rows),
           "definition": "count = cases reported (reported_at) in the period, rejected cases and duplicates left out; "
                         "per_1000_households = count × 1000 / households (a cell's registered households once a base "
                         "register is loaded, else its stored figure; areas above: stored, else summed over the cells)",
           "rows": rows, "message": None}
    if not rows:
        out["message"] = f"no {level} areas in your scope{' inside ' + within.code if within else ''}"
    elif total == 0:
        out["message"] = f"no cases reported from {per.date_from} to {per.date_to}"
    return out


def _period_start(day: dt.date, unit: str) -> dt.date:
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def _period_keys(d0: dt.date, d1: dt.date, unit: str) -> list[dt.date]:
    keys, d = [], _period_start(d0, unit)
    while d <= d1:
        keys.append(d)
        if unit == "day":
            d += dt.timedelta(days=1)
        elif unit == "week":
            d += dt.timedelta(days=7)
        else:
            d = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return keys


def trend(session: Session, actor: Actor | None, *, unit: str = "month", date_from=None, date_to=None,
          category: str | None = None, area: str | None = None, by: str = "none", per=None) -> dict:
    """Cases reported per ``unit`` (day, week, month of local time), zero-filled over the period."""
    if unit not in TREND_PERIODS:
        raise AnalysisError("period", f"period must be one of {', '.join(TREND_PERIODS)}, got {str(unit)[:20]!r}")
    if by not in TREND_BY:
        raise AnalysisError("by", f"by must be one of {', '.join(TREND_BY)}, got {str(by)[:20]!r}")
    per = per or period(date_from, date_to, default_days=365)
    within = resolve_area(session, area)
    where = case_where(session, actor, per, category=category, area=within)
    day = local_day(session, Case.reported_at, per).label("day")
    if by == "none":
        key = None
    elif by == "category":
        key = Case.category_id
    else:
        key = CASE_AREA_COLUMN[by]
    cols = [day] + ([key.label("k")] if key is not None else []) + [func.count(Case.id).label("n")]
    q = select(*cols).where(*where).group_by(*([day] + ([key] if key is not None else [])))
    df = pd.DataFrame(session.execute(q).all(), columns=["day"] + (["k"] if key is not None else []) + ["n"])
    keys = _period_keys(per.date_from, per.date_to, unit)
    periods = [k.isoformat() for k in keys]
    out = {"unit": unit, "by": by, "period": per.as_dict(), "category": category,
           "area": within.code if within else None, "periods": periods, "series": [], "total": 0, "message": None}
    if df.empty:
        out["series"] = [] if by != "none" else [{"key": "all", "name": "全部", "counts": [0] * len(periods)}]
        out["message"] = f"no cases reported from {per.date_from} to {per.date_to}"
        return out
    df["p"] = [_period_start(dt.date.fromisoformat(d), unit).isoformat() for d in df["day"]]
    if key is None:
        df["k"] = "all"
    elif by != "category":
        df = df[df["k"].notna()].copy()  # cases without an area of that level are in no series
        df["k"] = df["k"].astype("int64")
    elif by == "category":
        # one series per top-level category (city, governance, dispute, …)
        cats = pd.DataFrame(session.execute(select(Category.id, Category.code, Category.name)).all(),
                            columns=["id", "code", "name"])
        top = {c: c.split(".")[0] for c in cats["code"]}
        code_of = dict(zip(cats["id"], cats["code"]))
        df["k"] = [top[code_of[int(k)]] for k in df["k"]]
    table = df.groupby(["k", "p"])["n"].sum().unstack(fill_value=0).reindex(columns=periods, fill_value=0)
    table = table.loc[table.sum(axis=1).sort_values(ascending=False).index]
    if len(table) > MAX_SERIES:
        rest = table.iloc[MAX_SERIES - 1:].sum()
        table = pd.concat([table.iloc[:MAX_SERIES - 1], rest.to_frame("other").T])
    names = _series_names(session, by, list(table.index))
    out["series"] = [{"key": str(k), "name": names.get(k, str(k)), "counts": [int(v) for v in row]}
                     for k, row in zip(table.index, table.to_numpy())]
    out["total"] = int(table.to_numpy().sum())
    return out


def _series_names(session: Session, by: str, keys: list) -> dict:
    from gridmap.boundaries.models import Area

    if by == "none":
        return {"all": "全部"}
    if by == "category":
        return dict(session.execute(select(Category.code, Category.name).where(Category.code.in_(
            [k for k in keys if k != "other"]))).all()) | {"other": "其他"}
    ids = [k for k in keys if k != "other" and not pd.isna(k)]
    rows = session.execute(select(Area.id, Area.code, Area.name).where(Area.id.in_([int(i) for i in ids]))).all()
    return {r.id: f"{r.code} {r.name}" for r in rows} | {"other": "其他"}
