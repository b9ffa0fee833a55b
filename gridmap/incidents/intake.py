"""Case intake: turning a report (API, Open311, a form) into a placed, routed, numbered case.

Owns: validating a report field by field (every refusal is an ``IntakeError`` naming the field,
raised before anything is written), placing it (a point in any accepted CRS → the cell and its
community/street/district, snapping within ``GRIDMAP_SNAP_M``; or an address matched against the
register, accepted only at ``GRIDMAP_ADDRESS_MIN_SCORE`` or better, otherwise queued for manual
placement: never a silent guess), routing it (``assign.router.route``, reason stored on the case),
numbering it (``20261129-000042``: Asia/Shanghai date + id), the "report" history event, and
auto-dispatch (lifecycle "file" + "dispatch" by the system) when it was routed to someone, unless
its category asks for on-site verification first (核实: ``needs_confirmation``; the cell's worker
on duty verifies with a photo within the category's confirm limit, then
``file_after_confirmation`` files and dispatches).
``place_case`` is the supervisor's way out of the manual-placement queue.

All writes of one intake happen in one savepoint: a case is written whole or not at all.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import gridmap.models  # noqa: F401  (every table mapped before the first query)
from gridmap.accounts.actor import SYSTEM, Actor
from gridmap.boundaries.models import Area
from gridmap.config import setting
from gridmap.db import utcnow
from gridmap.geo.coords import CRS, CRSError, parse_crs
from gridmap.incidents.categories import AmbiguousCategory, UnknownCategory, get_category
from gridmap.incidents.models import SOURCES, Case, Category

TIMEZONE = ZoneInfo("Asia/Shanghai")
MAX_DESCRIPTION = 5000
MAX_TITLE = 200
DEFAULT_SNAP_M = 100.0
DEFAULT_ADDRESS_MIN_SCORE = 0.8
#: roles that may not report cases (the report page refused them; now the API does too)
NON_REPORTING_ROLES = frozenset({"department"})
#: roles that may place a queued case by hand
PLACING_ROLES = ("head", "community", "street", "district", "city", "admin")
#: statuses in which a case may still be (re)placed and re-routed
PLACEABLE_STATUSES = ("reported", "filed")
_PHONE_RE = re.compile(r"^\+?[0-9][0-9 \-()]{2,38}$")


class IntakeError(ValueError):
    """A report that cannot be accepted: ``field`` names the culprit, ``message`` says why.

    ``status`` is the HTTP status an API answers with (422 for a well-formed but unacceptable
    report, 400 for a malformed value, 403/404/409 for ``place_case``).
    """

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


def _setting(key: str, default):
    try:
        from flask import current_app, has_app_context

        if has_app_context():
            v = current_app.config.get(key)
            return default if v is None else v
    except ImportError:  # pragma: no cover
        pass
    return default


def snap_distance() -> float:
    return float(_setting("GRIDMAP_SNAP_M", DEFAULT_SNAP_M))


def address_min_score() -> float:
    return float(_setting("GRIDMAP_ADDRESS_MIN_SCORE", DEFAULT_ADDRESS_MIN_SCORE))


def case_number(reported_at: dt.datetime, case_id: int) -> str:
    """``YYYYMMDD-NNNNNN``: the local (Asia/Shanghai) date of the report and the case id."""
    return f"{reported_at.astimezone(TIMEZONE):%Y%m%d}-{case_id:06d}"


# ----------------------------------------------------------------------------- validation

def _text(data: dict, key: str, *, required: bool = False, max_len: int, label: str | None = None) -> str | None:
    label = label or key
    v = data.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise IntakeError(label, f"{label} is required", 400)
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str):
        raise IntakeError(label, f"{label} must be text, got {type(v).__name__}", 400)
    v = v.strip()
    if len(v) > max_len:
        raise IntakeError(label, f"{label} is too long: {len(v)} characters, at most {max_len}", 400)
    return v


def _bool(data: dict, key: str) -> bool:
    v = data.get(key)
    if v is None or v == "":
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("1", "true", "yes", "y", "on", "是"):
        return True
    if isinstance(v, str) and v.strip().lower() in ("0", "false", "no", "n", "off", "否"):
        return False
    raise IntakeError(key, f"{key} must be true or false, got {str(v)[:20]!r}", 400)


def number(value, label: str) -> float:
    """A finite float from a JSON number or numeric text; IntakeError naming ``label`` otherwise."""
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise IntakeError(label, f"{label} is required and must be a number", 400)
    if isinstance(value, (int, float)):
        v = float(value)
    elif isinstance(value, str):
        try:
            v = float(value.strip())
        except ValueError:
            raise IntakeError(label, f"{label} must be a number, got {value[:30]!r}", 400) from None
    else:
        raise IntakeError(label, f"{label} must be a number, got {type(value).__name__}", 400)
    if not math.isfinite(v):
        raise IntakeError(label, f"{label} must be a finite number", 400)
    return v


def find_category(session: Session, code) -> Category:
    """The active category named by ``code``: its internal code, standard code (``0102``, ``事件0102``)
    or exact name (``垃圾满溢``); IntakeError("category") listing close matches, or naming every
    category an ambiguous standard code fits, otherwise."""
    if code is None or (isinstance(code, str) and not code.strip()):
        raise IntakeError("category", "category is required (a category code, standard code or name)", 400)
    if not isinstance(code, str):
        raise IntakeError("category", f"category must be a code or a name (text), got {type(code).__name__}", 400)
    code = code.strip()
    try:
        cat = get_category(session, code)
    except AmbiguousCategory as e:
        raise IntakeError("category", str(e)) from None
    except UnknownCategory as e:
        if not session.scalar(select(Category.id).limit(1)):
            raise IntakeError("category", f"unknown category {code!r}: no categories are loaded") from None
        raise IntakeError("category", str(e)) from None
    if not cat.active:
        raise IntakeError("category", f"category {code!r} ({cat.name}) is no longer in use")
    return cat


def _reporter(data: dict) -> tuple[str | None, str | None]:
    rep = data.get("reporter")
    if rep is None:
        return None, None
    if not isinstance(rep, dict):
        raise IntakeError("reporter", "reporter must be an object {\"name\", \"phone\"}", 400)
    name = _text(rep, "name", max_len=80, label="reporter.name")
    phone = _text(rep, "phone", max_len=40, label="reporter.phone")
    if phone and not _PHONE_RE.match(phone):
        raise IntakeError("reporter.phone", f"reporter.phone {phone[:40]!r} is not a phone number", 400)
    return name, phone


@dataclass
class Placement:
    """Where a report lands: a cell (with its parents) or the manual queue."""

    placement: str  # point, address, manual, queue
    lon: float | None = None
    lat: float | None = None
    input_crs: str | None = None
    cell_id: int | None = None
    community_id: int | None = None
    street_id: int | None = None
    district_id: int | None = None
    cell_code: str | None = None
    snapped: bool = False
    distance_m: float | None = None
    address: str | None = None
    address_id: int | None = None
    address_score: float | None = None
    note: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"placement": self.placement, "lon": self.lon, "lat": self.lat, "input_crs": self.input_crs,
                "cell": self.cell_code, "snapped": self.snapped,
                "distance_m": None if self.distance_m is None else round(self.distance_m, 2),
                "address": self.address, "address_id": self.address_id, "address_score": self.address_score,
                **self.note}


def parse_point(lon_raw, lat_raw, crs_raw, prefix: str = "location.") -> tuple[float, float, CRS]:
    """Validated (x, y, CRS) of a user-given point; IntakeError naming the field otherwise."""
    from gridmap.registry.addresses import coordinate_problem

    try:
        crs = parse_crs(crs_raw if crs_raw not in (None, "") else "wgs84")
    except CRSError as e:
        raise IntakeError(f"{prefix}crs", str(e), 400) from None
    x = number(lon_raw, f"{prefix}lon")
    y = number(lat_raw, f"{prefix}lat")
    problem = coordinate_problem(x, y, crs)
    if problem:
        raise IntakeError(prefix.rstrip(".") or "location", problem, 400)
    return x, y, crs


def locate_point(session: Session, x: float, y: float, crs: CRS, *, snap_m: float | None = None,
                 field_name: str = "location") -> Placement:
    """The cell of a point (snapping within ``snap_m``); IntakeError when it is outside the city."""
    from gridmap.boundaries.lookup import LEVEL_KEYS, get_index

    snap = snap_distance() if snap_m is None else snap_m
    idx = get_index(session)
    res = idx.locate([x], [y], crs, snap)
    if not bool(res.valid[0]):
        raise IntakeError(field_name, f"coordinates {x}, {y} in {crs} are out of range after conversion to WGS84",
                          400)
    lon, lat = float(res.lon[0]), float(res.lat[0])
    if int(res.cell[0]) < 0:
        where = f"{lon:.6f}, {lat:.6f} (WGS84)"
        if len(idx) == 0:
            raise IntakeError(field_name, f"the point {where} cannot be placed: no cell boundaries are loaded")
        raise IntakeError(field_name, f"the point {where} is outside every cell of the city "
                                      f"(no cell within {snap:g} m)")
    codes = {lvl: idx.level_codes(lvl, res.cell)[0] for lvl in LEVEL_KEYS}
    wanted = [c for c in codes.values() if c is not None]
    ids = dict(session.execute(select(Area.code, Area.id).where(Area.code.in_(wanted))).all())
    return Placement(
        placement="point", lon=round(lon, 8), lat=round(lat, 8), input_crs=str(crs),
        cell_id=ids.get(codes["cell"]), community_id=ids.get(codes["community"]),
        street_id=ids.get(codes["street"]), district_id=ids.get(codes["district"]), cell_code=codes["cell"],
        snapped=bool(res.snapped[0]), distance_m=float(res.distance_m[0]))


def _place(session: Session, loc, top_address) -> Placement:
    """Placement from the report's ``location`` (a point, or an address) or top-level ``address``."""
    if loc is None and top_address is None:
        raise IntakeError("location", "location is required: {\"lon\", \"lat\", \"crs\"} or an address", 400)
    if loc is not None and not isinstance(loc, dict):
        raise IntakeError("location", "location must be an object {\"lon\", \"lat\", \"crs\"} or {\"address\"}", 400)
    loc = loc or {}
    address = _text({"a": loc.get("address", top_address)}, "a", max_len=300, label="location.address")
    has_point = any(loc.get(k) not in (None, "") for k in ("lon", "lat"))
    if has_point:
        x, y, crs = parse_point(loc.get("lon"), loc.get("lat"), loc.get("crs"))
        p = locate_point(session, x, y, crs)
        p.address = address
        return p
    if not address:
        raise IntakeError("location", "location needs lon and lat, or an address", 400)
    return place_by_address(session, address)


