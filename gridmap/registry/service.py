"""Reading the register: lists, one record, summaries per area, households per cell, whole views
and exports of personal data (logged), and the re-keying of personal data after a key rotation.

Owns: the JSON shape of each kind (masked: identity numbers and phones only as their masks), the
roles that may see personal data whole or export it (``FULL_ROLES``), and the access log rows.
Scope is not decided here (the registry sits below accounts' scope rules): callers pass ``scope``,
a function giving the WHERE clause of a table's area columns (the web layer builds it from
``gridmap.accounts.scope.scope_filter``), and ``area_ids`` (the areas a summary may list).
"""
from __future__ import annotations

import csv
import io
import json
from typing import Callable

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from gridmap.boundaries.models import Area
from gridmap.registry import pii
from gridmap.registry.models import AccessLog, Address, Building, Household, Organisation, Person, PersonTag, Tag

MODELS = {"addresses": Address, "buildings": Building, "households": Household, "persons": Person,
          "organisations": Organisation}
KINDS = tuple(MODELS)
#: roles that may see identity numbers and phones whole and export personal data (each time logged)
FULL_ROLES = ("street", "district", "city", "admin")
#: kinds holding personal data (an export of them is logged)
PERSONAL_KINDS = ("persons", "organisations")
LEVEL_COLUMN = {"cell": "cell_id", "community": "community_id", "street": "street_id", "district": "district_id"}

Scope = Callable[[type], object] | None


class RegistryError(ValueError):
    def __init__(self, field: str, message: str, status: int = 400):
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


def area_scope(session: Session, area_id: int | None) -> Scope:
    """The records inside one area (its own level's column), None (everything) for no area.
    An area id that does not exist sees nothing."""
    from sqlalchemy import false

    if area_id is None:
        return None
    area = session.get(Area, area_id)
    if area is None or area.level not in LEVEL_COLUMN:
        return lambda m: false()
    col = LEVEL_COLUMN[area.level]
    return lambda m: getattr(m, col) == area.id


def _where(model, scope: Scope) -> list:
    return [scope(model)] if scope is not None else []


def _search(model, q: str):
    like = f"%{q}%"
    if model is Address:
        return or_(Address.address.like(like), Address.code.like(like))
    if model is Building:
        return or_(Building.code.like(like), Building.name.like(like))
    if model is Household:
        return or_(Household.code.like(like), Household.room.like(like))
    if model is Person:
        return Person.name.like(like)
    return or_(Organisation.name.like(like), Organisation.credit_code.like(like))


def list_records(session: Session, kind: str, *, scope: Scope = None, cell_id: int | None = None,
                 community_id: int | None = None, q: str | None = None, tag: str | None = None,
                 household_id: int | None = None, building_id: int | None = None, current_only: bool = True,
                 page: int = 1, per_page: int = 50) -> tuple[list[dict], int]:
    """(masked records, total) of ``kind`` in scope, filtered, ordered by code (persons by name)."""
    model = MODELS[kind]
    where = _where(model, scope)
    if cell_id is not None:
        where.append(model.cell_id == cell_id)
    if community_id is not None:
        where.append(model.community_id == community_id)
    if q:
        where.append(_search(model, q))
    if kind == "persons":
        if current_only:
            where.append(Person.moved_out_on.is_(None))
        if household_id is not None:
            where.append(Person.household_id == household_id)
        if tag:
            where.append(Person.id.in_(select(PersonTag.person_id).join(Tag, Tag.id == PersonTag.tag_id)
                                       .where(or_(Tag.code == tag, Tag.name == tag))))
    if kind == "households" and building_id is not None:
        where.append(Household.building_id == building_id)
    total = session.scalar(select(func.count(model.id)).where(*where)) or 0
    order = (model.name, model.id) if model in (Person, Organisation) else (model.code, model.id)
    rows = list(session.scalars(select(model).where(*where).order_by(*order)
                                .offset((page - 1) * per_page).limit(per_page)))
    return record_dicts(session, kind, rows), total


