"""Registry records → cells, through the boundary lookup index, and re-placement after a republish.

Owns: ``place_points`` (arrays of WGS84 points → cell, community, street and district ids, one
vectorized lookup, no loop per point) and ``replace_records`` (every address located again
against the current boundaries; buildings, households and organisations then take their address's
areas and residents their household's, in set-based UPDATEs). Only addresses carry a point; the
other records inherit the address's cell, so one lookup places the whole register.
"""
from __future__ import annotations

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gridmap.boundaries.lookup import LEVEL_KEYS, get_index
from gridmap.boundaries.models import Area
from gridmap.registry.models import Address, Building, Household, Organisation, Person

AREA_COLUMNS = tuple(f"{lvl}_id" for lvl in LEVEL_KEYS)  # cell_id, community_id, street_id, district_id


def place_points(session: Session, lon, lat, snap_m: float = 100.0) -> dict[str, np.ndarray]:
    """Per point: ``cell_id``, ``community_id``, ``street_id``, ``district_id`` (object arrays, None where
    the point lies outside every cell beyond ``snap_m``) and ``cell_code``."""
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    n = len(lon)
    out = {c: np.full(n, None, dtype=object) for c in AREA_COLUMNS + ("cell_code",)}
    idx = get_index(session)
    if n == 0 or len(idx) == 0:
        return out
    res = idx.locate(lon, lat, "wgs84", snap_m)
    ids = dict(session.execute(select(Area.code, Area.id).where(Area.retired_at.is_(None))).all())
    for lvl in LEVEL_KEYS:
        codes = idx.level_codes(lvl, res.cell)
        if lvl == "cell":
            out["cell_code"] = codes
        out[f"{lvl}_id"] = _map_codes(codes, ids)
    return out


def _map_codes(codes: np.ndarray, ids: dict) -> np.ndarray:
    """Area ids of an array of codes (None stays None), one dict look-up per distinct code."""
    keys = np.where(codes == None, "", codes).astype(str)  # noqa: E711 - elementwise
    uniq, inv = np.unique(keys, return_inverse=True)
    mapped = np.array([ids.get(u) if u else None for u in uniq] + [None], dtype=object)
    return mapped[:-1][inv] if len(uniq) else np.full(len(codes), None, dtype=object)


def _inherit(session: Session, table, parent, fk) -> int:
    """Copy the area columns of ``parent`` (joined on ``fk``) into ``table``: one UPDATE."""
    values = {c: select(getattr(parent, c)).where(parent.id == fk).scalar_subquery() for c in AREA_COLUMNS}
    return session.execute(update(table).values(**values).execution_options(synchronize_session=False)).rowcount


def inherit_areas(session: Session) -> None:
    """Buildings, households, organisations ← their address; residents ← their household."""
    for table in (Building, Household, Organisation):
        _inherit(session, table, Address, table.address_id)
    _inherit(session, Person, Household, Person.household_id)


def replace_records(session: Session, *, snap_m: float = 100.0, batch: int = 50_000) -> dict:
    """Locate every address again (after boundaries were republished) and re-place the records
    that hang on them. Returns how many addresses changed cell and how many have none."""
    from gridmap.registry.addresses import register_changed

    total = session.scalar(select(func.count(Address.id))) or 0
    moved = unplaced = 0
    last = 0
    while True:
        rows = session.execute(select(Address.id, Address.lon, Address.lat, Address.cell_id)
                               .where(Address.id > last).order_by(Address.id).limit(batch)).all()
        if not rows:
            break
        last = rows[-1][0]
        placed = place_points(session, [r[1] for r in rows], [r[2] for r in rows], snap_m)
        old = np.array([r[3] for r in rows], dtype=object)
        new = placed["cell_id"]
        unplaced += int(np.sum(new == None))  # noqa: E711 - elementwise
        changed = np.flatnonzero(new != old)
        changes = [{"id": rows[k][0], "cell_code": placed["cell_code"][k], **{c: placed[c][k] for c in AREA_COLUMNS}}
                   for k in changed]
        if changes:
            session.execute(update(Address), changes)
            moved += len(changes)
    if moved:
        inherit_areas(session)
        register_changed()
    session.flush()
    return {"addresses": total, "moved": moved, "unplaced": unplaced}
