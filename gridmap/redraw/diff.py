"""The differences between the boundaries at two moments.

Owns: :func:`diff`: areas created, changed (with area change) and retired between two times, per
level, read from the geometry versions (``valid_from`` / ``valid_to``).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gridmap.boundaries.models import Area, AreaGeometry
from gridmap.redraw.models import BoundaryDraft
from gridmap.redraw.problems import DraftError


def diff(session: Session, at_a: dt.datetime, at_b: dt.datetime, *, level: str | None = None) -> dict:
    """Areas created, changed and retired between two moments, with area deltas (m²)."""
    for name, t in (("from", at_a), ("to", at_b)):
        if t is None or t.tzinfo is None:
            raise DraftError(f"'{name}' must be a timezone-aware moment")

    def at(t):
        rows = session.execute(
            select(Area.id, Area.level, Area.code, Area.name, AreaGeometry.id, AreaGeometry.version,
                   AreaGeometry.area_m2)
            .join(AreaGeometry, AreaGeometry.area_id == Area.id)
            .where(AreaGeometry.valid_from <= t, or_(AreaGeometry.valid_to.is_(None), AreaGeometry.valid_to > t),
                   *([Area.level == level] if level else []))).all()
        return {r[0]: r for r in rows}

    a, b = at(at_a), at(at_b)
    out: dict = {"from": at_a.isoformat(), "to": at_b.isoformat(), "created": [], "changed": [], "retired": []}
    for aid in sorted(set(b) - set(a), key=lambda i: b[i][2]):
        r = b[aid]
        out["created"].append({"code": r[2], "level": r[1], "name": r[3], "version": r[5],
                               "area_m2": round(r[6], 1)})
    for aid in sorted(set(a) - set(b), key=lambda i: a[i][2]):
        r = a[aid]
        out["retired"].append({"code": r[2], "level": r[1], "name": r[3], "version": r[5],
                               "area_m2": round(r[6], 1)})
    for aid in sorted(set(a) & set(b), key=lambda i: a[i][2]):
        ra, rb = a[aid], b[aid]
        if ra[4] != rb[4]:
            out["changed"].append({"code": ra[2], "level": ra[1], "name": rb[3], "version_from": ra[5],
                                   "version_to": rb[5], "area_m2_from": round(ra[6], 1),
                                   "area_m2_to": round(rb[6], 1), "area_m2_delta": round(rb[6] - ra[6], 1)})
    lo, hi = sorted([at_a, at_b])
    out["drafts"] = [{"id": i, "title": t, "published_at": p.isoformat(), "published_by": by, "reason": rs}
                     for i, t, p, by, rs in session.execute(
                         select(BoundaryDraft.id, BoundaryDraft.title, BoundaryDraft.published_at,
                                BoundaryDraft.published_by, BoundaryDraft.reason)
                         .where(BoundaryDraft.status == "published", BoundaryDraft.published_at > lo,
                                BoundaryDraft.published_at <= hi).order_by(BoundaryDraft.published_at))]
    out["summary"] = {k: len(out[k]) for k in ("created", "changed", "retired")}
    return out