def place_by_address(session: Session, address: str) -> Placement:
    """Match ``address`` in the register: confident → its point; otherwise the manual queue."""
    from gridmap.geo.coords import CRS as _CRS
    from gridmap.registry.addresses import match_address

    threshold = address_min_score()
    matches = match_address(session, address, limit=3)
    best = matches[0] if matches else None
    if best is not None and best[1] >= threshold:
        a, score = best
        p = locate_point(session, a.lon, a.lat, _CRS("wgs84"), field_name="location.address")
        p.placement, p.input_crs = "address", None
        p.address, p.address_id, p.address_score = address, a.id, round(float(score), 4)
        p.note = {"matched_address": a.address}
        return p
    score = round(float(best[1]), 4) if best else None
    p = Placement(placement="queue", address=address, address_id=None, address_score=score)
    p.note = {"best_candidate": best[0].address if best else None,
              "reason": f"address below confidence {threshold:g}: manual placement needed",
              "reason_code": "unplaced.low_confidence", "reason_params": {"threshold": threshold}}
    return p


# ----------------------------------------------------------------------------- routing

def route_placement(session: Session, placement: Placement, category: Category, at: dt.datetime):
    """The router's answer for a placement (queue → "unroutable" with the reason why)."""
    return explain_route(base_route(session, placement.cell_id, category, at, placement), placement)


