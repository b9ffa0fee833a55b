"""The hazard register (隐患): types, registration, the rectification life-cycle, reading, import.

Owns: loading the hazard types from data (``data/hazard_types.json``: a default rectification
limit and inspection interval per type, another limit per grade), registering a hazard
(validate → geometry, a point or an area → the cell of its point / centroid through the lookup
index → the worker on duty for that cell through ``assign.router.route`` → the rectification
deadline through ``assign.calendar.add_limit`` → number ``YH20260302-000042`` → history event),
the life-cycle (``TRANSITIONS``: rectify, verify with pass/fail, close, reopen; atomic on the
version; the verifier is never who rectified), links to cases, the scope rule for hazards (the same as
for cases: a worker sees their cells, a community/street/district its own) and importing a
CSV or GeoJSON file all-or-nothing.

Times are timezone-aware UTC; "today" and dates are Asia/Shanghai.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from geoalchemy2 import WKTElement
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

import gridmap.models  # noqa: F401  (every table mapped before the first query)
from gridmap.accounts.actor import Actor
from gridmap.assign.calendar import UNITS, add_limit
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.hazards.models import (ACCIDENT_GRADE_ZH, ACCIDENT_GRADES, GRADE_ZH, GRADES, HAZARD_STATUSES,
                                    STATUS_ZH, Hazard, HazardCase, HazardEvent, HazardType)
from gridmap.incidents.models import Case
from gridmap.timebounds import OutOfRange, check_day, parse_day, parse_instant

TIMEZONE = ZoneInfo("Asia/Shanghai")
DEFAULT_TYPES_FILE = Path(__file__).resolve().parents[2] / "data" / "hazard_types.json"
SOURCES = ("manual", "patrol", "import", "case", "api")
MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_PER_PAGE = 200
#: roles that verify and close hazards (and see everything in their area)
SUPERVISOR_ROLES = ("head", "community", "street", "district", "city", "admin", "system")
#: grade aliases accepted on input (Chinese names, short and full)
GRADE_ALIASES = {"一般": "general", "一般隐患": "general", "一般事故隐患": "general",
                 "重大": "major", "重大隐患": "major", "重大事故隐患": "major"}
#: accident-grade aliases (一般/较大/重大/特别重大 事故)
ACCIDENT_GRADE_ALIASES = {**{v: k for k, v in ACCIDENT_GRADE_ZH.items()},
                          **{v[:-2]: k for k, v in ACCIDENT_GRADE_ZH.items()}}
#: words of the four accident grades that are not hazard grades (refused as a hazard grade, with why)
_ACCIDENT_ONLY = ("较大", "特别重大", "较大隐患", "特别重大隐患", "较大事故隐患", "特别重大事故隐患", "larger",
                  "especially_major", "low", "medium", "high")
_LEVEL_COLUMN = {"cell": Hazard.cell_id, "community": Hazard.community_id, "street": Hazard.street_id,
                 "district": Hazard.district_id}


class HazardError(ValueError):
    """A refused request: ``field`` names the culprit, ``message`` says why, ``status`` is the HTTP
    status an API answers with (400 malformed, 422 unacceptable, 403, 404, 409)."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


# ----------------------------------------------------------------------------- types

def _check_limit(limit: Any, where: str, problems: list[str]) -> tuple[float | None, str | None]:
    if not isinstance(limit, dict):
        problems.append(f"{where}: a limit is {{\"value\": number, \"unit\": one of {', '.join(UNITS)}}}")
        return None, None
    value, unit = limit.get("value"), limit.get("unit")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        problems.append(f"{where}: value must be a number > 0, got {value!r}")
        value = None
    if unit not in UNITS:
        problems.append(f"{where}: unit must be one of {', '.join(UNITS)}, got {unit!r}")
        unit = None
    if unit == "working_days" and value is not None and value != int(value):
        problems.append(f"{where}: working_days must be a whole number, got {value}")
    return (float(value) if value is not None else None), unit


