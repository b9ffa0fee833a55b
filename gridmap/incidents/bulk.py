"""Bulk import of cases from CSV (millions of rows: old systems, 12345 hotline exports).

Owns: ``import_cases_csv``: reading the file in batches (UTF-8 or GBK), validating every row
before anything is written (bad rows are reported with their line number and reason, the others
import), idempotence by (source, external_id) (a re-run skips what is there and counts it),
placing each batch with one vectorized ``CellIndex.locate`` per coordinate system, routing once
per (cell, category) pair (at the import's start time, for the whole run), and writing each batch
in its own transaction: ids allocated up front (the sequence on PostgreSQL), then the cases and
their "report" events in bulk (COPY on PostgreSQL, executemany on SQLite). Imported cases are
"reported" and routed; with ``dispatch=True`` routed ones are filed and dispatched through the
life cycle (one case at a time, so that is the slow path).

Columns (or their Chinese names in 12345 exports: ``HEADER_ALIASES``, e.g. 工单编号, 问题分类,
诉求内容, 经度, 纬度, 事发地址, 受理时间): ``external_id,category,description,lon,lat`` (the category by
internal code, standard code or exact Chinese name) and optionally ``crs`` (per row, default
wgs84), ``address`` (placement by the address register when lon/lat are empty), ``reported_at``
(ISO 8601; without a zone Asia/Shanghai), ``reporter_name``, ``reporter_phone``, ``urgent``, ``title``.
Measured (2 busy cores, PostGIS 15): 100k rows in about a minute, most of it the server's index and
foreign-key upkeep; SQLite about 40 s.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from dataclasses import dataclass, field
from typing import Callable
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import gridmap.models  # noqa: F401  (every table mapped before the first query)
from gridmap.accounts.actor import SYSTEM, Actor
from gridmap.db import allocate_ids, bulk_insert, utcnow
from gridmap.incidents.category_lookup import AmbiguousCategory, CategoryResolver, UnknownCategory
from gridmap.incidents.models import SOURCES, Case, CaseEvent, Category
from gridmap.textio import csv_problem, csv_reader
from gridmap.timebounds import OutOfRange, parse_instant

TIMEZONE = ZoneInfo("Asia/Shanghai")
REQUIRED = ("external_id", "category", "description")
OPTIONAL = ("lon", "lat", "crs", "address", "reported_at", "reporter_name", "reporter_phone", "urgent", "title")
MAX_BAD_LISTED = 10_000
#: Chinese column names of 12345 hotline and city-management exports → our columns
HEADER_ALIASES = {
    "工单编号": "external_id", "工单号": "external_id", "编号": "external_id", "案卷编号": "external_id",
    "问题分类": "category", "问题类别": "category", "诉求分类": "category", "诉求类别": "category",
    "事件类别": "category", "事件分类": "category", "案件类别": "category", "小类": "category", "类别": "category",
    "诉求内容": "description", "问题描述": "description", "事件描述": "description", "内容": "description",
    "经度": "lon", "纬度": "lat", "坐标系": "crs",
    "地址": "address", "事发地址": "address", "事发地点": "address", "问题地址": "address",
    "受理时间": "reported_at", "来电时间": "reported_at", "上报时间": "reported_at", "登记时间": "reported_at",
    "来电人": "reporter_name", "联系人": "reporter_name", "诉求人": "reporter_name",
    "联系电话": "reporter_phone", "来电号码": "reporter_phone", "紧急": "urgent", "是否紧急": "urgent",
    "标题": "title", "工单标题": "title",
}
_TRUE = {"1", "true", "yes", "y", "是", "t"}
_FALSE = {"", "0", "false", "no", "n", "否", "f"}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, missing columns, bad options)."""


@dataclass
class _Row:
    line: int
    external_id: str
    category: Category
    description: str
    title: str | None
    x: float | None
    y: float | None
    crs: object
    address: str | None
    reported_at: dt.datetime
    reporter_name: str | None
    reporter_phone: str | None
    urgent: bool