def get_record(session: Session, kind: str, record_id: int, *, scope: Scope = None) -> dict | None:
    """One masked record in scope, or None (missing and out of scope look the same)."""
    model = MODELS[kind]
    obj = session.scalar(select(model).where(model.id == record_id, *_where(model, scope)))
    return record_dicts(session, kind, [obj])[0] if obj is not None else None


def record_dicts(session: Session, kind: str, rows: list) -> list[dict]:
    """The JSON shape of records (masked), with the names of their cells and, for persons, tags."""
    if not rows:
        return []
    cells = dict(session.execute(select(Area.id, Area.code).where(Area.id.in_({r.cell_id for r in rows if r.cell_id})))
                 .all())
    addr_ids = {getattr(r, "address_id", None) for r in rows} - {None}
    addrs = dict(session.execute(select(Address.id, Address.address).where(Address.id.in_(addr_ids))).all()) \
        if addr_ids else {}
    tags: dict[int, list[str]] = {}
    if kind == "persons":
        for pid, name in session.execute(select(PersonTag.person_id, Tag.name).join(Tag, Tag.id == PersonTag.tag_id)
                                         .where(PersonTag.person_id.in_([r.id for r in rows]))
                                         .order_by(Tag.id)):
            tags.setdefault(pid, []).append(name)
    out = []
    for r in rows:
        d = {"id": r.id, "cell": cells.get(r.cell_id)}
        if kind == "addresses":
            d.update(code=r.code, address=r.address, road=r.road, number=r.number, building=r.building,
                     unit=r.unit, room=r.room, lon=r.lon, lat=r.lat)
        elif kind == "buildings":
            d.update(code=r.code, name=r.name, floors=r.floors, kind=r.kind, address=addrs.get(r.address_id),
                     address_id=r.address_id)
        elif kind == "households":
            d.update(code=r.code, room=r.room, size=r.size, use=r.use, address=addrs.get(r.address_id),
                     address_id=r.address_id, building_id=r.building_id)
        elif kind == "persons":
            d.update(name=r.name, id_number=r.id_masked, phone=r.phone_masked, gender=r.gender,
                     birth_date=r.birth_date.isoformat() if r.birth_date else None, household_id=r.household_id,
                     residence=r.residence, tags=tags.get(r.id, []),
                     moved_out_on=r.moved_out_on.isoformat() if r.moved_out_on else None)
        else:
            d.update(credit_code=r.credit_code, name=r.name, kind=r.kind, contact=r.contact, phone=r.phone_masked,
                     address=addrs.get(r.address_id), address_id=r.address_id)
        out.append(d)
    return out


def building_tree(session: Session, *, scope: Scope = None, q: str | None = None, page: int = 1,
                  per_page: int = 20) -> tuple[list[dict], int]:
    """(buildings → households → current residents, masked; total buildings) in scope, by code.

    ``q`` keeps the buildings whose code, name or address matches, or that house a resident of
    that name. Households of an address without a building record are not listed here."""
    where = _where(Building, scope)
    if q:
        like = f"%{q}%"
        where.append(or_(Building.code.like(like), Building.name.like(like),
                         Building.address_id.in_(select(Address.id).where(Address.address.like(like))),
                         Building.id.in_(select(Household.building_id).join(Person, Person.household_id == Household.id)
                                         .where(Person.name.like(like), Person.moved_out_on.is_(None)))))
    total = session.scalar(select(func.count(Building.id)).where(*where)) or 0
    blds = list(session.scalars(select(Building).where(*where).order_by(Building.code)
                                .offset((page - 1) * per_page).limit(per_page)))
    if not blds:
        return [], total
    hhs = list(session.scalars(select(Household).where(Household.building_id.in_([b.id for b in blds]),
                                                       *_where(Household, scope)).order_by(Household.code)))
    people = list(session.scalars(select(Person).where(Person.household_id.in_([h.id for h in hhs]),
                                                       Person.moved_out_on.is_(None), *_where(Person, scope))
                                  .order_by(Person.household_id, Person.birth_date))) if hhs else []
    pd_ = {}
    for d in record_dicts(session, "persons", people):
        pd_.setdefault(d["household_id"], []).append(d)
    hd = {}
    for d in record_dicts(session, "households", hhs):
        d["residents"] = pd_.get(d["id"], [])
        hd.setdefault(d["building_id"], []).append(d)
    out = []
    for d in record_dicts(session, "buildings", blds):
        d["households"] = hd.get(d["id"], [])
        out.append(d)
    return out, total