def base_route(session: Session, cell_id: int | None, category: Category, at: dt.datetime,
               placement: Placement | None = None):
    from gridmap.assign.router import Route, route

    if cell_id is None:
        note = (placement.note or {}) if placement else {}
        reason = note.get("reason") or "no cell: manual placement needed"
        return Route(None, None, "unroutable", reason, note.get("reason_code") or "unplaced",
                     note.get("reason_params") or {})
    return route(session, cell_id=cell_id, category=category, at=at)


def explain_route(r, placement: Placement):
    """The route with how the case was placed added to its reason (snapped 42 m, by address)."""
    from gridmap.assign.router import Route

    if placement.cell_id is None:
        return r
    if placement.snapped and placement.distance_m is not None:
        return Route(r.worker_id, r.department_id, r.level,
                     _clip(f"{r.reason}; snapped {placement.distance_m:.0f} m to cell {placement.cell_code}"),
                     r.code, {**(r.params or {}), "snapped_m": round(placement.distance_m),
                              "snapped_cell": placement.cell_code})
    if placement.placement == "address":
        return Route(r.worker_id, r.department_id, r.level,
                     _clip(f"{r.reason}; by address (score {placement.address_score:.2f})"),
                     r.code, {**(r.params or {}), "address_score": round(placement.address_score, 2)})
    return r


