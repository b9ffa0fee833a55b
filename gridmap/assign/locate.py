"""Locate answers the worker: which cell holds a point, and who answers for it now.

Owns: ``locate_one`` (the boundaries' lookup of one point plus the responsible worker of its cell:
code, name, masked phone, and the level of the answer: "primary", "substitute" (an absence's
substitute or a backup) or "fallback" (属地兜底: the community's head, the street's or the district's
staff), with the router's reason) and ``ResponsibleColumns`` (the same per row of a geocoded CSV,
one router answer per cell). It sits above ``boundaries`` (which imports no other domain) and
uses ``assign.router`` for the answer; this is what ``GET /api/v1/locate``, ``gridmap locate`` and
``gridmap geocode`` print.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.assign.models import Worker
from gridmap.assign.router import cell_fallback, responsible_on_duty
from gridmap.boundaries.lookup import locate_one as locate_cell
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.incidents.queries import mask_phone

#: columns ``gridmap geocode`` adds after the boundaries' own
WORKER_COLS = ("worker_code", "worker_name", "worker_phone", "responsible_level")


def responsible_for(session: Session, cell_id: int, at: dt.datetime) -> dict:
    """{"worker": {code, name, phone (masked)} | None, "level", "reason"} for a cell at ``at``."""
    worker, level, reason = responsible_on_duty(session, cell_id, at)
    if worker is None:
        r = cell_fallback(session, cell_id, at, reason.split(": ", 1)[-1])
        worker = session.get(Worker, r.worker_id) if r.worker_id is not None else None
        level, reason = ("fallback" if worker is not None else "none"), r.reason
    return {"worker": None if worker is None else {"code": worker.code, "name": worker.name,
                                                     "phone": mask_phone(worker.phone)},
            "level": level, "reason": reason}


def locate_one(session: Session, x: float, y: float, crs="wgs84", snap_m: float = 100.0,
               at: dt.datetime | None = None) -> dict:
    """The boundaries' answer for one point (cell, parents, snapped, distance_m) plus
    ``responsible`` (see ``responsible_for``; None when the point is in no cell)."""
    out = locate_cell(session, x, y, crs, snap_m, at)
    out["responsible"] = None
    cell = out.get("cell")
    if cell:
        cell_id = session.scalar(select(Area.id).where(Area.code == cell["code"]))
        if cell_id is not None:
            out["responsible"] = responsible_for(session, cell_id, at or utcnow())
    return out


class ResponsibleColumns:
    """Adds WORKER_COLS to geocoded chunks (``boundaries.geocode.geocode_csv``'s ``extra``),
    asking the router once per cell for the whole run."""

    def __init__(self, session: Session, at: dt.datetime | None = None):
        self.session = session
        self.at = at or utcnow()
        self._by_cell: dict[str, tuple] = {}

    def _answer(self, code: str) -> tuple:
        got = self._by_cell.get(code)
        if got is None:
            cell_id = self.session.scalar(select(Area.id).where(Area.code == code))
            r = responsible_for(self.session, cell_id, self.at) if cell_id is not None else None
            w = r["worker"] if r else None
            got = self._by_cell[code] = ((w["code"], w["name"], w["phone"]) if w else (None, None, None)) + (
                (r["level"] if r else None),)
        return got

    def __call__(self, frame):
        codes = frame["cell_code"].tolist()
        answers = [self._answer(c) if isinstance(c, str) and c else (None, None, None, None) for c in codes]
        for i, col in enumerate(WORKER_COLS):
            frame[col] = [a[i] for a in answers]
        return frame