@dataclass
class _Report:
    rows: int = 0
    imported: int = 0
    skipped: int = 0
    queued: int = 0
    dispatched: int = 0
    bad: list = field(default_factory=list)
    bad_count: int = 0

    def add_bad(self, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad) < MAX_BAD_LISTED:
            self.bad.append((line, reason))

    def as_dict(self) -> dict:
        return {"rows": self.rows, "imported": self.imported, "skipped": self.skipped, "bad": self.bad_count,
                "queued": self.queued, "dispatched": self.dispatched, "bad_rows": self.bad}


def _open(path: str):
    from gridmap.boundaries.geocode import GeocodeError, sniff_encoding

    try:
        enc = sniff_encoding(path)
        raw = open(path, "rb")
    except GeocodeError as e:
        raise ImportFileError(str(e)) from None
    except OSError as e:
        raise ImportFileError(f"{path}: {e.strerror or e}") from None
    return raw, io.TextIOWrapper(raw, encoding=enc, newline="")


def import_cases_csv(session_factory, path, *, source: str = "import", batch: int = 5000,
                     progress: Callable[[int], None] | None = None, dispatch: bool = False,
                     snap_m: float | None = None, now: dt.datetime | None = None, actor: Actor = SYSTEM) -> dict:
    """Import a CSV of cases; returns ``{"rows", "imported", "skipped", "bad", "queued", "dispatched",
    "bad_rows": [(line, reason), …]}`` (line 1 is the header). ``progress`` gets bytes read."""
    from gridmap.geo.coords import CRSError, parse_crs
    from gridmap.incidents.intake import MAX_DESCRIPTION, MAX_TITLE, _PHONE_RE, snap_distance

    if source not in SOURCES:
        raise ImportFileError(f"unknown source {source!r}: use one of {', '.join(SOURCES)}")
    if batch < 1:
        raise ImportFileError("batch must be at least 1")
    snap = snap_distance() if snap_m is None else snap_m
    path = str(path)
    rep = _Report()
    with session_factory() as s:
        cats = list(s.scalars(select(Category)))
        for c in cats:
            _ = c.parent  # the resolver reads ancestors' names ("市容环境/垃圾满溢")
        resolver = CategoryResolver(cats)
        s.expunge_all()
    resolved: dict[str, Category | str] = {}
    seen: dict[str, int] = {}
    crs_cache: dict[str, object] = {}
    state = {"areas": {}, "last_pos": 0}
    raw, fh = _open(path)
    with raw, fh:
        reader = csv_reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError(f"{path}: the file is empty") from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise ImportFileError(f"{path}: cannot read the header: {e}") from None
        cols = [h.strip().lstrip("\ufeff").strip().lower() for h in header]
        cols = [c if c in REQUIRED + OPTIONAL else HEADER_ALIASES.get(c, c) for c in cols]
        missing = [c for c in REQUIRED if c not in cols]
        if missing or not (("lon" in cols and "lat" in cols) or "address" in cols):
            need = missing + ([] if ("lon" in cols and "lat" in cols) or "address" in cols else ["lon,lat or address"])
            raise ImportFileError(f"{path}: missing column(s) {', '.join(need)}; the header is {', '.join(header)}")
        pos = {c: cols.index(c) for c in REQUIRED + OPTIONAL if c in cols}
        now = now or utcnow()
        pending: list[_Row] = []
        line = reader.line_num
        while True:
            start = line + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as e:
                rep.rows += 1
                rep.add_bad(start, csv_problem(start, reader.line_num, e) if isinstance(e, csv.Error)
                            else f"unreadable row: {e}")
                line = reader.line_num
                continue
            line = reader.line_num
            if not row or not any(v.strip() for v in row):
                continue
            rep.rows += 1
            n = len(row)

            def get(c):
                i = pos.get(c)
                return row[i].strip() if i is not None and i < n else ""

            err = None
            ext = get("external_id")
            code = get("category")
            desc = get("description")
            cat = resolved.get(code)
            if cat is None and code:
                try:
                    cat = resolved[code] = resolver.resolve(code)
                except (UnknownCategory, AmbiguousCategory) as e:
                    cat = resolved[code] = str(e)
            if not ext:
                err = "external_id is empty"
            elif len(ext) > 120:
                err = "external_id is longer than 120 characters"
            elif ext in seen:
                err = f"external_id {ext!r} repeats line {seen[ext]}"
            elif not code:
                err = "category is empty"
            elif isinstance(cat, str):
                err = cat
            elif not cat.active:
                err = f"category {code!r} is no longer in use"
            elif not desc:
                err = "description is empty"
            elif len(desc) > MAX_DESCRIPTION:
                err = f"description is longer than {MAX_DESCRIPTION} characters"
            if err:
                rep.add_bad(start, err)
                continue
            seen[ext] = start
            title = get("title") or None
            if title and len(title) > MAX_TITLE:
                rep.add_bad(start, f"title is longer than {MAX_TITLE} characters")
                continue
            lon_s, lat_s, addr = get("lon"), get("lat"), get("address") or None
            x = y = None
            crs = None
            if lon_s or lat_s:
                try:
                    x, y = float(lon_s), float(lat_s)
                    if not (math.isfinite(x) and math.isfinite(y)):
                        raise ValueError
                except ValueError:
                    rep.add_bad(start, f"lon/lat must be numbers, got {lon_s[:20]!r}, {lat_s[:20]!r}")
                    continue
                crs_name = get("crs") or "wgs84"
                crs = crs_cache.get(crs_name)
                if crs is None:
                    try:
                        crs = crs_cache[crs_name] = parse_crs(crs_name)
                    except CRSError as e:
                        crs = crs_cache[crs_name] = e
                if isinstance(crs, Exception):
                    rep.add_bad(start, f"crs: {crs}")
                    continue
                from gridmap.registry.addresses import coordinate_problem

                problem = coordinate_problem(x, y, crs)
                if problem:
                    rep.add_bad(start, problem)
                    continue
            elif not addr:
                rep.add_bad(start, "no location: give lon and lat, or an address")
                continue
            if addr and len(addr) > 300:
                rep.add_bad(start, "address is longer than 300 characters")
                continue
            ra = get("reported_at")
            reported_at = now
            if ra:
                try:
                    t = parse_instant(ra.replace("/", "-"), "reported_at")
                except OutOfRange as e:
                    rep.add_bad(start, str(e))
                    continue
                except ValueError:
                    rep.add_bad(start, f"reported_at {ra[:30]!r} is not an ISO 8601 time (2026-11-29 08:30)")
                    continue
                reported_at = (t if t.tzinfo else t.replace(tzinfo=TIMEZONE)).astimezone(dt.timezone.utc)
                if reported_at > now + dt.timedelta(days=1):
                    rep.add_bad(start, f"reported_at {ra} is in the future")
                    continue
            name, phone = get("reporter_name") or None, get("reporter_phone") or None
            if name and len(name) > 80:
                rep.add_bad(start, "reporter_name is longer than 80 characters")
                continue
            if phone and (len(phone) > 40 or not _PHONE_RE.match(phone)):
                rep.add_bad(start, f"reporter_phone {phone[:40]!r} is not a phone number")
                continue
            u = get("urgent").lower()
            if u not in _TRUE and u not in _FALSE:
                rep.add_bad(start, f"urgent must be true or false, got {u[:20]!r}")
                continue
            pending.append(_Row(start, ext, cat, desc, title, x, y, crs, addr, reported_at, name, phone,
                                u in _TRUE))
            if len(pending) >= batch:
                _flush(session_factory, pending, source, snap, now, dispatch, actor, rep, state)
                pending = []
                _progress(progress, raw, state)
        if pending:
            _flush(session_factory, pending, source, snap, now, dispatch, actor, rep, state)
        _progress(progress, raw, state)
    return rep.as_dict()