def _clip(s: str, n: int = 300) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def is_routed(r) -> bool:
    return r.level != "unroutable" and (r.worker_id is not None or r.department_id is not None)


def routing_dict(r) -> dict:
    return {"worker_id": r.worker_id, "department_id": r.department_id, "level": r.level, "reason": r.reason}


def _auto_dispatch(session: Session, case: Case, now: dt.datetime, how: str = "on intake") -> Case:
    """File and dispatch by the system. When no deadline can be set (a year without calendar data)
    the case stays filed, and a history note says why: a supervisor dispatches it once the calendar
    is loaded; the report itself is never lost."""
    from gridmap.incidents import lifecycle
    from gridmap.incidents.history import append_event

    if case.status == "reported":
        case = lifecycle.apply_action(session, case.id, "file", SYSTEM, comment=f"auto-filed {how}", now=now,
                                      comment_code="auto_filed" if how == "on intake" else None)
    try:
        with session.begin_nested():
            case = lifecycle.apply_action(session, case.id, "dispatch", SYSTEM, comment=f"auto-dispatched {how}",
                                          now=now, comment_code="auto_dispatched" if how == "on intake" else None)
    except lifecycle.CalendarRefused as e:
        session.refresh(case)
        append_event(session, case, "note", SYSTEM, from_status=case.status, to_status=case.status,
                     comment=f"not dispatched: {e}", at=now)
    return case


def needs_confirmation(category: Category, source: str) -> bool:
    """Whether a report waits for on-site verification (核实) before filing: the category asks for it,
    the city has it on (GRIDMAP_CONFIRM), and the report does not come from a worker's own patrol."""
    return bool(setting("CONFIRM")) and bool(category.confirm_first) and source != "patrol"


def _confirmation(session: Session, placement: Placement, category: Category, r, now: dt.datetime):
    """(worker id who verifies on site, deadline) for a report that needs it: the cell's worker on duty."""
    from gridmap.assign.calendar import CalendarGap, add_limit
    from gridmap.assign.router import responsible_worker
    from gridmap.incidents.categories import effective_confirm_limit

    worker_id = r.worker_id if r.level == "cell" else None
    if worker_id is None and placement.cell_id is not None:
        w, _why = responsible_worker(session, placement.cell_id, now)
        worker_id = w.id if w is not None else None
    lim = effective_confirm_limit(category)
    if lim is None:
        raise IntakeError("category", f"category {category.code} asks for on-site verification but has no "
                                      f"confirm_limit", 409)
    try:
        deadline = add_limit(session, now, lim.value, lim.unit)
    except CalendarGap as e:
        raise IntakeError("reported_at", str(e), 409) from None
    return worker_id, deadline


def file_after_confirmation(session: Session, case: Case, *, auto_dispatch: bool = True,
                            now: dt.datetime | None = None) -> Case:
    """After the on-site verification (lifecycle "confirm"): the system files the case and, when it
    is routed and the city auto-dispatches, dispatches it (in the caller's transaction)."""
    now = now or utcnow()
    if case.status != "reported" or case.confirmed_at is None or not auto_dispatch:
        return case
    from gridmap.assign.router import Route

    if is_routed(Route(case.assignee_worker_id, case.assignee_department_id, case.assignee_level or "", "")):
        return _auto_dispatch(session, case, now, "after on-site verification")
    return case


