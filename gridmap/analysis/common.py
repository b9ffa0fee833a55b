"""What every analysis shares: the period, the case filter, the areas of a level in scope, households.

Owns: ``AnalysisError`` (a bad parameter, HTTP 400), turning local dates into a UTC period,
the WHERE clauses of "the cases counted" (reported in the period, within the reader's scope,
optionally of a category with its subcategories and inside one area; rejected cases, i.e.
refused reports and marked duplicates, are never counted), the current areas of a level within the
scope (with households: stored, else the sum over their cells) and the local-day expression
that both databases group by.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
from sqlalchemy import and_, literal_column, select
from sqlalchemy.orm import Session

import gridmap.models  # noqa: F401
from gridmap.accounts.actor import Actor
from gridmap.boundaries.models import LEVELS, Area
from gridmap.incidents.models import Case
from gridmap.timebounds import OutOfRange, parse_day

AREA_LEVELS = ("cell", "community", "street", "district")
CASE_AREA_COLUMN = {"cell": Case.cell_id, "community": Case.community_id, "street": Case.street_id,
                    "district": Case.district_id}
LEVEL_ZH = {"cell": "网格", "community": "社区/村", "street": "街道/乡镇", "district": "区县", "worker": "网格员"}
DEFAULT_TZ = "Asia/Shanghai"


class AnalysisError(ValueError):
    """A bad analysis parameter; ``field`` names it (HTTP 400)."""

    def __init__(self, field: str, message: str, status: int = 400):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Period:
    date_from: dt.date
    date_to: dt.date
    start: dt.datetime  # UTC, included
    end: dt.datetime  # UTC, excluded
    tz: str = DEFAULT_TZ

    def label(self) -> str:
        return f"{self.date_from.isoformat()} 至 {self.date_to.isoformat()}"

    def as_dict(self) -> dict:
        return {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(), "timezone": self.tz}


def parse_date(value, field: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return parse_day(value, field)
    except OutOfRange as e:
        raise AnalysisError(field, str(e)) from None
    except ValueError:
        raise AnalysisError(field, f"{field} must be a date YYYY-MM-DD, got {str(value)[:40]!r}") from None


def period(date_from, date_to, *, tz: str = DEFAULT_TZ, default_days: int = 30,
           today: dt.date | None = None) -> Period:
    """The local days ``date_from`` … ``date_to`` (both included). Missing ``to``: today; missing
    ``from``: ``default_days`` before ``to``."""
    from gridmap.incidents.metrics import MetricsError, period_bounds

    d1 = parse_date(date_to, "to") or today or dt.datetime.now(ZoneInfo(tz)).date()
    d0 = parse_date(date_from, "from") or (d1 - dt.timedelta(days=default_days - 1))
    try:
        start, end = period_bounds(d0, d1, tz)
    except MetricsError as e:
        raise AnalysisError("from" if "start" in str(e) or "date_from" in str(e) else "to", str(e)) from None
    return Period(d0, d1, start, end, tz)


def resolve_area(session: Session, code: str | None) -> Area | None:
    if code in (None, ""):
        return None
    a = session.scalar(select(Area).where(Area.code == str(code).strip()))
    if a is None:
        raise AnalysisError("area", f"no area with code {str(code).strip()!r}")
    return a


def category_ids(session: Session, code: str | None) -> list[int] | None:
    if code in (None, ""):
        return None
    from gridmap.incidents.queries import QueryError, category_ids_with_children

    try:
        return category_ids_with_children(session, str(code))
    except QueryError as e:
        raise AnalysisError("category", e.message) from None


def case_where(session: Session, actor: Actor | None, per: Period, *, category: str | None = None,
               area: Area | None = None, time_col=None) -> list:
    """The cases counted: in scope, ``time_col`` (default reported_at) in the period, not rejected,
    of ``category`` (with its subcategories) and inside ``area``."""
    from gridmap.accounts.scope import case_filter

    col = Case.reported_at if time_col is None else time_col
    where = [col >= per.start, col < per.end, Case.status != "rejected"]
    if actor is not None:
        where.insert(0, case_filter(session, actor))
    ids = category_ids(session, category)
    if ids is not None:
        where.append(Case.category_id.in_(ids))
    if area is not None:
        where.append(CASE_AREA_COLUMN[area.level] == area.id)
    return where


def check_level(level: str, allowed=AREA_LEVELS) -> str:
    level = (level or "cell").strip()
    if level not in allowed:
        raise AnalysisError("level", f"level must be one of {', '.join(allowed)}, got {level[:20]!r}")
    return level


def _ancestor_ids(session: Session) -> pd.DataFrame:
    """Every current area with the ids of its community, street and district (one query)."""
    rows = session.execute(select(Area.id, Area.level, Area.code, Area.name, Area.parent_id, Area.households)
                           .where(Area.retired_at.is_(None))).all()
    df = pd.DataFrame(rows, columns=["id", "level", "code", "name", "parent_id", "households"])
    level = pd.Series(df["level"].to_numpy(), index=df["id"].to_numpy())
    parent = pd.Series(df["parent_id"].to_numpy(dtype="float64"), index=df["id"].to_numpy())
    cur = pd.Series(df["id"].to_numpy(dtype="float64"))
    found = {lvl: pd.Series([float("nan")] * len(df)) for lvl in ("community", "street", "district")}
    for _ in range(4):  # an area, its parent, grandparent, great-grandparent
        lv = cur.map(level)
        for lvl, col in found.items():
            found[lvl] = col.where(col.notna() | (lv != lvl), cur)
        cur = cur.map(parent)
    for lvl, col in found.items():
        df[f"{lvl}_id"] = col.astype("Int64").to_numpy()
    return df


def households(session: Session, level: str) -> dict[int, int]:
    """Households per area of ``level``: the stored figure, else the sum over its current cells.

    Once a base register is loaded (gridmap.registry), a cell's figure is its registered
    households (the stored, synthetic figure stays the fallback of cells with none registered) and
    every level above sums its cells."""
    from gridmap.registry.service import households_by_cell

    df = _ancestor_ids(session)
    registered = households_by_cell(session)
    if registered:
        is_cell = df["level"] == "cell"
        reg = df.loc[is_cell, "id"].map(registered)
        df.loc[is_cell, "households"] = reg.where(reg.notna(), df.loc[is_cell, "households"])
        df.loc[~is_cell, "households"] = None
    stored = df[(df["level"] == level) & df["households"].notna()]
    out = {int(i): int(h) for i, h in zip(stored["id"], stored["households"])}
    if level != "cell":
        cells = df[(df["level"] == "cell") & df["households"].notna()]
        summed = cells.groupby(f"{level}_id")["households"].sum()
        for aid, total in summed.items():
            out.setdefault(int(aid), int(total))
    return out


def areas_in_scope(session: Session, actor: Actor | None, level: str, *, within: Area | None = None,
                   geometry: bool = True) -> gpd.GeoDataFrame | pd.DataFrame:
    """Current areas of ``level`` the actor may see (inside ``within``), sorted by code, with households."""
    from gridmap.accounts.scope import area_ids_in_scope

    if geometry:
        from gridmap.boundaries.service import load_level

        df = load_level(session, level)
    else:
        df = pd.DataFrame(session.execute(select(Area.id, Area.code, Area.name, Area.households)
                                          .where(Area.level == level, Area.retired_at.is_(None))
                                          .order_by(Area.code)).all(),
                          columns=["id", "code", "name", "households"])
    if actor is not None:
        scope = area_ids_in_scope(session, actor)
        if scope is not None:
            df = df[df["id"].isin(scope)]
    if within is not None and len(df):
        if within.level == level:
            df = df[df["id"] == within.id]
        else:
            anc = _ancestor_ids(session)
            key = f"{within.level}_id"
            if key in anc.columns:
                ids = set(anc.loc[anc[key] == within.id, "id"])
                df = df[df["id"].isin(ids)]
            else:
                df = df.iloc[0:0]
    hh = households(session, level)
    df = df.copy()
    df["households"] = [hh.get(int(i)) for i in df["id"]]
    return df.sort_values("code").reset_index(drop=True)


def utc_offset_seconds(per: Period) -> int:
    """The zone's UTC offset (seconds) at the period's start; Asia/Shanghai has had no DST since 1991."""
    return int(per.start.astimezone(ZoneInfo(per.tz)).utcoffset().total_seconds())


def local_day(session: Session, col, per: Period):
    """SQL: the local calendar day 'YYYY-MM-DD' of a UTC timestamp column, on both databases."""
    from sqlalchemy import func

    off = utc_offset_seconds(per)
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(col + literal_column(f"interval '{off:d} seconds'"), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", col, f"{off:+d} seconds")


def in_period(col, per: Period):
    return and_(col >= per.start, col < per.end)


__all__ = ["AnalysisError", "Period", "period", "parse_date", "case_where", "areas_in_scope", "households",
           "resolve_area", "check_level", "local_day", "LEVELS", "LEVEL_ZH", "CASE_AREA_COLUMN"]