def _progress(progress, raw, state) -> None:
    if progress is None:
        return
    p = raw.tell()
    if p > state["last_pos"]:
        progress(p - state["last_pos"])
        state["last_pos"] = p


def _flush(session_factory, rows: list[_Row], source, snap, now, dispatch, actor, rep: _Report, state) -> None:
    """Write one batch in its own transaction (retried once after a concurrent writer's conflict)."""
    for attempt in (1, 2):
        try:
            with session_factory() as session:
                with session.begin():
                    counts = _write_batch(session, rows, source, snap, now, dispatch, actor, state)
            break
        except IntegrityError:
            if attempt == 2:
                raise
    imported, skipped, queued, dispatched, bad = counts
    rep.imported += imported
    rep.skipped += skipped
    rep.queued += queued
    rep.dispatched += dispatched
    for line, reason in bad:
        rep.add_bad(line, reason)


def _bulk_insert(session, table, rows: list[dict]) -> None:
    bulk_insert(session, table, rows)


def _allocate_ids(session, n: int) -> list[int]:
    """``n`` fresh case ids: from the sequence on PostgreSQL; on SQLite (one writer at a time) after
    the largest id (a concurrent writer makes the insert fail on the primary key: the batch is retried)."""
    return allocate_ids(session, Case.__table__, n)