def load_types(session: Session, path: str | Path | None = None) -> dict:
    """Upsert the hazard types of a JSON file by code (idempotent); ValueError listing every problem."""
    path = Path(path or DEFAULT_TYPES_FILE)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    items = doc.get("types") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: expected an object with a non-empty list 'types'")
    problems: list[str] = []
    rows: dict[str, dict] = {}
    for i, t in enumerate(items, start=1):
        where = f"{path.name} type {i}"
        if not isinstance(t, dict):
            problems.append(f"{where}: not an object")
            continue
        code, name = t.get("code"), t.get("name")
        if not isinstance(code, str) or not code.strip():
            problems.append(f"{where}: 'code' is required")
            continue
        where = f"{path.name} type {code}"
        if code in rows:
            problems.append(f"{where}: code given twice")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: 'name' (Chinese) is required")
        value, unit = _check_limit(t.get("rectify_limit"), f"{where} rectify_limit", problems)
        interval = t.get("inspection_interval_days")
        if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or interval < 1):
            problems.append(f"{where}: inspection_interval_days must be a whole number of days >= 1, got {interval!r}")
        if "severity_limits" in t:
            problems.append(f"{where}: severity_limits is gone: hazards are graded general/major "
                            "(一般/重大事故隐患); write grade_limits")
        sev = t.get("grade_limits") or {}
        if not isinstance(sev, dict):
            problems.append(f"{where}: grade_limits must be an object keyed by grade ({', '.join(GRADES)})")
            sev = {}
        for s, lim in sev.items():
            if s not in GRADES:
                problems.append(f"{where}: unknown grade {s!r} in grade_limits ({', '.join(GRADES)})")
            _check_limit(lim, f"{where} grade_limits.{s}", problems)
        rows[code] = {"code": code.strip(), "name": (name or "").strip(), "name_en": t.get("name_en"),
                      "category_code": t.get("category"), "rectify_limit_value": value,
                      "rectify_limit_unit": unit, "inspection_interval_days": interval,
                      "grade_limits": json.dumps(sev, ensure_ascii=False) if sev else None,
                      "active": bool(t.get("active", True))}
    if problems:
        raise ValueError("hazard types not loaded:\n  " + "\n  ".join(problems))
    stored = {t.code: t for t in session.scalars(select(HazardType))}
    out = {"created": 0, "updated": 0, "unchanged": 0, "path": str(path)}
    for code, r in rows.items():
        t = stored.get(code)
        if t is None:
            session.add(HazardType(**r))
            out["created"] += 1
        elif any(getattr(t, k) != v for k, v in r.items()):
            for k, v in r.items():
                setattr(t, k, v)
            out["updated"] += 1
        else:
            out["unchanged"] += 1
    session.flush()
    return out


def ensure_types(session: Session) -> None:
    """Load the default types when none are stored yet (a fresh database)."""
    if session.scalar(select(func.count(HazardType.id))) == 0:
        load_types(session)


def find_type(session: Session, code) -> HazardType:
    ensure_types(session)
    if not isinstance(code, str) or not code.strip():
        raise HazardError("type", "type is required (a hazard type code, e.g. fire, gas, self_built)", 400)
    v = code.strip()
    t = session.scalar(select(HazardType).where(or_(HazardType.code == v, HazardType.name == v)))
    if t is None or not t.active:
        codes = ", ".join(session.scalars(select(HazardType.code).where(HazardType.active.is_(True))
                                          .order_by(HazardType.code)))
        raise HazardError("type", f"unknown hazard type {v!r}; types are {codes}")
    return t


def rectify_limit(t: HazardType, grade: str) -> tuple[float, str]:
    """The type's limit for ``grade`` (its grade's own limit, else the default)."""
    if t.grade_limits:
        lim = json.loads(t.grade_limits).get(grade)
        if lim:
            return float(lim["value"]), lim["unit"]
    return float(t.rectify_limit_value), t.rectify_limit_unit


def types_list(session: Session) -> list[dict]:
    ensure_types(session)
    return [{"code": t.code, "name": t.name, "name_en": t.name_en, "category": t.category_code,
             "rectify_limit": {"value": t.rectify_limit_value, "unit": t.rectify_limit_unit},
             "grade_limits": json.loads(t.grade_limits) if t.grade_limits else {},
             "inspection_interval_days": t.inspection_interval_days, "active": t.active}
            for t in session.scalars(select(HazardType).order_by(HazardType.code))]


# ----------------------------------------------------------------------------- scope

def hazard_filter(session: Session, actor: Actor):
    """A WHERE clause restricting Hazard rows to what ``actor`` may see (the case scope rules)."""
    from gridmap.accounts.scope import scope_filter

    return scope_filter(session, actor, cell=Hazard.cell_id, community=Hazard.community_id,
                        street=Hazard.street_id, district=Hazard.district_id,
                        assignee_worker=Hazard.responsible_worker_id)


# ----------------------------------------------------------------------------- input

def _text(data: dict, key: str, *, required: bool = False, max_len: int) -> str | None:
    v = data.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise HazardError(key, f"{key} is required", 400)
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str):
        raise HazardError(key, f"{key} must be text, got {type(v).__name__}", 400)
    v = v.strip()
    if len(v) > max_len:
        raise HazardError(key, f"{key} is too long: {len(v)} characters, at most {max_len}", 400)
    return v


def parse_grade(value, key: str = "grade") -> str:
    """general / major (一般 / 重大, short or full names); the accident grades are refused, saying why."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "general"
    v = str(value).strip()
    v = GRADE_ALIASES.get(v, v.lower())
    if v in GRADES:
        return v
    if str(value).strip() in _ACCIDENT_ONLY or v in _ACCIDENT_ONLY:
        raise HazardError(key, f"{str(value)[:20]!r} is an accident grade, not a hazard grade: a hazard is "
                               "general or major (一般事故隐患 / 重大事故隐患, 安监总局令第16号 第三条); the grade "
                               "of the accident it could cause goes in accident_grade", 400)
    raise HazardError(key, f"{key} must be one of {', '.join(GRADES)} ({', '.join(GRADE_ZH.values())}), "
                           f"got {str(value)[:20]!r}", 400)


def parse_accident_grade(value) -> str | None:
    """None, or one of the four accident grades (general/larger/major/especially_major, 一般/较大/重大/特别重大)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    v = str(value).strip()
    v = ACCIDENT_GRADE_ALIASES.get(v, v.lower())
    if v not in ACCIDENT_GRADES:
        raise HazardError("accident_grade", f"accident_grade must be one of {', '.join(ACCIDENT_GRADES)} "
                                            f"({', '.join(ACCIDENT_GRADE_ZH.values())}), got {str(value)[:20]!r}", 400)
    return v


