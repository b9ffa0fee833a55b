"""Importing the register: addresses, buildings, households, persons, organisations.

Owns: the columns of each kind, the checks of one row (codes, references, identity-number and
credit-code checksums, dates, coordinates inside the city), and the set-based write: rows are
read in batches, references and existing records are fetched per batch with ``IN`` lists, new
records go in with one COPY (PostgreSQL) or one executemany (SQLite) per batch, changed ones with
one executemany UPDATE. Idempotent by code / identity number / credit code: a re-run of the same
file writes nothing and reports every row unchanged. A bad row is reported as ``(line, reason)``
and skipped; the rest import in the caller's transaction. A file that cannot be read at all
raises ``RegistryFileError`` before anything is written.

Identity numbers and phones are turned into digest + ciphertext + mask here and never stored
otherwise (:mod:`gridmap.registry.pii`).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gridmap.db import allocate_ids, bulk_insert, in_list, utcnow
from gridmap.registry import pii
from gridmap.registry.addresses import address_parts, coordinate_problem, normalize_address, register_changed
from gridmap.registry.files import RegistryFileError, read_table
from gridmap.registry.models import Address, Building, Household, Organisation, Person, PersonTag, Tag
from gridmap.registry.placement import AREA_COLUMNS, place_points

KINDS = ("addresses", "buildings", "households", "persons", "organisations")
#: kind → (required columns, optional columns)
COLUMNS = {
    "addresses": (("code", "address", "lon", "lat"), ("crs",)),
    "buildings": (("code", "address_code"), ("name", "floors", "kind")),
    "households": (("code", "address_code"), ("room", "size", "use")),
    "persons": (("id_number", "name", "household_code"),
                ("phone", "birth_date", "gender", "tags", "residence", "moved_out_on")),
    "organisations": (("credit_code", "name", "address_code"), ("kind", "contact", "phone")),
}
USE_WORDS = {"自住": "own", "出租": "rent", "空置": "vacant", "own": "own", "rent": "rent", "vacant": "vacant"}
RESIDENCE_WORDS = {"户籍": "registered", "流动": "floating", "境外": "overseas", "registered": "registered",
                   "floating": "floating", "overseas": "overseas"}
GENDER_WORDS = {"男": "M", "女": "F", "m": "M", "f": "F", "male": "M", "female": "F"}
EARLIEST = dt.date(1900, 1, 1)
IN_CLAUSE = 1000  # codes per IN (…) list


class _Bad(Exception):
    pass


@dataclass
class ImportReport:
    kind: str
    encoding: str = ""
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "encoding": self.encoding, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "bad": [{"line": ln, "reason": r} for ln, r in self.bad]}

    def summary(self) -> str:
        return (f"{self.kind}: {self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, "
                f"{len(self.bad)} bad rows ({self.encoding})")


@dataclass
class _Ctx:
    session: Session
    keys: pii.PiiKeys | None
    snap_m: float
    report: ImportReport
    seen: dict = field(default_factory=dict)  # key → first line (duplicates within the file)
    today: dt.date = field(default_factory=dt.date.today)
    tags: dict | None = None
    cells_loaded: bool = False


def import_file(session: Session, kind: str, path, *, keys: pii.PiiKeys | None = None, snap_m: float = 100.0,
                batch: int = 20_000, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import one register file of ``kind`` (see ``COLUMNS``). Persons and organisations need ``keys``."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    if kind in ("persons", "organisations") and keys is None:
        raise ValueError("personal data needs the PII keys")
    header, rows, enc, _estimate = read_table(path)
    required, optional = COLUMNS[kind]
    missing = [c for c in required if c not in header]
    if missing:
        raise RegistryFileError(f"{path}: no column {', '.join(missing)}; a {kind} file needs "
                                f"{','.join(required)}[,{','.join(optional)}]; the header is {','.join(header)}")
    pos = {c: header.index(c) for c in required + optional if c in header}
    rep = ImportReport(kind, enc)
    from gridmap.boundaries.lookup import get_index

    ctx = _Ctx(session, keys, snap_m, rep, cells_loaded=len(get_index(session)) > 0)
    if kind == "persons":
        ctx.tags = ensure_tags(session)
    check = _CHECKS[kind]
    write = _WRITERS[kind]
    pending: list[dict] = []
    done = 0
    for line, row in rows:
        done += 1
        if isinstance(row, Exception):
            rep.bad.append((line, str(row)))
            continue
        values = {c: (row[i].strip() if i < len(row) and row[i] is not None else "") for c, i in pos.items()}
        try:
            rec = check(values, ctx)
        except _Bad as e:
            rep.bad.append((line, str(e)))
            continue
        first = ctx.seen.get(rec["_key"])
        if first is not None:
            rep.bad.append((line, f"{rec['_label']} repeats line {first}"))
            continue
        ctx.seen[rec["_key"]] = line
        rec["_line"] = line
        pending.append(rec)
        if len(pending) >= batch:
            write(pending, ctx)
            pending = []
            if progress:
                progress(done)
    if pending:
        write(pending, ctx)
    if progress:
        progress(done)
    session.flush()
    if kind == "addresses" and (rep.inserted or rep.updated):
        register_changed()
    rep.bad.sort()
    return rep


# ----------------------------------------------------------------------------- row checks

def _text(v: dict, name: str, max_len: int, required: bool = False) -> str | None:
    s = v.get(name, "")
    if not s:
        if required:
            raise _Bad(f"{name} is empty")
        return None
    if len(s) > max_len:
        raise _Bad(f"{name} is longer than {max_len} characters")
    return s


def _int(v: dict, name: str, lo: int, hi: int) -> int | None:
    s = v.get(name, "")
    if not s:
        return None
    try:
        n = int(s)
    except ValueError:
        raise _Bad(f"{name} must be a whole number, got {s[:20]!r}") from None
    if not lo <= n <= hi:
        raise _Bad(f"{name} must be from {lo} to {hi}, got {n}")
    return n


def _date(v: dict, name: str, ctx: _Ctx, earliest: dt.date = EARLIEST) -> dt.date | None:
    s = v.get(name, "")
    if not s:
        return None
    t = s.replace("/", "-").replace(".", "-")
    try:
        d = dt.date.fromisoformat(t if "-" in t or len(t) != 8 else f"{t[:4]}-{t[4:6]}-{t[6:]}")
    except ValueError:
        raise _Bad(f"{name} must be a date YYYY-MM-DD, got {s[:20]!r}") from None
    if not earliest <= d <= ctx.today:
        raise _Bad(f"{name} {d} is out of range ({earliest} to today)")
    return d


def _word(v: dict, name: str, words: dict, default: str | None) -> str | None:
    s = v.get(name, "")
    if not s:
        return default
    w = words.get(s.lower())
    if w is None:
        raise _Bad(f"{name} must be one of {', '.join(k for k in words if not k.isascii())} "
                   f"({', '.join(sorted(set(words.values())))}), got {s[:20]!r}")
    return w


def _phone(v: dict, ctx: _Ctx) -> dict:
    phone, problem = pii.normalize_phone(v.get("phone", ""))
    if problem:
        raise _Bad(problem)
    if phone is None:
        return {"phone_digest": None, "_phone": None, "phone_masked": None}
    return {"phone_digest": ctx.keys.digest(phone), "_phone": phone, "phone_masked": pii.mask_phone(phone)}


def _code(v: dict, name: str = "code") -> str:
    return _text(v, name, 60, required=True)


def _check_address(v: dict, ctx: _Ctx) -> dict:
    from gridmap.geo.coords import CRSError, parse_crs

    code = _code(v)
    text = _text(v, "address", 300, required=True)
    crs_name = v.get("crs") or "wgs84"
    try:
        crs = parse_crs(crs_name)
    except CRSError as e:
        raise _Bad(f"crs: {e}") from None
    try:
        x, y = float(v["lon"]), float(v["lat"])
    except ValueError:
        raise _Bad(f"lon/lat must be numbers, got {v['lon'][:20]!r}, {v['lat'][:20]!r}") from None
    problem = coordinate_problem(x, y, crs)
    if problem:
        raise _Bad(problem)
    return {"_key": code, "_label": f"code {code}", "code": code, "address": text, "x": x, "y": y, "crs": crs}


def _check_building(v: dict, ctx: _Ctx) -> dict:
    code = _code(v)
    return {"_key": code, "_label": f"code {code}", "code": code, "address_code": _code(v, "address_code"),
            "name": _text(v, "name", 120), "floors": _int(v, "floors", 1, 200), "kind": _text(v, "kind", 40)}


def _check_household(v: dict, ctx: _Ctx) -> dict:
    code = _code(v)
    return {"_key": code, "_label": f"code {code}", "code": code, "address_code": _code(v, "address_code"),
            "room": _text(v, "room", 40), "size": _int(v, "size", 0, 50), "use": _word(v, "use", USE_WORDS, "own")}


def _check_person(v: dict, ctx: _Ctx) -> dict:
    raw = v.get("id_number", "")
    if not raw:
        raise _Bad("id_number is empty")
    idn = pii.normalize_id(raw)
    problem = pii.id_problem(idn, ctx.today)
    if problem:
        raise _Bad(problem)
    born, sex = pii.id_birth_date(idn), pii.id_gender(idn)
    birth = _date(v, "birth_date", ctx)
    if birth is not None and birth != born:
        raise _Bad(f"birth_date {birth} differs from the identity number's ({born})")
    gender = _word(v, "gender", GENDER_WORDS, None)
    if gender is not None and gender != sex:
        raise _Bad(f"gender {v['gender']} differs from the identity number's")
    tag_ids = []
    for t in (v.get("tags") or "").replace("；", ";").split(";"):
        t = t.strip()
        if not t:
            continue
        tid = ctx.tags.get(t) or ctx.tags.get(t.lower())
        if tid is None:
            raise _Bad(f"unknown tag {t[:20]!r} (known: {', '.join(k for k in ctx.tags if not k.isascii())})")
        if tid not in tag_ids:
            tag_ids.append(tid)
    moved = _date(v, "moved_out_on", ctx, dt.date(1950, 1, 1))
    digest = ctx.keys.digest(idn)
    return {"_key": digest, "_label": f"identity number {pii.mask_id(idn)}", "id_digest": digest, "_id": idn,
            "id_masked": pii.mask_id(idn), "name": _text(v, "name", 80, required=True), "gender": sex,
            "birth_date": born, "household_code": _code(v, "household_code"),
            "residence": _word(v, "residence", RESIDENCE_WORDS, "registered"), "moved_out_on": moved,
            "_tags": tuple(sorted(tag_ids)), **_phone(v, ctx)}


def _check_organisation(v: dict, ctx: _Ctx) -> dict:
    import unicodedata

    raw = v.get("credit_code", "")
    if not raw:
        raise _Bad("credit_code is empty")
    cc = unicodedata.normalize("NFKC", raw).strip().upper()
    problem = pii.credit_code_problem(cc)
    if problem:
        raise _Bad(problem)
    return {"_key": cc, "_label": f"credit code {cc}", "credit_code": cc, "name": _text(v, "name", 200, required=True),
            "address_code": _code(v, "address_code"), "kind": _text(v, "kind", 40),
            "contact": _text(v, "contact", 80), **_phone(v, ctx)}


_CHECKS = {"addresses": _check_address, "buildings": _check_building, "households": _check_household,
           "persons": _check_person, "organisations": _check_organisation}


# ----------------------------------------------------------------------------- batch writes

def _chunk(session: Session) -> int:
    return 50_000 if session.get_bind().dialect.name == "postgresql" else IN_CLAUSE


def _fetch(session: Session, cols, key_col, keys) -> dict:
    """key → row for every key present (one array parameter per 50,000 keys on PostgreSQL, IN
    lists of ``IN_CLAUSE`` elsewhere)."""
    out = {}
    keys = list(keys)
    step = _chunk(session)
    for i in range(0, len(keys), step):
        for row in session.execute(select(key_col, *cols).where(in_list(session, key_col, keys[i:i + step]))):
            out[row[0]] = row
    return out


def _resolve(recs: list[dict], ctx: _Ctx, ref: str, model, label: str) -> list[dict]:
    """Records whose ``ref`` code exists in ``model`` (each given ``<ref>_row``); the others reported bad."""
    rows = _fetch(ctx.session, [model.id, *[getattr(model, c) for c in AREA_COLUMNS]], model.code,
                  {r[ref] for r in recs})
    ok = []
    for r in recs:
        row = rows.get(r[ref])
        if row is None:
            ctx.report.bad.append((r["_line"], f"unknown {label} {r[ref]}"))
            continue
        r[ref + "_row"] = row
        ok.append(r)
    return ok


def _areas(row) -> dict:
    return {c: row[2 + k] for k, c in enumerate(AREA_COLUMNS)}


def _clean(r: dict, cols) -> dict:
    return {c: r.get(c) for c in cols}


def _apply(ctx: _Ctx, model, recs: list[dict], key_col, compare: tuple[str, ...], write_cols: tuple[str, ...],
           prepare_insert: Callable[[dict], dict] | None = None) -> tuple[list, list]:
    """Insert the new records, update the changed ones; returns the (record, id) pairs inserted and
    those updated. ``r["_same"]`` False marks a record changed beyond the compared columns."""
    existing = _fetch(ctx.session, [model.id, *[getattr(model, c) for c in compare]], key_col,
                      [r["_key"] for r in recs])
    inserts, updates, inserted, updated = [], [], [], []
    now = utcnow()
    for r in recs:
        old = existing.get(r["_key"])
        if old is None:
            inserts.append(r)
            continue
        if r.get("_same", True) and all(old[2 + k] == r.get(c) for k, c in enumerate(compare)):
            ctx.report.unchanged += 1
        else:
            updates.append({"id": old[1], **_clean(r, compare), "updated_at": now})
            updated.append((r, old[1]))
    if inserts:
        ids = allocate_ids(ctx.session, model.__table__, len(inserts))
        rows = []
        for r, i in zip(inserts, ids):
            row = {"id": i, **_clean(r, write_cols), "updated_at": now}
            if prepare_insert:
                row.update(prepare_insert(r))
            rows.append(row)
            inserted.append((r, i))
        bulk_insert(ctx.session, model.__table__, rows)
    if updates:
        ctx.session.execute(update(model), updates)
    ctx.report.inserted += len(inserts)
    ctx.report.updated += len(updates)
    if updated and "phone_digest" in compare:  # a changed phone gets a new ciphertext
        ctx.session.execute(update(model), [{"id": i, "phone_cipher": _encrypt(ctx, r["_phone"])}
                                            for r, i in updated])
    return inserted, updated


def _write_addresses(recs: list[dict], ctx: _Ctx) -> None:
    from gridmap.geo.coords import to_wgs84, valid_lonlat_mask

    lon = np.full(len(recs), np.nan)
    lat = np.full(len(recs), np.nan)
    by_crs: dict[str, list[int]] = {}
    for k, r in enumerate(recs):
        by_crs.setdefault(str(r["crs"]), []).append(k)
    for ks in by_crs.values():  # one vectorized conversion per coordinate system
        crs = recs[ks[0]]["crs"]
        lo, la = to_wgs84(np.array([recs[k]["x"] for k in ks]), np.array([recs[k]["y"] for k in ks]), crs)
        lon[ks], lat[ks] = np.round(lo, 8), np.round(la, 8)
    ok = np.asarray(valid_lonlat_mask(lon, lat), dtype=bool)
    placed = place_points(ctx.session, np.where(ok, lon, 0.0), np.where(ok, lat, 0.0), ctx.snap_m)
    good = []
    for k, r in enumerate(recs):
        if not ok[k] or not (math.isfinite(lon[k]) and math.isfinite(lat[k])):
            ctx.report.bad.append((r["_line"], "coordinates out of range after conversion to WGS84"))
            continue
        if ctx.cells_loaded and placed["cell_id"][k] is None:
            ctx.report.bad.append((r["_line"], f"the point {lon[k]:.6f}, {lat[k]:.6f} (WGS84) is outside every "
                                               f"cell of the city (no cell within {ctx.snap_m:g} m)"))
            continue
        r.update(lon=float(lon[k]), lat=float(lat[k]), normalized=normalize_address(r["address"]),
                 cell_code=placed["cell_code"][k], **address_parts(r["address"]),
                 **{c: placed[c][k] for c in AREA_COLUMNS})
        good.append(r)
    cols = ("address", "normalized", "lon", "lat", "cell_code", "road", "number", "building", "unit", "room",
            *AREA_COLUMNS)
    _apply(ctx, Address, good, Address.code, cols, ("code",) + cols)


def _write_on_address(model, extra: tuple[str, ...]):
    def write(recs: list[dict], ctx: _Ctx) -> None:
        recs = _resolve(recs, ctx, "address_code", Address, "address code")
        for r in recs:
            row = r.pop("address_code_row")
            r["address_id"] = row[1]
            r.update(_areas(row))
        if model is Household:
            bids = {}
            for aid, bid in ctx.session.execute(
                    select(Building.address_id, Building.id)
                    .where(in_list(ctx.session, Building.address_id, {r["address_id"] for r in recs}))
                    .order_by(Building.id.desc())):
                bids[aid] = bid  # the first building of the address
            for r in recs:
                r["building_id"] = bids.get(r["address_id"])
        key_col = Organisation.credit_code if model is Organisation else model.code
        cols = extra + ("address_id",) + AREA_COLUMNS + (("building_id",) if model is Household else ())
        _apply(ctx, model, recs, key_col, cols, (key_col.key,) + cols,
               prepare_insert=(lambda r: {"phone_cipher": _encrypt(ctx, r["_phone"])})
               if model is Organisation else None)
    return write


def _encrypt(ctx: _Ctx, value: str | None) -> str | None:
    return None if value is None else ctx.keys.encrypt(value)


def _write_persons(recs: list[dict], ctx: _Ctx) -> None:
    recs = _resolve(recs, ctx, "household_code", Household, "household code")
    for r in recs:
        row = r.pop("household_code_row")
        r["household_id"] = row[1]
        r.update(_areas(row))
    # tags of the persons already registered, to tell an unchanged row from a changed one
    s = ctx.session
    step = _chunk(s)
    known = {k: row[1] for k, row in _fetch(s, [Person.id], Person.id_digest, [r["id_digest"] for r in recs]).items()}
    old_tags: dict[int, list[int]] = {}
    ids = list(known.values())
    for i in range(0, len(ids), step):
        for pid, tid in s.execute(select(PersonTag.person_id, PersonTag.tag_id)
                                  .where(in_list(s, PersonTag.person_id, ids[i:i + step]))):
            old_tags.setdefault(pid, []).append(tid)
    for r in recs:
        pid = known.get(r["id_digest"])
        if pid is not None:
            r["_same"] = tuple(sorted(old_tags.get(pid, []))) == r["_tags"]
    compare = ("name", "gender", "birth_date", "phone_digest", "phone_masked", "household_id", "residence",
               "moved_out_on", *AREA_COLUMNS)
    inserted, updated = _apply(ctx, Person, recs, Person.id_digest, compare, ("id_digest", "id_masked") + compare,
                               prepare_insert=lambda r: {"id_cipher": ctx.keys.encrypt(r["_id"]),
                                                         "phone_cipher": _encrypt(ctx, r["_phone"])})
    ids = [i for _, i in updated]
    for k in range(0, len(ids), step):
        s.execute(delete(PersonTag).where(in_list(s, PersonTag.person_id, ids[k:k + step])))
    links = [{"person_id": i, "tag_id": t} for r, i in inserted + updated for t in r["_tags"]]
    bulk_insert(ctx.session, PersonTag.__table__, links)


_WRITERS = {"addresses": _write_addresses,
            "buildings": _write_on_address(Building, ("name", "floors", "kind")),
            "households": _write_on_address(Household, ("room", "size", "use")),
            "persons": _write_persons,
            "organisations": _write_on_address(Organisation, ("name", "kind", "contact", "phone_digest",
                                                              "phone_masked"))}


# ----------------------------------------------------------------------------- tags

DEFAULT_TAGS = (
    ("elderly_alone", "独居老人", "Elderly living alone"),
    ("disabled", "残疾人", "Person with a disability"),
    ("dibao", "低保", "Minimum living allowance"),
    ("left_behind_child", "留守儿童", "Left-behind child"),
    ("community_correction", "社区矫正", "Under community correction"),
    ("released", "刑满释放", "Released from prison"),
    ("mental_disorder", "精神障碍", "Severe mental disorder"),
    ("veteran", "退役军人", "Veteran"),
)


def ensure_tags(session: Session) -> dict[str, int]:
    """The default groups added when missing; returns name and code → tag id (every tag in data)."""
    have = {code for code, in session.execute(select(Tag.code))}
    missing = [{"code": c, "name": n, "name_en": e} for c, n, e in DEFAULT_TAGS if c not in have]
    if missing:
        session.execute(Tag.__table__.insert(), missing)
        session.flush()
    out: dict[str, int] = {}
    for tid, code, name in session.execute(select(Tag.id, Tag.code, Tag.name)):
        out[name] = tid
        out[code] = tid
    return out