# ----------------------------------------------------------------------------- intake

def may_report(actor: Actor) -> bool:
    """Whether ``actor`` may report (create) cases: everyone but a department (the page and the API
    ask the same question)."""
    return actor.role not in NON_REPORTING_ROLES


def create_case(session: Session, data: dict, actor: Actor, *, source: str, now: dt.datetime | None = None,
                auto_dispatch: bool = True) -> Case:
    """Validate, place, route and write one case (in the caller's transaction; not committed).

    ``data``: category (code), description, title?, location {lon, lat, crs} or {address} (or a
    top-level address), reporter {name, phone}?, urgent?, external_id?. Raises IntakeError before
    writing anything when the report is unacceptable.
    """
    from gridmap.incidents.history import append_event

    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("create_case needs a timezone-aware 'now'")
    if not may_report(actor):
        raise IntakeError("case", f"a {actor.role} may not report cases (a department handles what is "
                                  "dispatched to it)", 403)
    if not isinstance(data, dict):
        raise IntakeError("body", "the report must be a JSON object", 400)
    if source not in SOURCES:
        raise IntakeError("source", f"unknown source {source!r}: use one of {', '.join(SOURCES)}", 400)
    description = _text(data, "description", required=True, max_len=MAX_DESCRIPTION)
    title = _text(data, "title", max_len=MAX_TITLE)
    external_id = _text(data, "external_id", max_len=120)
    urgent = _bool(data, "urgent")
    reporter_name, reporter_phone = _reporter(data)
    category = find_category(session, data.get("category"))
    if external_id:
        dup = session.scalar(select(Case.number).where(Case.source == source, Case.external_id == external_id))
        if dup:
            raise IntakeError("external_id", f"a case from {source} with external_id {external_id!r} exists "
                                             f"already: {dup}", 409)
    placement = _place(session, data.get("location"), data.get("address"))
    r = route_placement(session, placement, category, now)
    confirm_worker_id = confirm_deadline = None
    if needs_confirmation(category, source):
        confirm_worker_id, confirm_deadline = _confirmation(session, placement, category, r, now)

    try:
        with session.begin_nested():
            case = Case(
                source=source, external_id=external_id, category_id=category.id, title=title,
                description=description, status="reported", urgent=urgent,
                reporter_name=reporter_name, reporter_phone=reporter_phone, reporter_user_id=actor.user_id,
                lon=placement.lon, lat=placement.lat, input_crs=placement.input_crs,
                geom=_point(placement.lon, placement.lat), address=placement.address,
                address_id=placement.address_id, address_score=placement.address_score,
                placement=placement.placement, cell_id=placement.cell_id, community_id=placement.community_id,
                street_id=placement.street_id, district_id=placement.district_id, snapped=placement.snapped,
                distance_m=None if placement.distance_m is None else round(placement.distance_m, 2),
                assignee_worker_id=r.worker_id, assignee_department_id=r.department_id,
                assignee_level=r.level, **r.columns(clip=_clip), reported_at=now, updated_at=now, version=1,
                confirm_worker_id=confirm_worker_id, confirm_deadline_at=confirm_deadline)
            session.add(case)
            session.flush()
            case.number = case_number(now, case.id)
            session.flush()
            confirm = ({"confirm": {"worker_id": confirm_worker_id, "deadline": confirm_deadline}}
                       if confirm_deadline is not None else {})
            append_event(session, case, "report", actor, to_status="reported", lon=placement.lon, lat=placement.lat,
                         data={"source": source, "routing": routing_dict(r), "location": placement.as_dict(),
                               **confirm}, at=now)
            if auto_dispatch and is_routed(r) and confirm_deadline is None:
                case = _auto_dispatch(session, case, now)
    except IntegrityError:
        if external_id:
            raise IntakeError("external_id", f"a case from {source} with external_id {external_id!r} exists "
                                             f"already", 409) from None
        raise
    return case


def _point(lon, lat):
    if lon is None or lat is None:
        return None
    from geoalchemy2 import WKTElement

    return WKTElement(f"POINT({lon!r} {lat!r})", srid=4326)