def parse_time(value, key: str, *, end_of_day: bool = False) -> dt.datetime:
    """YYYY-MM-DD (a local day: its start, or with ``end_of_day`` its last second) or ISO 8601 with a zone
    (a zone-less time is taken as Asia/Shanghai)."""
    if isinstance(value, dt.datetime):
        try:
            t = check_day(value, key)
        except OutOfRange as e:
            raise HazardError(key, str(e), 400) from None
    else:
        v = str(value).strip()
        try:
            if len(v) == 10:
                d = parse_day(v, key)
                t = dt.datetime.combine(d, dt.time(23, 59, 59) if end_of_day else dt.time(), TIMEZONE)
            else:
                t = parse_instant(v, key)
        except OutOfRange as e:
            raise HazardError(key, str(e), 400) from None
        except ValueError:
            raise HazardError(key, f"{key} must be a date YYYY-MM-DD or an ISO 8601 time, got {v[:40]!r}",
                              400) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=TIMEZONE)
    return t.astimezone(dt.timezone.utc)


def parse_geometry(data: dict) -> tuple[shapely.Geometry, str]:
    """The hazard's geometry in WGS84 and its kind (point / area) from ``geometry`` (GeoJSON, or WKT)
    or ``lon``/``lat`` (or ``location: {lon, lat}``), in ``crs`` (default wgs84)."""
    from gridmap.geo import coords
    from gridmap.geo.coords import CRSError, parse_crs

    loc = data.get("location") if isinstance(data.get("location"), dict) else {}
    crs_raw = data.get("crs") or loc.get("crs") or "wgs84"
    try:
        crs = parse_crs(crs_raw)
    except CRSError as e:
        raise HazardError("crs", str(e), 400) from None
    raw = data.get("geometry")
    if raw not in (None, ""):
        try:
            if isinstance(raw, dict):
                geom = shapely.from_geojson(json.dumps(raw))
            elif isinstance(raw, str) and raw.strip().startswith("{"):
                geom = shapely.from_geojson(raw)
            elif isinstance(raw, str):
                geom = shapely.from_wkt(raw)
            else:
                raise ValueError
        except Exception:  # noqa: BLE001 - GEOS raises several kinds
            raise HazardError("geometry", "geometry must be a GeoJSON Point, Polygon or MultiPolygon (or WKT)",
                              400) from None
    else:
        lon = data.get("lon", loc.get("lon"))
        lat = data.get("lat", loc.get("lat"))
        if lon in (None, "") or lat in (None, ""):
            raise HazardError("location", "a hazard needs a place: lon and lat, or a geometry (point or area)", 400)
        try:
            x, y = float(lon), float(lat)
        except (TypeError, ValueError):
            raise HazardError("location", f"lon/lat must be numbers, got {str(lon)[:20]!r}, {str(lat)[:20]!r}",
                              400) from None
        geom = shapely.Point(x, y)
    if geom is None or geom.is_empty:
        raise HazardError("geometry", "the geometry is empty", 400)
    kind = {"Point": "point", "Polygon": "area", "MultiPolygon": "area"}.get(geom.geom_type)
    if kind is None:
        raise HazardError("geometry", f"a hazard is a Point or an area (Polygon, MultiPolygon), not a "
                                      f"{geom.geom_type}", 400)
    if crs.kind != "wgs84":
        def fn(xy):
            lon, lat = coords.to_wgs84(xy[:, 0], xy[:, 1], crs)
            return __import__("numpy").column_stack([lon, lat])
        geom = shapely.transform(geom, fn)
    x0, y0, x1, y1 = geom.bounds
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise HazardError("geometry", f"coordinates out of range after conversion to WGS84 "
                                      f"({x0:.6f}, {y0:.6f} … {x1:.6f}, {y1:.6f}); lon and lat swapped?", 400)
    if kind == "area" and not geom.is_valid:
        raise HazardError("geometry", f"the area is not a valid polygon ({shapely.is_valid_reason(geom)})", 400)
    return geom, kind


def anchor_point(geom: shapely.Geometry) -> shapely.Point:
    """The point that places a hazard in a cell: the point itself; for an area its centroid, or a
    point on its surface when the centroid falls outside it (a crescent, an archipelago)."""
    if geom.geom_type == "Point":
        return geom
    c = geom.centroid
    return c if geom.covers(c) else geom.point_on_surface()


def _snap_m() -> float:
    try:
        from flask import current_app, has_app_context

        if has_app_context():
            return float(current_app.config.get("GRIDMAP_SNAP_M", 100.0))
    except ImportError:  # pragma: no cover
        pass
    return 100.0


def place(session: Session, lon: float, lat: float) -> dict[str, Any]:
    """Cell, community, street, district ids of a WGS84 point (through the lookup index)."""
    from gridmap.boundaries.lookup import LEVEL_KEYS, get_index

    idx = get_index(session)
    res = idx.locate([lon], [lat], "wgs84", _snap_m())
    if int(res.cell[0]) < 0:
        if len(idx) == 0:
            raise HazardError("location", "the hazard cannot be placed: no cell boundaries are loaded")
        raise HazardError("location", f"the point {lon:.6f}, {lat:.6f} (WGS84) is outside every cell "
                                      f"(none within {_snap_m():g} m)")
    codes = {lvl: idx.level_codes(lvl, res.cell)[0] for lvl in LEVEL_KEYS}
    ids = dict(session.execute(select(Area.code, Area.id).where(Area.code.in_([c for c in codes.values() if c])))
               .all())
    return {f"{lvl}_id": ids.get(codes[lvl]) for lvl in LEVEL_KEYS} | {"cell_code": codes["cell"]}


def hazard_number(found_at: dt.datetime, hazard_id: int) -> str:
    return f"YH{found_at.astimezone(TIMEZONE):%Y%m%d}-{hazard_id:06d}"


# ----------------------------------------------------------------------------- history

def append_event(session: Session, hazard: Hazard, action: str, actor: Actor, *, from_status: str | None = None,
                 to_status: str | None = None, comment: str | None = None, data: dict | None = None,
                 at: dt.datetime | None = None) -> HazardEvent:
    """Append one event to the hazard's history (rows are only ever inserted; seq 1, 2, 3 …)."""
    if hazard.id is None:
        session.flush()
    seq = (session.scalar(select(func.max(HazardEvent.seq)).where(HazardEvent.hazard_id == hazard.id)) or 0) + 1
    ev = HazardEvent(hazard_id=hazard.id, seq=seq, action=action, from_status=from_status, to_status=to_status,
                     at=at or utcnow(), actor_user_id=actor.user_id, actor_worker_id=actor.worker_id,
                     actor_name=actor.name, comment=comment,
                     data=json.dumps(data, ensure_ascii=False, default=str) if data else None)
    session.add(ev)
    session.flush()
    return ev


# ----------------------------------------------------------------------------- registration

def create_hazard(session: Session, data: dict, actor: Actor, *, source: str = "manual",
                  now: dt.datetime | None = None) -> Hazard:
    """Validate, place, route and write one hazard in the caller's transaction (not committed).

    ``data``: type (code or Chinese name), title, description?, grade? (general/major or 一般/重大,
    default general), accident_grade? (general/larger/major/especially_major), geometry (GeoJSON/WKT point or area) or lon+lat, crs?, address?,
    responsible_unit?, responsible_person?, found_at? (default now), rectify_deadline? (default: the
    type's limit for the grade from found_at), case_ids?, external_id?.
    """
    from gridmap.assign.router import route

    now = now or utcnow()
    if not isinstance(data, dict):
        raise HazardError("body", "a hazard must be a JSON object", 400)
    if source not in SOURCES:
        raise HazardError("source", f"unknown source {source!r}: use one of {', '.join(SOURCES)}", 400)
    htype = find_type(session, data.get("type"))
    title = _text(data, "title", required=True, max_len=MAX_TITLE)
    description = _text(data, "description", max_len=MAX_DESCRIPTION)
    if "severity" in data:
        raise HazardError("severity", "severity is gone: give grade (general/major, 一般/重大事故隐患) and, where "
                                      "needed, accident_grade (the four accident grades)", 400)
    grade = parse_grade(data.get("grade"))
    accident_grade = parse_accident_grade(data.get("accident_grade"))
    geom, kind = parse_geometry(data)
    anchor = anchor_point(geom)
    where = place(session, anchor.x, anchor.y)
    found_at = parse_time(data["found_at"], "found_at") if data.get("found_at") not in (None, "") else now
    if found_at > now + dt.timedelta(minutes=5):
        raise HazardError("found_at", f"found_at {found_at.isoformat()} lies in the future", 400)
    if data.get("rectify_deadline") not in (None, ""):
        deadline = parse_time(data["rectify_deadline"], "rectify_deadline", end_of_day=True)
        if deadline < found_at:
            raise HazardError("rectify_deadline", "the rectification deadline lies before the hazard was found", 400)
        limit_note = "given"
    else:
        value, unit = rectify_limit(htype, grade)
        deadline = add_limit(session, found_at, value, unit)
        limit_note = f"{value:g} {unit} ({htype.code}, {grade})"
    external_id = _text(data, "external_id", max_len=120)
    if external_id and session.scalar(select(Hazard.id).where(Hazard.source == source,
                                                              Hazard.external_id == external_id)):
        raise HazardError("external_id", f"a hazard from {source} with external_id {external_id!r} exists already",
                          409)
    case_ids = data.get("case_ids") or []
    if not isinstance(case_ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in case_ids):
        raise HazardError("case_ids", "case_ids must be a list of case ids", 400)
    if case_ids:
        from gridmap.accounts.scope import case_filter

        found = set(session.scalars(select(Case.id).where(Case.id.in_(case_ids), case_filter(session, actor))))
        missing = [i for i in case_ids if i not in found]
        if missing:
            raise HazardError("case_ids", f"no case {missing[0]}", 422)
    r = route(session, cell_id=where["cell_id"], category=None, at=found_at)
    h = Hazard(source=source, external_id=external_id, type_id=htype.id, title=title, description=description,
               grade=grade, accident_grade=accident_grade, status="open", geom=WKTElement(geom.wkt, srid=4326), geom_kind=kind,
               lon=round(anchor.x, 8), lat=round(anchor.y, 8), address=_text(data, "address", max_len=300),
               cell_id=where["cell_id"], community_id=where["community_id"], street_id=where["street_id"],
               district_id=where["district_id"], responsible_unit=_text(data, "responsible_unit", max_len=200),
               responsible_person=_text(data, "responsible_person", max_len=80), responsible_worker_id=r.worker_id,
               route_reason=r.reason[:300], found_at=found_at, rectify_deadline=deadline, reported_by=actor.name,
               rework_count=0, version=1, created_at=now, updated_at=now)
    session.add(h)
    session.flush()
    h.number = hazard_number(found_at, h.id)
    for cid in case_ids:
        session.add(HazardCase(hazard_id=h.id, case_id=cid, relation="reported_by", created_at=now))
    session.flush()
    append_event(session, h, "register", actor, to_status="open", at=now,
                 data={"source": source, "cell": where["cell_code"], "routing": {"level": r.level,
                       "worker_id": r.worker_id, "reason": r.reason}, "deadline": deadline.isoformat(),
                       "limit": limit_note})
    return h


def link_case(session: Session, hazard_id: int, case_id: int, actor: Actor, *, relation: str = "related",
              now: dt.datetime | None = None) -> None:
    from gridmap.accounts.scope import case_filter

    h = get_hazard(session, actor, hazard_id)
    if h is None:
        raise HazardError("hazard", f"no hazard {hazard_id}", 404)
    if session.scalar(select(Case.id).where(Case.id == case_id, case_filter(session, actor))) is None:
        raise HazardError("case_id", f"no case {case_id}", 404)
    if session.get(HazardCase, (hazard_id, case_id)) is None:
        session.add(HazardCase(hazard_id=hazard_id, case_id=case_id, relation=relation, created_at=now or utcnow()))
        append_event(session, h, "link_case", actor, data={"case_id": case_id, "relation": relation}, at=now)


# ----------------------------------------------------------------------------- life-cycle

@dataclass(frozen=True)
class Transition:
    to: str
    who: str  # "any" (anyone in scope but a department) or "supervisor"
    comment: bool = False


#: action → from-status → transition. verify with data {"passed": false} sends the hazard back to open.
TRANSITIONS: dict[str, dict[str, Transition]] = {
    "rectify": {"open": Transition("rectified", "any", comment=True)},
    "verify": {"rectified": Transition("verified", "supervisor")},
    "close": {"verified": Transition("closed", "supervisor")},
    # a hazard found again after its check or its closing: back to open with a new deadline
    "reopen": {"verified": Transition("open", "supervisor", comment=True),
               "closed": Transition("open", "supervisor", comment=True)},
}
ACTIONS = tuple(TRANSITIONS)


def _last_rectify(session: Session, hazard_id: int) -> HazardEvent | None:
    return session.scalar(select(HazardEvent).where(HazardEvent.hazard_id == hazard_id,
                                                    HazardEvent.action == "rectify")
                          .order_by(HazardEvent.seq.desc()).limit(1))


