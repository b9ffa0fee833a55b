"""JSON API for cases (``/api/v1/cases…``): thin views over intake, queries, lifecycle and photos.

Owns: parsing requests and shaping answers. Every view needs a login (Bearer token); reads go
through ``queries`` and are limited to the caller's scope, and a case outside the scope answers
404 (not 403), so case ids cannot be probed. Errors are JSON ``{"error", "field"?}``: malformed
input 400, an unacceptable report 422, a state or version conflict 409 (with the current version),
an action this user may not take 403.

  POST /api/v1/cases                       create (201: the case with routing, reason, possible_duplicates)
  GET  /api/v1/cases                       list: cell, community, street, status, category, bbox, from, to,
                                           overdue, source, assignee, page, per_page (≤ 200)
  GET  /api/v1/cases/<id>                  one case with its history and photos
  POST /api/v1/cases/<id>/actions          {"action", "comment", "version"?, "lon"?, "lat"?, "data"?}
  POST /api/v1/cases/<id>/place            {"lon", "lat", "crs"?, "comment"?, "version"?} (manual placement)
  POST /api/v1/cases/<id>/photos           multipart, field "photo"
  GET  /api/v1/cases/<id>/photos/<pid>     the stored image

Every POST accepts an ``Idempotency-Key`` header (or a ``client_id`` field in a JSON body): a replay
answers the first answer and changes nothing (gridmap.web.idempotency).
"""
from __future__ import annotations

import math

from flask import Blueprint, current_app, jsonify, request, send_file

from gridmap import get_session
from gridmap.web.auth import current_actor, login_required
from gridmap.web.errors import APIError
from gridmap.web.idempotency import idempotent
from gridmap.web.jsonbody import json_body
from gridmap.web.params import int_arg as _int_arg

bp = Blueprint("cases_api", __name__, url_prefix="/api/v1")

#: sources an API client may claim (open311 and import have their own doors)
API_SOURCES = ("patrol", "resident", "hotline", "video", "upper", "department")


def _default_source(actor) -> str:
    return {"worker": "patrol", "head": "patrol", "department": "department"}.get(actor.role, "hotline")


def _case_or_404(session, actor, case_id: int):
    from gridmap.incidents.queries import get_case

    case = get_case(session, actor, case_id)
    if case is None:
        raise APIError(f"no case {case_id}", 404)
    return case


def _detail(session, case, actor) -> dict:
    from sqlalchemy import select

    from gridmap.incidents.models import CasePhoto
    from gridmap.incidents.photos import photo_dict
    from gridmap.incidents.queries import case_dict, may_see_personal

    out = case_dict(case, with_history=True, show_personal=may_see_personal(actor, case), actor=actor)
    out["photos"] = [photo_dict(p) for p in session.scalars(
        select(CasePhoto).where(CasePhoto.case_id == case.id).order_by(CasePhoto.id))]
    return out


# ----------------------------------------------------------------------------- create, list, read

def create_from_request(session, data: dict, actor, *, source: str) -> tuple[dict, int]:
    """Create a case and the 201 answer (shared with tests that do not go through HTTP)."""
    from gridmap.accounts.scope import case_filter
    from gridmap.incidents.duplicates import suggest_duplicates
    from gridmap.incidents.intake import IntakeError, create_case
    from gridmap.incidents.queries import case_dict, may_see_personal

    try:
        case = create_case(session, data, actor, source=source,
                           auto_dispatch=current_app.config["GRIDMAP_AUTO_DISPATCH"])
        dups = suggest_duplicates(session, category_id=case.category_id, lon=case.lon, lat=case.lat,
                                  at=case.reported_at, exclude_id=case.id, scope=case_filter(session, actor))
        session.commit()
    except IntakeError as e:
        session.rollback()
        raise APIError(e.message, e.status, field=e.field) from None
    except Exception:
        session.rollback()
        raise
    out = case_dict(case, show_personal=may_see_personal(actor, case), actor=actor)
    out["possible_duplicates"] = [
        {"id": c.id, "number": c.number, "status": c.status, "distance_m": round(d, 1),
         "reported_at": c.reported_at.isoformat(), "description": c.description[:200]}
        for c, d in dups]
    return out, 201


@bp.post("/cases")
@login_required
@idempotent
def create():
    actor = current_actor()
    data = json_body()
    source = data.pop("source", None) or _default_source(actor)
    if source not in API_SOURCES:
        raise APIError(f"source must be one of {', '.join(API_SOURCES)}, got {str(source)[:20]!r}", field="source")
    out, status = create_from_request(get_session(), data, actor, source=source)
    resp = jsonify(out)
    resp.status_code = status
    resp.headers["Location"] = f"/api/v1/cases/{out['id']}"
    return resp


@bp.get("/cases")
@login_required
def list_():
    from gridmap.incidents.queries import FILTER_KEYS, QueryError, case_dicts, list_cases

    actor = current_actor()
    session = get_session()
    page = _int_arg("page", 1, 1, 10**6)
    per_page = _int_arg("per_page", 50, 1, 200)
    unknown = sorted(set(request.args) - set(FILTER_KEYS) - {"page", "per_page"})
    if unknown:
        raise APIError(f"unknown parameter {unknown[0]!r}; filters are {', '.join(FILTER_KEYS)}, page, per_page",
                       field=unknown[0])
    filters = {k: request.args.get(k) for k in FILTER_KEYS if request.args.get(k) not in (None, "")}
    try:
        items, total = list_cases(session, actor, filters=filters, page=page, per_page=per_page)
    except QueryError as e:
        raise APIError(e.message, 400, field=e.field) from None
    return jsonify({"items": case_dicts(session, items, actor), "page": page, "per_page": per_page, "total": total})