def _write_batch(session, rows: list[_Row], source, snap, now, dispatch, actor, state):
    from gridmap.boundaries.lookup import LEVEL_KEYS, get_index
    from gridmap.boundaries.models import Area
    from gridmap.incidents.intake import (IntakeError, Placement, _clip, _confirmation, base_route, case_number,
                                          explain_route, is_routed, needs_confirmation, place_by_address,
                                          routing_dict)

    # 1. skip what is there already
    ids = [r.external_id for r in rows]
    existing: set[str] = set()
    for i in range(0, len(ids), 2000):
        existing.update(session.scalars(select(Case.external_id).where(
            Case.source == source, Case.external_id.in_(ids[i:i + 2000]))))
    todo = [r for r in rows if r.external_id not in existing]
    skipped = len(rows) - len(todo)
    bad: list[tuple[int, str]] = []
    if not todo:
        return 0, skipped, 0, 0, bad

    # 2. place: one vectorized lookup per coordinate system; addresses one by one
    index = get_index(session)
    placements: dict[int, Placement] = {}
    by_crs: dict[str, list[int]] = {}
    for k, r in enumerate(todo):
        if r.x is not None:
            by_crs.setdefault(str(r.crs), []).append(k)
    area_ids: dict[str, int] = state["areas"]
    for _name, ks in by_crs.items():
        crs = todo[ks[0]].crs
        res = index.locate(np.array([todo[k].x for k in ks]), np.array([todo[k].y for k in ks]), crs, snap)
        level_codes = {lvl: index.level_codes(lvl, res.cell) for lvl in LEVEL_KEYS}
        new = {c for arr in level_codes.values() for c in arr if c is not None and c not in area_ids}
        if new:
            area_ids.update(session.execute(select(Area.code, Area.id).where(Area.code.in_(list(new)))).all())
        for j, k in enumerate(ks):
            if not res.valid[j]:
                bad.append((todo[k].line, "coordinates out of range after conversion to WGS84"))
                continue
            if res.cell[j] < 0:
                bad.append((todo[k].line, f"the point {res.lon[j]:.6f}, {res.lat[j]:.6f} (WGS84) is outside every "
                                          f"cell of the city (no cell within {snap:g} m)"))
                continue
            codes = {lvl: level_codes[lvl][j] for lvl in LEVEL_KEYS}
            placements[k] = Placement(
                placement="point", lon=round(float(res.lon[j]), 8), lat=round(float(res.lat[j]), 8),
                input_crs=str(crs), cell_id=area_ids.get(codes["cell"]), community_id=area_ids.get(codes["community"]),
                street_id=area_ids.get(codes["street"]), district_id=area_ids.get(codes["district"]),
                cell_code=codes["cell"], snapped=bool(res.snapped[j]), distance_m=float(res.distance_m[j]),
                address=todo[k].address)
    for k, r in enumerate(todo):
        if r.x is None:
            try:
                placements[k] = place_by_address(session, r.address)
            except IntakeError as e:
                bad.append((r.line, e.message))
    # 3. route once per cell (and per category only where the category routes to a department:
    #    otherwise the answer does not depend on it), per run
    routes: dict[tuple, object] = state.setdefault("routes", {})
    confirms: dict = state.setdefault("confirms", {})  # (category id, cell id) → (worker id, deadline)
    out_rows, keep = [], []
    for k, r in enumerate(todo):
        p = placements.get(k)
        if p is None:
            continue
        key = (p.cell_id, r.category.id if r.category.department_id is not None else None, p.note.get("reason"))
        rt = routes.get(key)
        if rt is None:
            rt = routes[key] = base_route(session, p.cell_id, r.category, now, p)
        rt = explain_route(rt, p)
        confirm = (None, None)
        if needs_confirmation(r.category, source):  # on-site verification first, from the import's start
            ckey = (r.category.id, p.cell_id)
            if ckey not in confirms:
                try:
                    confirms[ckey] = _confirmation(session, p, r.category, rt, now)
                except IntakeError as e:
                    confirms[ckey] = e
            confirm = confirms[ckey]
            if isinstance(confirm, IntakeError):
                bad.append((r.line, confirm.message))
                continue
        keep.append((r, p, rt, confirm[1] is not None))
        out_rows.append({
            "source": source, "external_id": r.external_id, "category_id": r.category.id, "title": r.title,
            "description": r.description, "status": "reported", "urgent": r.urgent, "supervised": False,
            "reporter_name": r.reporter_name, "reporter_phone": r.reporter_phone, "reporter_user_id": actor.user_id,
            "lon": p.lon, "lat": p.lat, "input_crs": p.input_crs,
            "geom": None if p.lon is None else f"SRID=4326;POINT({p.lon!r} {p.lat!r})",
            "address": p.address, "address_id": p.address_id, "address_score": p.address_score,
            "placement": p.placement, "cell_id": p.cell_id, "community_id": p.community_id,
            "street_id": p.street_id, "district_id": p.district_id, "snapped": p.snapped,
            "distance_m": None if p.distance_m is None else round(p.distance_m, 2),
            "assignee_worker_id": rt.worker_id, "assignee_department_id": rt.department_id,
            "assignee_level": rt.level, **rt.columns(clip=_clip), "escalation_level": 0,
            "reported_at": r.reported_at, "updated_at": now, "version": 1, "overdue": False,
            "self_handled": False, "extension_count": 0, "extension_pending": False, "rework_count": 0,
            "return_count": 0, "confirm_worker_id": confirm[0], "confirm_deadline_at": confirm[1],
        })
    if not out_rows:
        return 0, skipped, 0, 0, bad
    # 4. bulk insert cases (ids allocated first, so numbers go in with them) and report events
    new_ids = _allocate_ids(session, len(out_rows))
    for i, row, (r, _p, _rt, _c) in zip(new_ids, out_rows, keep):
        row["id"] = i
        row["number"] = case_number(r.reported_at, i)
    _bulk_insert(session, Case.__table__, out_rows)
    _bulk_insert(session, CaseEvent.__table__, [{
        "case_id": i, "seq": 1, "action": "report", "from_status": None, "to_status": "reported",
        "at": r.reported_at, "actor_user_id": actor.user_id, "actor_worker_id": actor.worker_id,
        "actor_name": actor.name, "comment": None, "lon": p.lon, "lat": p.lat,
        "data": json.dumps({"source": source, "external_id": r.external_id, "line": r.line,
                            "routing": routing_dict(rt), "location": p.as_dict()}, ensure_ascii=False, default=str),
    } for i, (r, p, rt, _c) in zip(new_ids, keep)])
    queued = sum(1 for _r, p, _rt, _c in keep if p.placement == "queue")
    dispatched = 0
    if dispatch:
        from gridmap.incidents import lifecycle

        for i, (_r, _p, rt, waits) in zip(new_ids, keep):
            if is_routed(rt) and not waits:  # a report waiting for on-site verification is not filed
                # imported history: filing and dispatch here are not the office's own steps, so
                # they are not judged for 按时立案率 / 按时派遣率
                lifecycle.apply_action(session, i, "file", SYSTEM, comment="filed on import", now=now,
                                       data={"imported": True})
                lifecycle.apply_action(session, i, "dispatch", SYSTEM, comment="dispatched on import", now=now,
                                       data={"imported": True})
                dispatched += 1
    return len(new_ids), skipped, queued, dispatched, bad