def apply_action(session: Session, hazard_id: int, action: str, actor: Actor, *, comment: str | None = None,
                 data: dict | None = None, expected_version: int | None = None,
                 now: dt.datetime | None = None) -> Hazard:
    """Do ``action`` on a hazard (in the caller's transaction). HazardError 400/403/404/409 otherwise.

    rectify (open → rectified; a comment says what was done), verify (rectified → verified, or with
    ``data={"passed": false}`` and a comment back to open, counted as rework; never by who rectified),
    close (verified → closed, 销号), reopen (verified / closed → open with a reason and a new
    deadline from now, counted in ``reopen_count``).
    """
    now = now or utcnow()
    table = TRANSITIONS.get(action)
    if table is None:
        raise HazardError("action", f"unknown action {action!r}; actions are {', '.join(ACTIONS)}", 400)
    session.flush()
    h = session.scalar(select(Hazard).where(Hazard.id == hazard_id, hazard_filter(session, actor))
                       .execution_options(populate_existing=True))
    if h is None:
        raise HazardError("hazard", f"no hazard {hazard_id}", 404)
    if expected_version is not None and expected_version != h.version:
        raise HazardError("version", f"hazard {h.number} has changed (version {h.version}, you expected "
                                     f"{expected_version}); reload it and try again", 409)
    tr = table.get(h.status)
    if tr is None:
        raise HazardError("action", f"cannot {action} hazard {h.number}: it is {h.status} "
                                    f"({STATUS_ZH[h.status]}); {action} is allowed only from "
                                    f"{', '.join(table)}", 409)
    if actor.role == "department" or (tr.who == "supervisor" and actor.role not in SUPERVISOR_ROLES):
        raise HazardError("action", f"{action} needs a supervisor ({', '.join(SUPERVISOR_ROLES[:-1])})"
                          if tr.who == "supervisor" else f"a department may not {action} hazards", 403)
    data = dict(data or {})
    comment = (comment or "").strip() or None
    to = tr.to
    values: dict[str, Any] = {}
    if action == "rectify":
        if not comment:
            raise HazardError("comment", "rectify needs a comment: what was done (整改措施)", 400)
        values = {"rectified_at": now}
        data["on_time"] = h.rectify_deadline is None or now <= h.rectify_deadline
    elif action == "verify":
        passed = data.get("passed", True)
        if not isinstance(passed, bool):
            raise HazardError("data.passed", "passed must be true or false", 400)
        last = _last_rectify(session, h.id)
        if last is not None and ((actor.worker_id is not None and actor.worker_id == last.actor_worker_id)
                                 or (actor.user_id is not None and actor.user_id == last.actor_user_id)):
            raise HazardError("action", "the verifier must not be who rectified the hazard (核查人不能是整改人)", 403)
        if passed:
            values = {"verified_at": now}
        else:
            if not comment:
                raise HazardError("comment", "a failed check needs a comment: what is still wrong", 400)
            to = "open"
            values = {"rectified_at": None, "rework_count": (h.rework_count or 0) + 1}
    elif action == "close":
        values = {"closed_at": now}
    elif action == "reopen":
        if not comment:
            raise HazardError("comment", "reopen needs a reason: what was found again", 400)
        htype = session.get(HazardType, h.type_id)
        value, unit = rectify_limit(htype, h.grade)
        deadline = add_limit(session, now, value, unit)
        values = {"rectified_at": None, "verified_at": None, "closed_at": None, "rectify_deadline": deadline,
                  "reopen_count": (h.reopen_count or 0) + 1}
        data.update({"deadline": deadline.isoformat(), "limit": f"{value:g} {unit}",
                     "previous_deadline": h.rectify_deadline.isoformat() if h.rectify_deadline else None})
    stmt = (update(Hazard).where(Hazard.id == h.id, Hazard.version == h.version, Hazard.status == h.status)
            .values(**values, status=to, version=h.version + 1, updated_at=now)
            .execution_options(synchronize_session=False))
    from_status = h.status
    if session.execute(stmt).rowcount != 1:
        raise HazardError("version", f"hazard {h.number} was changed by another action while you were acting; "
                                     "reload it and try again", 409)
    session.refresh(h)
    append_event(session, h, action, actor, from_status=from_status, to_status=to, comment=comment,
                 data=data or None, at=now)
    return h


# ----------------------------------------------------------------------------- reading

FILTER_KEYS = ("area", "status", "type", "grade", "overdue", "unit", "supervised", "from", "to", "bbox")


def _area(session: Session, code: str) -> Area:
    a = session.scalar(select(Area).where(Area.code == str(code).strip()))
    if a is None:
        raise HazardError("area", f"no area with code {str(code).strip()!r}", 400)
    return a


def overdue_clause(now: dt.datetime):
    return and_(Hazard.status == "open", Hazard.rectify_deadline < now)


def filter_clauses(session: Session, actor: Actor, filters: dict | None, *, now: dt.datetime | None = None) -> list:
    """WHERE clauses: the scope first, then area (code of any level), status (comma list), type
    (comma list), grade, overdue, unit (responsible unit, a part of its name), supervised (督办),
    from/to (found_at, local dates), bbox (minlon,minlat,maxlon,maxlat on the anchor)."""
    now = now or utcnow()
    f = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    unknown = sorted(set(f) - set(FILTER_KEYS))
    if unknown:
        raise HazardError(unknown[0], f"unknown filter {unknown[0]!r}; filters are {', '.join(FILTER_KEYS)}", 400)
    where = [hazard_filter(session, actor)]
    if "area" in f:
        a = _area(session, f["area"])
        where.append(_LEVEL_COLUMN[a.level] == a.id)
    if "status" in f:
        wanted = [s.strip() for s in str(f["status"]).split(",") if s.strip()]
        bad = [s for s in wanted if s not in HAZARD_STATUSES]
        if bad or not wanted:
            raise HazardError("status", f"unknown status {', '.join(bad) or '(empty)'}; statuses are "
                                        f"{', '.join(HAZARD_STATUSES)}", 400)
        where.append(Hazard.status.in_(wanted))
    if "type" in f:
        codes = [c for c in str(f["type"]).split(",") if c.strip()]
        where.append(Hazard.type_id.in_([find_type(session, c).id for c in codes]))
    if "grade" in f:
        where.append(Hazard.grade == parse_grade(f["grade"]))
    if "overdue" in f:
        v = str(f["overdue"]).strip().lower()
        if v not in ("1", "true", "yes", "0", "false", "no"):
            raise HazardError("overdue", "overdue must be true or false", 400)
        where.append(overdue_clause(now) if v in ("1", "true", "yes") else ~overdue_clause(now))
    if "supervised" in f:
        v = str(f["supervised"]).strip().lower()
        if v not in ("1", "true", "yes", "0", "false", "no"):
            raise HazardError("supervised", "supervised must be true or false", 400)
        where.append(Hazard.supervised.is_(v in ("1", "true", "yes")))
    if "unit" in f:
        unit = str(f["unit"]).strip()
        if len(unit) > 200:
            raise HazardError("unit", "unit is too long: at most 200 characters", 400)
        where.append(Hazard.responsible_unit.contains(unit, autoescape=True))
    if "from" in f:
        where.append(Hazard.found_at >= parse_time(f["from"], "from"))
    if "to" in f:
        to = parse_time(f["to"], "to")
        if len(str(f["to"]).strip()) == 10:
            to += dt.timedelta(days=1)
        where.append(Hazard.found_at < to)
    if "bbox" in f:
        try:
            x0, y0, x1, y1 = (float(v) for v in str(f["bbox"]).split(","))
        except ValueError:
            raise HazardError("bbox", "bbox must be minlon,minlat,maxlon,maxlat", 400) from None
        where += [Hazard.lon.between(x0, x1), Hazard.lat.between(y0, y1)]
    return where


def list_hazards(session: Session, actor: Actor, *, filters: dict | None = None, page: int = 1,
                 per_page: int = 50, now: dt.datetime | None = None) -> tuple[list[Hazard], int]:
    where = filter_clauses(session, actor, filters, now=now)
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    total = session.scalar(select(func.count(Hazard.id)).where(*where))
    rows = session.scalars(select(Hazard).where(*where).order_by(Hazard.found_at.desc(), Hazard.id.desc())
                           .offset((max(page, 1) - 1) * per_page).limit(per_page)).all()
    return list(rows), int(total or 0)


def get_hazard(session: Session, actor: Actor, hazard_id: int) -> Hazard | None:
    return session.scalar(select(Hazard).where(Hazard.id == hazard_id, hazard_filter(session, actor)))


def _iso(t):
    return t.isoformat() if t else None


def hazard_dicts(session: Session, hazards: list[Hazard], *, now: dt.datetime | None = None,
                 with_history: bool = False) -> list[dict]:
    """The JSON shape of hazards (labels fetched in one query per kind, not per hazard)."""
    from gridmap.assign.models import Worker

    now = now or utcnow()
    if not hazards:
        return []
    ids = [h.id for h in hazards]
    types = {t.id: t for t in session.scalars(select(HazardType))}
    area_ids = {a for h in hazards for a in (h.cell_id, h.community_id, h.street_id) if a}
    areas = {a.id: (a.code, a.name) for a in session.execute(select(Area.id, Area.code, Area.name)
                                                             .where(Area.id.in_(area_ids)))} if area_ids else {}
    wids = {h.responsible_worker_id for h in hazards if h.responsible_worker_id}
    workers = {w.id: (w.code, w.name) for w in session.execute(select(Worker.id, Worker.code, Worker.name)
                                                               .where(Worker.id.in_(wids)))} if wids else {}
    links: dict[int, list[int]] = {}
    for hid, cid in session.execute(select(HazardCase.hazard_id, HazardCase.case_id)
                                    .where(HazardCase.hazard_id.in_(ids)).order_by(HazardCase.case_id)):
        links.setdefault(hid, []).append(cid)
    history: dict[int, list[dict]] = {}
    if with_history:
        for ev in session.scalars(select(HazardEvent).where(HazardEvent.hazard_id.in_(ids))
                                  .order_by(HazardEvent.hazard_id, HazardEvent.seq)):
            history.setdefault(ev.hazard_id, []).append(
                {"seq": ev.seq, "action": ev.action, "from_status": ev.from_status, "to_status": ev.to_status,
                 "at": _iso(ev.at), "actor": ev.actor_name, "comment": ev.comment,
                 "data": json.loads(ev.data) if ev.data else None})

    def ref(table, i):
        return {"id": i, "code": table[i][0], "name": table[i][1]} if i in table else None

    out = []
    for h in hazards:
        t = types.get(h.type_id)
        d = {"id": h.id, "number": h.number, "type": t.code if t else None, "type_name": t.name if t else None,
             "title": h.title, "description": h.description, "grade": h.grade,
             "grade_name": GRADE_ZH[h.grade], "accident_grade": h.accident_grade,
             "accident_grade_name": ACCIDENT_GRADE_ZH.get(h.accident_grade) if h.accident_grade else None,
             "status": h.status, "status_name": STATUS_ZH[h.status],
             "supervised": bool(h.supervised), "supervised_at": _iso(h.supervised_at),
             "extension_count": h.extension_count or 0, "reopen_count": h.reopen_count or 0,
             "geom_kind": h.geom_kind, "lon": h.lon, "lat": h.lat, "address": h.address,
             "cell": ref(areas, h.cell_id), "community": ref(areas, h.community_id),
             "street": ref(areas, h.street_id), "responsible_unit": h.responsible_unit,
             "responsible_person": h.responsible_person, "responsible_worker": ref(workers, h.responsible_worker_id),
             "route_reason": h.route_reason, "found_at": _iso(h.found_at), "rectify_deadline": _iso(h.rectify_deadline),
             "rectified_at": _iso(h.rectified_at), "verified_at": _iso(h.verified_at), "closed_at": _iso(h.closed_at),
             "overdue": bool(h.status == "open" and h.rectify_deadline is not None and h.rectify_deadline < now),
             "rework_count": h.rework_count, "case_ids": links.get(h.id, []), "source": h.source,
             "external_id": h.external_id, "version": h.version}
        if with_history:
            d["history"] = history.get(h.id, [])
        out.append(d)
    return out


