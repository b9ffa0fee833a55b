"""Duplicate suggestions: open cases of the same category reported nearby, recently.

Owns: ``suggest_duplicates`` (FixMyStreet's 250 m rule: a bounding-box prefilter in SQL on the
WGS84 lon/lat columns, then the exact great-circle distance in Python on the few candidates).
Marking a case as a duplicate is a life-cycle action ("mark_duplicate"), not done here.
"""
from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.incidents.models import Case

#: statuses of cases that are no longer open (a duplicate of those is a new case)
CLOSED_STATUSES = ("rejected", "closed", "evaluated")
EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def suggest_duplicates(session: Session, *, category_id: int, lon: float | None, lat: float | None,
                       at: dt.datetime, radius_m: float = 250.0, days: int = 7, limit: int = 5,
                       exclude_id: int | None = None, scope=None) -> list[tuple[Case, float]]:
    """Open cases of ``category_id`` within ``radius_m`` of (lon, lat) reported in the ``days``
    before ``at`` (and up to ``at``), nearest first, as ``(case, distance_m)``.

    ``scope`` is an optional extra WHERE clause (``accounts.scope.case_filter``).
    """
    if lon is None or lat is None:
        return []
    dlat = radius_m / 111_320.0
    dlon = radius_m / (111_320.0 * max(math.cos(math.radians(lat)), 0.01))
    q = select(Case).where(
        Case.category_id == category_id, Case.status.not_in(CLOSED_STATUSES), Case.duplicate_of_id.is_(None),
        Case.lon.between(lon - dlon, lon + dlon), Case.lat.between(lat - dlat, lat + dlat),
        Case.reported_at >= at - dt.timedelta(days=days), Case.reported_at <= at)
    if exclude_id is not None:
        q = q.where(Case.id != exclude_id)
    if scope is not None:
        q = q.where(scope)
    found = []
    for c in session.scalars(q.limit(1000)):
        d = haversine_m(lon, lat, c.lon, c.lat)
        if d <= radius_m:
            found.append((c, d))
    found.sort(key=lambda t: (t[1], -t[0].id))
    return found[:limit]