def may_place_into(actor: Actor, placement: Placement) -> bool:
    """A queued case (no area yet) may be placed by a supervisor only inside their own area."""
    if actor.role in ("city", "admin") or actor.is_system:
        return True
    if actor.role not in PLACING_ROLES or actor.area_id is None:
        return False
    return actor.area_id in (placement.cell_id, placement.community_id, placement.street_id, placement.district_id)


def place_case(session: Session, case_id: int, lon, lat, crs, actor: Actor, *, comment: str | None = None,
               expected_version: int | None = None, now: dt.datetime | None = None,
               auto_dispatch: bool = True) -> Case:
    """A supervisor places a case by hand (the manual-placement queue): locate, re-route, record.

    Only supervisors (head and up) may, only for cases in their scope (others: 404) and only
    before dispatch (reported/filed). The update is atomic on the case's version.
    """
    from gridmap.accounts.scope import case_filter
    from gridmap.incidents.history import append_event

    now = now or utcnow()
    case = session.scalar(select(Case).where(Case.id == case_id, case_filter(session, actor)))
    queued = False
    if case is None and actor.role in PLACING_ROLES:
        # a queued case has no area yet, so no area scope holds it: a supervisor may place it,
        # inside their own area only (checked below, on the located point)
        case = session.scalar(select(Case).where(Case.id == case_id, Case.placement == "queue",
                                                 Case.cell_id.is_(None)))
        queued = case is not None
    if case is None:
        raise IntakeError("case", f"no case {case_id}", 404)
    if actor.role not in PLACING_ROLES and not actor.is_system:
        raise IntakeError("case", f"a {actor.role} may not place cases; a supervisor (head or above) places them",
                          403)
    if case.status not in PLACEABLE_STATUSES:
        raise IntakeError("case", f"case {case.number} is {case.status}; only reported or filed cases can be "
                                  f"placed (use reassign for dispatched ones)", 409)
    x, y, c = parse_point(lon, lat, crs, prefix="")
    p = locate_point(session, x, y, c)
    if queued:
        if not may_place_into(actor, p):
            raise IntakeError("location", f"the point lies in cell {p.cell_code}, outside your area", 403)
    p.placement = "manual"
    category = session.get(Category, case.category_id)
    r = route_placement(session, p, category, now)
    version = case.version if expected_version is None else expected_version
    old = {"placement": case.placement, "cell_id": case.cell_id, "lon": case.lon, "lat": case.lat}
    with session.begin_nested():
        res = session.execute(
            update(Case).where(and_(Case.id == case.id, Case.version == version, Case.status == case.status))
            .values(lon=p.lon, lat=p.lat, geom=_point(p.lon, p.lat), input_crs=p.input_crs, placement="manual",
                    cell_id=p.cell_id, community_id=p.community_id, street_id=p.street_id,
                    district_id=p.district_id, snapped=p.snapped,
                    distance_m=None if p.distance_m is None else round(p.distance_m, 2),
                    assignee_worker_id=r.worker_id, assignee_department_id=r.department_id,
                    assignee_level=r.level, **r.columns(clip=_clip), version=Case.version + 1,
                    updated_at=now)
            .execution_options(synchronize_session=False))
        if res.rowcount != 1:
            session.expire(case)
            raise IntakeError("version", f"case {case.number} was changed meanwhile (now version "
                                         f"{session.get(Case, case.id).version}); reload and retry", 409)
        session.refresh(case)
        append_event(session, case, "place", actor, from_status=case.status, to_status=case.status,
                     comment=comment, lon=p.lon, lat=p.lat,
                     data={"routing": routing_dict(r), "location": p.as_dict(), "before": old}, at=now)
        if auto_dispatch and is_routed(r):
            if case.status == "reported":
                from gridmap.incidents import lifecycle

                case = lifecycle.apply_action(session, case.id, "file", SYSTEM, comment="filed on placement",
                                              now=now, comment_code="filed_on_placement")
            from gridmap.incidents import lifecycle

            case = lifecycle.apply_action(session, case.id, "dispatch", SYSTEM, comment="dispatched on placement",
                                          now=now, comment_code="dispatched_on_placement")
    return case