def hazard_geometry_geojson(session: Session, hazard_id: int) -> dict | None:
    wkb = session.scalar(select(func.ST_AsBinary(Hazard.geom)).where(Hazard.id == hazard_id))
    return None if wkb is None else json.loads(shapely.to_geojson(shapely.from_wkb(bytes(wkb))))


# ----------------------------------------------------------------------------- import

@dataclass
class ImportReport:
    path: str
    rows: int = 0
    created: int = 0
    skipped: int = 0  # already imported (same external_id)
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        verb = "would import" if self.dry_run else ("imported" if self.ok else "imported nothing")
        return (f"{self.path}: {self.rows} rows: {verb} {self.created}, {self.skipped} already there, "
                f"{len(self.errors)} errors")


#: column aliases accepted in files (Chinese headers of common local ledgers)
COLUMN_ALIASES = {"类型": "type", "隐患类型": "type", "标题": "title", "隐患名称": "title", "描述": "description",
                  "隐患描述": "description", "等级": "grade", "隐患等级": "grade", "隐患级别": "grade",
                  "事故等级": "accident_grade", "可能导致的事故等级": "accident_grade", "经度": "lon", "纬度": "lat",
                  "地址": "address", "责任单位": "responsible_unit", "责任人": "responsible_person",
                  "发现时间": "found_at", "整改期限": "rectify_deadline", "编号": "external_id", "id": "external_id",
                  "wkt": "geometry", "坐标系": "crs"}


def _read_rows(path: Path, encoding: str | None) -> list[dict]:
    suffix = path.suffix.lower()
    raw = path.read_bytes()
    if suffix in (".geojson", ".json"):
        try:
            doc = json.loads(raw.decode(encoding or "utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a GeoJSON file: {e}") from None
        feats = doc.get("features") if isinstance(doc, dict) else None
        if not isinstance(feats, list):
            raise ValueError(f"{path}: expected a GeoJSON FeatureCollection")
        rows = []
        for f in feats:
            props = dict((f or {}).get("properties") or {})
            props["geometry"] = (f or {}).get("geometry")
            rows.append(props)
        return rows
    if suffix != ".csv":
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use .csv or .geojson")
    from gridmap.textio import csv_dict_reader, csv_problem, decode_text

    try:
        text, _ = decode_text(raw, encoding)
    except (UnicodeDecodeError, LookupError):
        raise ValueError(f"{path}: cannot decode as UTF-8 or GBK; give --encoding") from None
    reader = csv_dict_reader(io.StringIO(text, newline=""))
    rows, prev = [], 1
    while True:
        try:
            rows.append(next(reader))
        except StopIteration:
            return rows
        except csv.Error as e:
            raise ValueError(f"{path}: {csv_problem(prev + 1, reader.line_num, e)}") from None
        prev = reader.line_num


def import_file(session: Session, path: str | Path, actor: Actor, *, source: str = "import",
                encoding: str | None = None, dry_run: bool = False, now: dt.datetime | None = None) -> ImportReport:
    """Import hazards from CSV (type,title,lon,lat[,crs,geometry(WKT),grade,accident_grade,…]; Chinese headers such as
    隐患类型/经度/纬度 work too) or GeoJSON (properties with the same names). All rows or none: every
    row is checked first (in a savepoint); rows whose external_id was imported before are skipped."""
    path = Path(path)
    rep = ImportReport(str(path), dry_run=dry_run)
    try:
        rows = _read_rows(path, encoding)
    except (OSError, ValueError) as e:
        rep.errors.append(str(e))
        return rep
    rep.rows = len(rows)
    sp = session.begin_nested()
    for i, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        data = {COLUMN_ALIASES.get(str(k).strip(), str(k).strip()): v for k, v in row.items() if k is not None}
        data = {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()}
        ext = data.get("external_id")
        if ext not in (None, "") and session.scalar(select(Hazard.id).where(Hazard.source == source,
                                                                            Hazard.external_id == str(ext))):
            rep.skipped += 1
            continue
        if ext not in (None, ""):
            data["external_id"] = str(ext)
        where = f"{'row' if path.suffix.lower() == '.csv' else 'feature'} {i}"
        try:
            with session.begin_nested():
                create_hazard(session, data, actor, source=source, now=now)
            rep.created += 1
        except HazardError as e:
            rep.errors.append(f"{path.name} {where}: {e.field}: {e.message}")
    if rep.errors or dry_run:
        sp.rollback()
    else:
        sp.commit()
    return rep