def cared_for(session: Session, *, scope: Scope = None, limit: int = 200) -> list[dict]:
    """Current residents in scope with at least one tag (the people grid workers look after), masked."""
    rows = list(session.scalars(select(Person).where(Person.moved_out_on.is_(None), *_where(Person, scope),
                                                     Person.id.in_(select(PersonTag.person_id)))
                                .order_by(Person.cell_id, Person.name, Person.id).limit(limit)))
    return record_dicts(session, "persons", rows)


# ----------------------------------------------------------------------------- households per cell

def households_by_cell(session: Session) -> dict[int, int]:
    """Registered households per cell (empty when no register is loaded): the figure the rates and
    the balance advisor use instead of the synthetic one, cell by cell."""
    return {int(c): int(n) for c, n in session.execute(
        select(Household.cell_id, func.count(Household.id)).where(Household.cell_id.isnot(None))
        .group_by(Household.cell_id))}


def population_by_cell(session: Session) -> dict[int, int]:
    """Current residents (not moved out) per cell."""
    return {int(c): int(n) for c, n in session.execute(
        select(Person.cell_id, func.count(Person.id)).where(Person.cell_id.isnot(None), Person.moved_out_on.is_(None))
        .group_by(Person.cell_id))}


def household_points(session: Session, community_id: int):
    """(lon, lat) of every registered household of a community (its address's point), an (n, 2) array."""
    import numpy as np

    rows = session.execute(select(Address.lon, Address.lat).join(Household, Household.address_id == Address.id)
                           .where(Household.community_id == community_id)).all()
    return np.array(rows, dtype="float64").reshape(-1, 2)


# ----------------------------------------------------------------------------- summary

def summary(session: Session, level: str = "cell", *, scope: Scope = None, area_ids: set[int] | None = None) -> dict:
    """Per area of ``level`` (those in ``area_ids``; None: all current ones): addresses, buildings,
    households, persons (current residents) and organisations, and persons per tag. Counted with one
    GROUP BY per kind; areas without records show zeros."""
    if level not in LEVEL_COLUMN:
        raise RegistryError("level", f"level must be one of {', '.join(LEVEL_COLUMN)}, got {str(level)[:20]!r}")
    colname = LEVEL_COLUMN[level]
    counts: dict[str, dict[int, int]] = {}
    for kind, model in MODELS.items():
        col = getattr(model, colname)
        where = [col.isnot(None), *_where(model, scope)]
        if model is Person:
            where.append(Person.moved_out_on.is_(None))
        counts[kind] = dict(session.execute(select(col, func.count(model.id)).where(*where).group_by(col)).all())
    by_tag: dict[int, dict[str, int]] = {}
    pcol = getattr(Person, colname)
    for aid, code, n in session.execute(
            select(pcol, Tag.code, func.count(PersonTag.person_id)).join(PersonTag, PersonTag.person_id == Person.id)
            .join(Tag, Tag.id == PersonTag.tag_id)
            .where(pcol.isnot(None), Person.moved_out_on.is_(None), *_where(Person, scope))
            .group_by(pcol, Tag.code)):
        by_tag.setdefault(aid, {})[code] = int(n)
    q = select(Area.id, Area.code, Area.name).where(Area.level == level, Area.retired_at.is_(None)).order_by(Area.code)
    rows = []
    tot = {k: 0 for k in MODELS}
    for aid, code, name in session.execute(q):
        if area_ids is not None and aid not in area_ids:
            continue
        row = {"id": aid, "code": code, "name": name, **{k: int(counts[k].get(aid, 0)) for k in MODELS},
               "tags": by_tag.get(aid, {})}
        for k in MODELS:
            tot[k] += row[k]
        rows.append(row)
    tags = [{"code": c, "name": n, "name_en": e} for c, n, e in session.execute(
        select(Tag.code, Tag.name, Tag.name_en).order_by(Tag.id))]
    return {"level": level, "areas": len(rows), "totals": tot, "tags": tags, "rows": rows,
            "definition": "persons = residents not moved out; each record counted in the area of its address "
                          "(residents: of their household)"}