@bp.get("/cases/<int:case_id>")
@login_required
def detail(case_id: int):
    actor = current_actor()
    session = get_session()
    return jsonify(_detail(session, _case_or_404(session, actor, case_id), actor))


# ----------------------------------------------------------------------------- actions, placement

def _opt_number(data: dict, key: str) -> float | None:
    v = data.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise APIError(f"{key} must be a number", field=key)
    return float(v)


def _opt_version(data: dict) -> int | None:
    v = data.get("version")
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise APIError("version must be a whole number ≥ 1 (the case's version you last saw)", field="version")
    return v


def _opt_comment(data: dict) -> str | None:
    comment = data.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise APIError("comment must be text", field="comment")
    return comment


@bp.post("/cases/<int:case_id>/actions")
@login_required
@idempotent
def action(case_id: int):
    from gridmap.incidents import lifecycle

    actor = current_actor()
    session = get_session()
    data = json_body()
    name = data.get("action")
    if not isinstance(name, str) or not name.strip():
        raise APIError("action is required (e.g. accept, feedback, verify_pass)", field="action")
    comment = _opt_comment(data)
    if comment is not None and len(comment) > 5000:
        raise APIError("comment is longer than 5000 characters", field="comment")
    extra = data.get("data")
    if extra is not None and not isinstance(extra, dict):
        raise APIError("data must be an object", field="data")
    version = _opt_version(data)
    lon, lat = _opt_number(data, "lon"), _opt_number(data, "lat")
    if (lon is None) != (lat is None):
        raise APIError("give both lon and lat, or neither", field="lon" if lon is None else "lat")
    if lon is not None and not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise APIError("lon/lat must be WGS84 within -180..180 / -90..90", field="lon")
    _case_or_404(session, actor, case_id)
    try:
        case = lifecycle.apply_action(session, case_id, name.strip(), actor, comment=comment,
                                      expected_version=version, lon=lon, lat=lat, data=extra)
        if name.strip() == "confirm":  # verified on site: the system files (and dispatches) it now
            from gridmap.incidents.intake import file_after_confirmation

            case = file_after_confirmation(session, case, auto_dispatch=current_app.config["GRIDMAP_AUTO_DISPATCH"])
        session.commit()
    except lifecycle.ConflictError as e:
        session.rollback()
        from gridmap.incidents.models import Case

        current = session.get(Case, case_id)
        raise APIError(str(e), 409, current_version=current.version if current else None,
                       current_status=current.status if current else None) from None
    except lifecycle.TransitionError as e:  # 400 bad input, 403 not this actor, 404, 409 wrong state
        session.rollback()
        raise APIError(str(e), _transition_status(e), field="action") from None
    except Exception:
        session.rollback()
        raise
    return jsonify(_detail(session, case, actor))


def _transition_status(e: Exception) -> int:
    """The HTTP status the life cycle gives the refusal (403 not this actor, 409 wrong state …)."""
    v = getattr(e, "status", None)
    return v if isinstance(v, int) and v in (400, 403, 404, 409) else 409


@bp.post("/cases/<int:case_id>/place")
@login_required
@idempotent
def place(case_id: int):
    from gridmap.incidents.intake import IntakeError, place_case

    actor = current_actor()
    session = get_session()
    data = json_body()
    comment = _opt_comment(data)
    version = _opt_version(data)
    try:
        case = place_case(session, case_id, data.get("lon"), data.get("lat"), data.get("crs"), actor,
                          comment=comment, expected_version=version)
        session.commit()
    except IntakeError as e:
        session.rollback()
        raise APIError(e.message, e.status, field=e.field) from None
    except Exception:
        session.rollback()
        raise
    return jsonify(_detail(session, case, actor))


# ----------------------------------------------------------------------------- photos

@bp.post("/cases/<int:case_id>/photos")
@login_required
@idempotent
def upload_photo(case_id: int):
    from gridmap.incidents.photos import DEFAULT_MAX_BYTES, PhotoError, photo_dict, save_photo

    actor = current_actor()
    session = get_session()
    case = _case_or_404(session, actor, case_id)
    f = request.files.get("photo")
    if f is None:
        raise APIError("send the photo as multipart/form-data in the field 'photo'", field="photo")
    comment = request.form.get("comment") or None
    try:
        photo = save_photo(session, case, f.stream, filename=f.filename, actor=actor,
                           instance_path=current_app.instance_path, comment=comment,
                           max_bytes=int(current_app.config.get("GRIDMAP_PHOTO_MAX_BYTES") or DEFAULT_MAX_BYTES))
        session.commit()
    except PhotoError as e:
        session.rollback()
        raise APIError(e.message, e.status, field=e.field) from None
    except Exception:
        session.rollback()
        raise
    resp = jsonify(photo_dict(photo))
    resp.status_code = 201
    return resp


@bp.get("/cases/<int:case_id>/photos/<int:photo_id>")
@login_required
def get_photo(case_id: int, photo_id: int):
    from sqlalchemy import select

    from gridmap.incidents.models import CasePhoto
    from gridmap.incidents.photos import PhotoError, photo_file

    actor = current_actor()
    session = get_session()
    _case_or_404(session, actor, case_id)
    photo = session.scalar(select(CasePhoto).where(CasePhoto.id == photo_id, CasePhoto.case_id == case_id))
    if photo is None:
        raise APIError(f"no photo {photo_id} on case {case_id}", 404)
    try:
        path = photo_file(photo, current_app.instance_path)
    except PhotoError:
        raise APIError(f"no photo {photo_id} on case {case_id}", 404) from None
    if not path.is_file():
        raise APIError(f"the file of photo {photo_id} is missing", 404)
    resp = send_file(path, mimetype=photo.content_type, download_name=photo.filename, max_age=3600,
                     etag=photo.sha256)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp
