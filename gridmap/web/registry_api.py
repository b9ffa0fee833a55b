"""JSON API of the base registry (``/api/v1/registry…``): thin views over gridmap.registry.service.

Owns: parsing requests, the scope of the caller over registry tables (the rules of
gridmap.accounts.scope: a grid worker her cells, community / street / district staff their area,
city and admin everything, a department nothing) and the answers. Records are masked; a record
out of scope answers 404 exactly like a missing one.

  GET  /api/v1/registry/summary?level=cell|community|street|district
  GET  /api/v1/registry/<kind>?cell=&community=&q=&tag=&household=&building=&page=&per_page=   (kind: addresses,
       buildings, households, persons, organisations)
  GET  /api/v1/registry/<kind>/<id>
  POST /api/v1/registry/<kind>/<id>/reveal   {"purpose"}: identity number and phone whole (permitted roles; logged)
  GET  /api/v1/registry/<kind>/export?purpose=&whole=1   CSV (permitted roles for personal data; logged)
  GET  /api/v1/registry/buildings/geo?bbox=minlon,minlat,maxlon,maxlat   GeoJSON points of buildings in view
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import literal, select

from gridmap import get_session
from gridmap.boundaries.models import Area
from gridmap.web.auth import current_actor, current_user, login_required
from gridmap.web.errors import APIError
from gridmap.web.params import int_arg

bp = Blueprint("registry_api", __name__, url_prefix="/api/v1/registry")
KINDS = ("addresses", "buildings", "households", "persons", "organisations")
MAX_GEO = 2000


def registry_scope(session, actor):
    """The caller's scope over any registry table (its area columns), by gridmap.accounts.scope."""
    from gridmap.accounts.scope import scope_filter

    return lambda m: scope_filter(session, actor, cell=m.cell_id, community=m.community_id, street=m.street_id,
                                  district=m.district_id, assignee_worker=literal(-1))


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise APIError(f"no such register {kind[:30]!r}: one of {', '.join(KINDS)}", 404)
    return kind


def _area_arg(session, name: str, level: str) -> int | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    aid = session.scalar(select(Area.id).where(Area.code == raw[:32], Area.level == level))
    if aid is None:
        raise APIError(f"parameter {name!r}: no {level} with code {raw[:32]!r}", field=name)
    return aid


def _text_arg(name: str, max_len: int = 100) -> str | None:
    raw = (request.args.get(name) or "").strip()
    if len(raw) > max_len:
        raise APIError(f"parameter {name!r} is longer than {max_len} characters", field=name)
    return raw or None


def _keys():
    from gridmap.registry.pii import keys_from_config

    return keys_from_config(current_app.config, current_app.instance_path)


def _registry_error(e) -> APIError:
    return APIError(e.message, e.status, field=e.field)


@bp.get("/summary")
@login_required
def summary():
    from gridmap.accounts.scope import area_ids_in_scope
    from gridmap.registry.service import RegistryError, summary as _summary

    session = get_session()
    actor = current_actor()
    try:
        res = _summary(session, (request.args.get("level") or "cell").strip(), scope=registry_scope(session, actor),
                       area_ids=area_ids_in_scope(session, actor))
    except RegistryError as e:
        raise _registry_error(e) from None
    return jsonify(res)


@bp.get("/buildings/geo")
@login_required
def buildings_geo():
    from gridmap.registry.models import Address, Building

    session = get_session()
    parts = (request.args.get("bbox") or "").split(",")
    try:
        x0, y0, x1, y1 = (float(v) for v in parts)
    except ValueError:
        raise APIError("parameter 'bbox' must be minlon,minlat,maxlon,maxlat", field="bbox") from None
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise APIError("parameter 'bbox' must be minlon,minlat,maxlon,maxlat within -180..180 / -90..90", field="bbox")
    scope = registry_scope(session, current_actor())
    rows = session.execute(
        select(Building.id, Building.code, Building.name, Building.floors, Address.address, Address.lon, Address.lat)
        .join(Address, Address.id == Building.address_id)
        .where(scope(Building), Address.lon >= x0, Address.lon <= x1, Address.lat >= y0, Address.lat <= y1)
        .order_by(Building.id).limit(MAX_GEO + 1)).all()
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
              "properties": {"id": r.id, "code": r.code, "name": r.name, "floors": r.floors, "address": r.address}}
             for r in rows[:MAX_GEO]]
    return jsonify({"type": "FeatureCollection", "features": feats, "truncated": len(rows) > MAX_GEO})


@bp.get("/<kind>")
@login_required
def list_(kind: str):
    from gridmap.registry.service import list_records

    kind = _kind(kind)
    session = get_session()
    page = int_arg("page", 1, 1, 100000)
    per_page = int_arg("per_page", 50, 1, 200)
    rows, total = list_records(
        session, kind, scope=registry_scope(session, current_actor()), cell_id=_area_arg(session, "cell", "cell"),
        community_id=_area_arg(session, "community", "community"), q=_text_arg("q"), tag=_text_arg("tag", 40),
        household_id=int_arg("household", None, 1, 2**31 - 1), building_id=int_arg("building", None, 1, 2**31 - 1),
        page=page, per_page=per_page)
    return jsonify({"kind": kind, "total": total, "page": page, "per_page": per_page, "items": rows})


@bp.get("/<kind>/export")
@login_required
def export(kind: str):
    from gridmap.registry.service import RegistryError, export_text

    kind = _kind(kind)
    session = get_session()
    user = current_user()
    whole = request.args.get("whole") in ("1", "true")
    try:
        text, n = export_text(session, kind, _keys() if whole else None, role=user.role, actor_name=user.username,
                              user_id=user.id, purpose=_text_arg("purpose", 500) or "", whole=whole,
                              scope=registry_scope(session, current_actor()))
        session.commit()
    except RegistryError as e:
        session.rollback()
        raise _registry_error(e) from None
    resp = Response("\ufeff" + text, mimetype="text/csv")
    resp.headers["Content-Disposition"] = f"attachment; filename=registry-{kind}.csv"
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["X-Rows"] = str(n)
    return resp


@bp.get("/<kind>/<int:record_id>")
@login_required
def detail(kind: str, record_id: int):
    from gridmap.registry.service import get_record

    kind = _kind(kind)
    session = get_session()
    rec = get_record(session, kind, record_id, scope=registry_scope(session, current_actor()))
    if rec is None:
        raise APIError(f"no {kind[:-1]} {record_id}", 404)
    return jsonify(rec)


@bp.post("/<kind>/<int:record_id>/reveal")
@login_required
def reveal(kind: str, record_id: int):
    from gridmap.registry.service import RegistryError, reveal as _reveal

    kind = _kind(kind)
    session = get_session()
    user = current_user()
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise APIError("send a JSON object {\"purpose\": …}", field="purpose")
    purpose = data.get("purpose")
    if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > 500:
        raise APIError("purpose is required: what the whole identity number is needed for (≤ 500 characters)",
                       field="purpose")
    try:
        rec = _reveal(session, kind, record_id, _keys(), role=user.role, actor_name=user.username, user_id=user.id,
                      purpose=purpose, scope=registry_scope(session, current_actor()))
        if rec is None:
            raise APIError(f"no {kind[:-1]} {record_id}", 404)
        session.commit()
    except RegistryError as e:
        session.rollback()
        raise _registry_error(e) from None
    resp = jsonify(rec)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