# ----------------------------------------------------------------------------- personal data, whole

def may_see_whole(role: str) -> bool:
    return role in FULL_ROLES


def log_access(session: Session, *, actor_name: str, user_id: int | None, action: str, kind: str,
               record_id: int | None, rows: int, purpose: str, detail: dict | None = None) -> AccessLog:
    purpose = (purpose or "").strip()
    if not purpose:
        raise RegistryError("purpose", "say what the personal data is needed for (purpose)")
    entry = AccessLog(actor_name=actor_name[:120], user_id=user_id, action=action, kind=kind, record_id=record_id,
                      rows=rows, purpose=purpose[:500], detail=json.dumps(detail, ensure_ascii=False) if detail else None)
    session.add(entry)
    session.flush()
    return entry


def reveal(session: Session, kind: str, record_id: int, keys: pii.PiiKeys, *, role: str, actor_name: str,
           user_id: int | None, purpose: str, scope: Scope = None) -> dict | None:
    """The record with its identity number and phone whole, for a permitted role; logged."""
    if kind not in PERSONAL_KINDS:
        raise RegistryError("kind", f"{kind} hold no personal data to reveal")
    if not may_see_whole(role):
        raise RegistryError("role", "your role sees personal data masked only", 403)
    model = MODELS[kind]
    obj = session.scalar(select(model).where(model.id == record_id, *_where(model, scope)))
    if obj is None:
        return None
    log_access(session, actor_name=actor_name, user_id=user_id, action="view_full", kind=kind, record_id=obj.id,
               rows=1, purpose=purpose)
    d = record_dicts(session, kind, [obj])[0]
    if kind == "persons":
        d["id_number"] = keys.decrypt(obj.id_cipher)
    d["phone"] = keys.decrypt(obj.phone_cipher) if obj.phone_cipher else None
    return d


EXPORT_COLUMNS = {
    "addresses": ("code", "address", "lon", "lat", "cell"),
    "buildings": ("code", "address_code", "name", "floors", "kind", "cell"),
    "households": ("code", "address_code", "room", "size", "use", "cell"),
    "persons": ("id_number", "name", "phone", "household_code", "birth_date", "gender", "tags", "residence",
                "moved_out_on", "cell"),
    "organisations": ("credit_code", "name", "address_code", "kind", "contact", "phone", "cell"),
}


def export_csv(session: Session, kind: str, out, keys: pii.PiiKeys | None, *, role: str, actor_name: str,
               user_id: int | None, purpose: str, scope: Scope = None, whole: bool = False,
               batch: int = 5000) -> int:
    """Write ``kind`` in scope as CSV (the import's columns, so an export re-imports) to the text
    stream ``out``, for the permitted roles only. Personal data is masked unless ``whole``; every
    export of persons or organisations is logged. Returns the rows written."""
    if kind not in MODELS:
        raise RegistryError("kind", f"unknown kind {kind!r}")
    if not may_see_whole(role):
        raise RegistryError("role", "your role may not export the register", 403)
    if whole and keys is None:
        raise RegistryError("whole", "the personal-data keys are needed for a whole export")
    model = MODELS[kind]
    where = _where(model, scope)
    n = session.scalar(select(func.count(model.id)).where(*where)) or 0
    if kind in PERSONAL_KINDS:
        log_access(session, actor_name=actor_name, user_id=user_id, action="export", kind=kind, record_id=None,
                   rows=n, purpose=purpose, detail={"whole": whole})
    w = csv.writer(out)
    w.writerow(EXPORT_COLUMNS[kind])
    last = 0
    while True:
        rows = list(session.scalars(select(model).where(model.id > last, *where).order_by(model.id).limit(batch)))
        if not rows:
            break
        last = rows[-1].id
        for line in _export_rows(session, kind, rows, keys if whole else None):
            w.writerow([_cell_safe(v) for v in line])
    return n


