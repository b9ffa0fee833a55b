"""JSON API for hazards (``/api/v1/hazards…``): thin views over gridmap.hazards.

Owns: parsing requests and shaping answers. Every view needs a login; reads are limited to the
caller's scope (``hazards.service.hazard_filter``) and a hazard outside it answers 404. Errors are
JSON ``{"error", "field"}``: malformed 400, unacceptable 422, a wrong state or a lost race 409,
not allowed 403.

  GET  /api/v1/hazards                     list: area, status, type, grade, overdue, unit, supervised, from, to, bbox,
                                           page, per_page (≤ 200)
  POST /api/v1/hazards                     create {type, title, grade?, accident_grade?, geometry | lon+lat, crs?, …} → 201
  GET  /api/v1/hazards/<id>                one hazard with its geometry and history
  POST /api/v1/hazards/<id>/rectify        {"comment", "version"?}
  POST /api/v1/hazards/<id>/verify         {"passed": true|false, "comment"?, "version"?}
  POST /api/v1/hazards/<id>/close          {"comment"?, "version"?}
  POST /api/v1/hazards/<id>/cases          {"case_id", "relation"?} link a case
  POST /api/v1/hazards/<id>/schedules      {"interval_days"?, "start_date"?, "end_date"?} recurring inspection
  GET  /api/v1/hazards/geo?bbox=…          GeoJSON for maps (points and areas; capped, ``truncated``)
  GET  /api/v1/hazards/types               the hazard types with their limits
  GET  /api/v1/hazards/indicators          open, overdue, 按期整改率 (with due), reopened … per group
                                           (none|district|street|community|cell), by grade and type; from, to, area
  GET  /api/v1/hazards/compliance          inspections due / on time / late / missed per group and type
  POST /api/v1/hazards/<id>/reopen         {"comment" (required), "version"?}
  POST /api/v1/hazards/<id>/assign         {"unit", "person"?, "comment"?, "version"?} responsible unit
  POST /api/v1/hazards/<id>/extend         {"deadline": YYYY-MM-DD, "reason" (required), "version"?}
  POST /api/v1/hazards/<id>/supervise      {"comment" (required), "version"?} 督办
  GET  /api/v1/hazards/inspections         tasks in scope: due=1, done=0|1, area
  POST /api/v1/hazards/inspections/<id>/done  {"result": ok|issue|absent, "note"?}
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import func, select

from gridmap import get_session
from gridmap.db import MAX_ID
from gridmap.web.auth import current_actor, login_required
from gridmap.web.errors import APIError
from gridmap.web.jsonbody import json_body
from gridmap.web.params import int_arg as _int_arg

bp = Blueprint("hazards_api", __name__, url_prefix="/api/v1/hazards")

DEFAULT_GEO = 2000
MAX_GEO = 5000


def _fail(session, e):
    session.rollback()
    raise APIError(e.message, e.status, field=e.field) from None


def _filters(allowed) -> dict:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise APIError(f"unknown parameter {unknown[0]!r}; this endpoint takes {', '.join(allowed)}",
                       field=unknown[0])
    from gridmap.hazards.service import FILTER_KEYS

    return {k: request.args.get(k) for k in FILTER_KEYS if request.args.get(k) not in (None, "")}


@bp.get("")
@login_required
def list_():
    from gridmap.hazards.service import FILTER_KEYS, HazardError, hazard_dicts, list_hazards

    filters = _filters(FILTER_KEYS + ("page", "per_page"))
    page = _int_arg("page", 1, 1, 10 ** 6)
    per_page = _int_arg("per_page", 50, 1, 200)
    session = get_session()
    try:
        rows, total = list_hazards(session, current_actor(), filters=filters, page=page, per_page=per_page)
    except HazardError as e:
        _fail(session, e)
    return jsonify({"total": total, "page": page, "per_page": per_page, "items": hazard_dicts(session, rows)})


@bp.post("")
@login_required
def create():
    from gridmap.hazards.service import HazardError, create_hazard, hazard_dicts

    session = get_session()
    actor = current_actor()
    data = json_body(required=False)
    if not data:
        raise APIError("the request body is empty: send a JSON object", 400)
    try:
        h = create_hazard(session, data, actor, source="api")
        session.commit()
    except HazardError as e:
        _fail(session, e)
    return jsonify(hazard_dicts(session, [h], with_history=True)[0]), 201


def _one(session, hazard_id: int) -> dict:
    from gridmap.hazards.service import get_hazard, hazard_dicts, hazard_geometry_geojson

    h = get_hazard(session, current_actor(), hazard_id)
    if h is None:
        raise APIError(f"no hazard {hazard_id}", 404)
    out = hazard_dicts(session, [h], with_history=True)[0]
    out["geometry"] = hazard_geometry_geojson(session, h.id)
    return out


@bp.get("/<int:hazard_id>")
@login_required
def get(hazard_id: int):
    return jsonify(_one(get_session(), hazard_id))


@bp.post("/<int:hazard_id>/<any(rectify, verify, close, reopen):action>")
@login_required
def action(hazard_id: int, action: str):
    from gridmap.hazards.service import HazardError, apply_action

    session = get_session()
    body = json_body(required=False)
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    if "passed" in body:
        data["passed"] = body["passed"]
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise APIError("version must be a whole number", 400, field="version")
    try:
        apply_action(session, hazard_id, action, current_actor(), comment=body.get("comment"), data=data,
                     expected_version=version)
        session.commit()
    except HazardError as e:
        _fail(session, e)
    return jsonify(_one(session, hazard_id))


def _version(body: dict):
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise APIError("version must be a whole number", 400, field="version")
    return version


@bp.post("/<int:hazard_id>/<any(assign, extend, supervise):action>")
@login_required
def manage(hazard_id: int, action: str):
    from gridmap.hazards import actions
    from gridmap.hazards.service import HazardError

    session = get_session()
    body = json_body(required=False)
    version = _version(body)
    try:
        if action == "assign":
            actions.assign_unit(session, hazard_id, current_actor(), unit=body.get("unit"), person=body.get("person"),
                                comment=body.get("comment") if isinstance(body.get("comment"), str) else None,
                                expected_version=version)
        elif action == "extend":
            actions.extend(session, hazard_id, current_actor(), deadline=body.get("deadline"),
                           reason=body.get("reason"), expected_version=version)
        else:
            actions.supervise(session, hazard_id, current_actor(), comment=body.get("comment"),
                              expected_version=version)
        session.commit()
    except HazardError as e:
        _fail(session, e)
    return jsonify(_one(session, hazard_id))


def _analysis(fn):
    from gridmap.hazards.service import HazardError

    unknown = sorted(set(request.args) - {"group", "from", "to", "area"})
    if unknown:
        raise APIError(f"unknown parameter {unknown[0]!r}; this endpoint takes group, from, to, area",
                       field=unknown[0])
    session = get_session()
    try:
        return jsonify(fn(session, current_actor(), group_by=(request.args.get("group") or "none").strip(),
                          date_from=request.args.get("from"), date_to=request.args.get("to"),
                          area=request.args.get("area") or None))
    except HazardError as e:
        _fail(session, e)


@bp.get("/indicators")
@login_required
def indicators():
    from gridmap.hazards.indicators import hazard_indicators

    return _analysis(hazard_indicators)


@bp.get("/compliance")
@login_required
def compliance():
    from gridmap.hazards.indicators import inspection_compliance

    return _analysis(inspection_compliance)


@bp.post("/<int:hazard_id>/cases")
@login_required
def link(hazard_id: int):
    from gridmap.hazards.service import HazardError, link_case

    session = get_session()
    body = json_body(required=False)
    cid = body.get("case_id")
    if isinstance(cid, bool) or not isinstance(cid, int) or not 1 <= cid <= MAX_ID:
        raise APIError("case_id must be a case id (a whole number)", 400, field="case_id")
    try:
        link_case(session, hazard_id, cid, current_actor(), relation=str(body.get("relation") or "related")[:20])
        session.commit()
    except HazardError as e:
        _fail(session, e)
    return jsonify(_one(session, hazard_id))


@bp.post("/<int:hazard_id>/schedules")
@login_required
def schedule(hazard_id: int):
    from gridmap.hazards.inspections import create_schedule
    from gridmap.hazards.service import HazardError

    session = get_session()
    body = json_body(required=False)
    try:
        s = create_schedule(session, current_actor(), hazard_id=hazard_id, interval_days=body.get("interval_days"),
                            start_date=body.get("start_date"), end_date=body.get("end_date"),
                            title=body.get("title"))
        session.commit()
    except HazardError as e:
        _fail(session, e)
    return jsonify({"id": s.id, "hazard_id": s.hazard_id, "title": s.title, "interval_days": s.interval_days,
                    "start_date": s.start_date.isoformat(),
                    "end_date": s.end_date.isoformat() if s.end_date else None}), 201


@bp.get("/types")
@login_required
def types():
    from gridmap.hazards.service import types_list

    session = get_session()
    out = types_list(session)
    session.commit()
    return jsonify({"types": out})


@bp.get("/inspections")
@login_required
def inspections():
    from gridmap.hazards.inspections import list_tasks
    from gridmap.hazards.service import HazardError

    unknown = sorted(set(request.args) - {"due", "done", "area", "limit"})
    if unknown:
        raise APIError(f"unknown parameter {unknown[0]!r}; this endpoint takes due, done, area, limit",
                       field=unknown[0])

    def flag(name):
        raw = (request.args.get(name) or "").strip().lower()
        if raw == "":
            return None
        if raw not in ("1", "0", "true", "false"):
            raise APIError(f"parameter {name!r} must be 1 or 0", field=name)
        return raw in ("1", "true")

    session = get_session()
    try:
        tasks = list_tasks(session, current_actor(), due_only=bool(flag("due")), done=flag("done"),
                           area_code=request.args.get("area") or None, limit=_int_arg("limit", 500, 1, 5000))
    except HazardError as e:
        _fail(session, e)
    return jsonify({"count": len(tasks), "items": tasks})


@bp.post("/inspections/<int:task_id>/done")
@login_required
def task_done(task_id: int):
    from gridmap.hazards.inspections import complete_task
    from gridmap.hazards.service import HazardError

    session = get_session()
    body = json_body(required=False)
    try:
        t = complete_task(session, task_id, current_actor(), result=str(body.get("result") or ""),
                          note=body.get("note"))
        session.commit()
    except HazardError as e:
        _fail(session, e)
    return jsonify({"id": t.id, "done_at": t.done_at.isoformat(), "result": t.result, "note": t.note})


# ----------------------------------------------------------------------------- map layer

def hazards_geojson(session, actor, bbox, *, filters: dict | None = None, limit: int = DEFAULT_GEO) -> str:
    """Hazards meeting the bbox (through the spatial index), as GeoJSON text, at most ``limit``."""
    from gridmap.hazards.models import GRADE_ZH, STATUS_ZH, Hazard, HazardType
    from gridmap.hazards.service import filter_clauses, overdue_clause
    from gridmap.db import utcnow
    from gridmap.web.geo_api import _as_geojson, _bbox_clause, _feature, _feature_collection

    now = utcnow()
    where = filter_clauses(session, actor, filters or {}, now=now)
    where.append(_bbox_clause(session, Hazard.geom, Hazard.id, "hazards", bbox, exact=True))
    q = (select(Hazard.id, Hazard.number, Hazard.title, Hazard.grade, Hazard.status, Hazard.geom_kind,
                HazardType.code.label("type"), HazardType.name.label("type_name"), Hazard.rectify_deadline,
                Hazard.supervised, Hazard.lon, Hazard.lat,
                overdue_clause(now).label("overdue"), _as_geojson(session, Hazard.geom).label("gj"))
         .join(HazardType, HazardType.id == Hazard.type_id)
         .where(*where).order_by(Hazard.found_at.desc(), Hazard.id.desc()).limit(limit + 1))
    rows = session.execute(q).all()
    truncated = len(rows) > limit
    total = None
    if truncated:
        total = session.scalar(select(func.count(Hazard.id)).where(*where))
    feats = []
    for r in rows[:limit]:
        props = {"id": r.id, "number": r.number, "title": r.title, "type": r.type, "type_name": r.type_name,
                 "grade": r.grade, "grade_name": GRADE_ZH[r.grade], "status": r.status,
                 "status_name": STATUS_ZH[r.status], "kind": r.geom_kind, "overdue": bool(r.overdue),
                 "rectify_deadline": r.rectify_deadline.isoformat() if r.rectify_deadline else None,
                 "supervised": bool(r.supervised), "lon": r.lon, "lat": r.lat}
        feats.append(_feature(r.id, props, r.gj))
    return _feature_collection(feats, count=len(feats), truncated=truncated, limit=limit, total=total)


@bp.get("/geo")
@login_required
def geo():
    from gridmap.hazards.service import FILTER_KEYS, HazardError
    from gridmap.web.geo_api import _json_response, parse_bbox

    filters = _filters(tuple(k for k in FILTER_KEYS if k != "bbox") + ("bbox", "limit", "z"))
    bbox = parse_bbox(request.args.get("bbox"))
    filters.pop("bbox", None)
    limit = _int_arg("limit", DEFAULT_GEO, 1, MAX_GEO)
    session = get_session()
    try:
        body = hazards_geojson(session, current_actor(), bbox, filters=filters, limit=limit)
    except HazardError as e:
        _fail(session, e)
    return _json_response(body)


__all__ = ["bp", "hazards_geojson"]