def _cell_safe(v) -> str:
    """A value as text that Excel / WPS will not run as a formula."""
    s = "" if v is None else str(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@") else s


def _export_rows(session: Session, kind: str, rows: list, keys: pii.PiiKeys | None):
    cells = dict(session.execute(select(Area.id, Area.code).where(Area.id.in_({r.cell_id for r in rows if r.cell_id})))
                 .all())
    if kind == "addresses":
        for r in rows:
            yield r.code, r.address, r.lon, r.lat, cells.get(r.cell_id)
        return
    if kind == "persons":
        hh = dict(session.execute(select(Household.id, Household.code)
                                  .where(Household.id.in_({r.household_id for r in rows}))).all())
        tags: dict[int, list[str]] = {}
        for pid, name in session.execute(select(PersonTag.person_id, Tag.name).join(Tag, Tag.id == PersonTag.tag_id)
                                         .where(PersonTag.person_id.in_([r.id for r in rows])).order_by(Tag.id)):
            tags.setdefault(pid, []).append(name)
        for r in rows:
            yield (keys.decrypt(r.id_cipher) if keys else r.id_masked, r.name,
                   (keys.decrypt(r.phone_cipher) if keys and r.phone_cipher else r.phone_masked), hh.get(r.household_id),
                   r.birth_date, r.gender, ";".join(tags.get(r.id, [])), r.residence, r.moved_out_on,
                   cells.get(r.cell_id))
        return
    codes = dict(session.execute(select(Address.id, Address.code)
                                 .where(Address.id.in_({r.address_id for r in rows}))).all())
    for r in rows:
        if kind == "buildings":
            yield r.code, codes.get(r.address_id), r.name, r.floors, r.kind, cells.get(r.cell_id)
        elif kind == "households":
            yield r.code, codes.get(r.address_id), r.room, r.size, r.use, cells.get(r.cell_id)
        else:
            yield (r.credit_code, r.name, codes.get(r.address_id), r.kind, r.contact,
                   (keys.decrypt(r.phone_cipher) if keys and r.phone_cipher else r.phone_masked), cells.get(r.cell_id))


def export_text(session: Session, kind: str, keys, **kw) -> tuple[str, int]:
    buf = io.StringIO()
    n = export_csv(session, kind, buf, keys, **kw)
    return buf.getvalue(), n


# ----------------------------------------------------------------------------- key rotation

def rekey(session: Session, keys: pii.PiiKeys, batch: int = 5000) -> dict:
    """Re-encrypt every ciphertext not under the current key and recompute the digests with it
    (the old key must be among ``keys``' old keys). Idempotent; returns the rows rewritten."""
    done = {"persons": 0, "organisations": 0}
    cur = keys.key_id + ":"
    for kind, model in (("persons", Person), ("organisations", Organisation)):
        stale = [model.phone_cipher.notlike(cur + "%")]
        if model is Person:
            stale.append(Person.id_cipher.notlike(cur + "%"))
        last = 0
        while True:
            rows = session.execute(select(model).where(model.id > last, or_(*stale)).order_by(model.id)
                                   .limit(batch)).scalars().all()
            if not rows:
                break
            last = rows[-1].id
            changes = []
            for r in rows:
                ch = {"id": r.id}
                if model is Person:
                    idn = keys.decrypt(r.id_cipher)
                    ch.update(id_cipher=keys.encrypt(idn), id_digest=keys.digest(idn))
                if r.phone_cipher:
                    phone = keys.decrypt(r.phone_cipher)
                    ch.update(phone_cipher=keys.encrypt(phone), phone_digest=keys.digest(phone))
                changes.append(ch)
            session.execute(update(model), changes)
            done[kind] += len(changes)
    session.flush()
    return done


__all__ = ["KINDS", "MODELS", "FULL_ROLES", "RegistryError", "list_records", "get_record", "summary",
           "households_by_cell", "population_by_cell", "reveal", "export_csv", "export_text", "rekey", "log_access"]
