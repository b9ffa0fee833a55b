"""JSON API for redrawing boundaries (``/api/v1/boundaries…``): thin views over drafts, redraw, balance.

Owns: parsing requests and shaping answers. Every view needs a login; the services decide who may
do what (street, district, city, admin draft within their scope; district, city, admin publish or
reject). Errors are JSON ``{"error", …}``: malformed input or a refused drawing 400 (with
``problems`` as GeoJSON where there is a place to show), not allowed 403, unknown draft 404, a
conflict 409 (with ``differences``), a draft whose result breaks a rule 422 (with ``problems``).

  POST /api/v1/boundaries/drafts                  {"operation", …, "draft_id"?, "version"?}: 201 (new
                                                  draft) or 200 (added to draft_id), the draft with problems
  GET  /api/v1/boundaries/drafts                  ?status=
  GET  /api/v1/boundaries/drafts/<id>             the draft, its impact (with GeoJSON) and problems (GeoJSON)
  POST /api/v1/boundaries/drafts/<id>/submit      {"version"?}
  POST /api/v1/boundaries/drafts/<id>/publish     {"reason", "version"?}
  POST /api/v1/boundaries/drafts/<id>/reject      {"reason", "version"?}
  GET  /api/v1/boundaries/diff?from=&to=&level=
  GET  /api/v1/boundaries/balance?community=|street=&target_min=&target_max=&propose=N&seed=

Operations and their fields (geometry as GeoJSON geometry/Feature, or WKT):
  split {cell, line, names?} · merge {cells, name?} · move_edge {cells: [a, b], line} ·
  reshape {cell, polygon} · create_cell {community, polygon, name?, code?} · retire_cell {cell, into?} ·
  transfer {polygon, to} · create_community {street, name, polygon, code?, kind?} ·
  retire_community {community, into} · replace_cells {community, features: FeatureCollection} ·
  balance {community, n?, seed?}
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, jsonify, request

from gridmap import get_session, redraw
from gridmap.db import MAX_ID, utcnow
from gridmap.redraw import balance
from gridmap.redraw.balance import balance_report, propose_for_community
from gridmap.redraw.checks import check_state
from gridmap.redraw.diff import diff
from gridmap.redraw.impact import draft_impact
from gridmap.redraw.models import DRAFT_ROLES, PUBLISH_ROLES
from gridmap.redraw.problems import DraftError, problems_geojson
from gridmap.redraw.publish import publish_draft
from gridmap.redraw.state import DraftState
from gridmap.redraw.workflow import (
    draft_problems,
    draft_summary,
    list_drafts,
    load_draft,
    reject_draft,
    submit_draft,
    visible_draft,
)
from gridmap.web.auth import current_actor, login_required
from gridmap.timebounds import OutOfRange, parse_instant
from gridmap.web.errors import APIError
from gridmap.web.jsonbody import json_body
from gridmap.web.params import int_arg

bp = Blueprint("boundaries_api", __name__, url_prefix="/api/v1/boundaries")


def _body() -> dict:
    return json_body()


def _opts() -> dict:
    return {"tolerance_m": current_app.config.get("GRIDMAP_TOLERANCE_M", 0.5),
            "code_format": current_app.config.get("GRIDMAP_CELL_CODE_FORMAT")}


def _api_error(e) -> APIError:

    extra = {}
    if getattr(e, "problems", None):
        extra["problems"] = problems_geojson(e.problems)
    if getattr(e, "differences", None):
        extra["differences"] = e.differences
    return APIError(str(e), getattr(e, "status", 400), **extra)


def _req(data: dict, name: str, kind=str):
    v = data.get(name)
    if v is None or (isinstance(v, str) and not v.strip()):
        raise APIError(f"missing field {name!r}", 400, field=name)
    if kind is list and not isinstance(v, list):
        raise APIError(f"field {name!r} must be a list", 400, field=name)
    if kind is str and not isinstance(v, str):
        raise APIError(f"field {name!r} must be a string", 400, field=name)
    return v


def _int(data: dict, name: str) -> int | None:
    v = data.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_ID:
        raise APIError(f"field {name!r} must be a whole number from 0 to {MAX_ID}", 400, field=name)
    return v


def _features(fc) -> list[dict]:
    if not isinstance(fc, dict) or fc.get("type") != "FeatureCollection":
        raise APIError("field 'features' must be a GeoJSON FeatureCollection", 400, field="features")
    feats = fc.get("features")
    if not isinstance(feats, list):
        raise APIError("field 'features' must be a FeatureCollection with a list of features", 400, field="features")
    out = []
    for i, f in enumerate(feats):
        if not isinstance(f, dict) or f.get("type") != "Feature":
            raise APIError(f"features[{i}] is not a GeoJSON Feature", 400, field=f"features[{i}]")
        props = f.get("properties") or {}
        if not isinstance(props, dict):
            raise APIError(f"features[{i}].properties must be an object", 400, field=f"features[{i}].properties")
        if not isinstance(f.get("geometry"), (dict, str)):
            raise APIError(f"features[{i}] has no geometry", 400, field=f"features[{i}].geometry")
        for key in ("households", "population"):
            v = props.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10**7):
                raise APIError(f"features[{i}].properties.{key} must be a whole number from 0 to 10000000",
                               400, field=f"features[{i}].properties.{key}")
        out.append({"code": props.get("code"), "name": props.get("name"), "kind": props.get("kind"),
                    "households": props.get("households"), "population": props.get("population"),
                    "geometry": f.get("geometry")})
    if not out:
        raise APIError("the FeatureCollection has no features", 400, field="features")
    return out


def _run(session, actor, op: str, data: dict):

    kw = dict(draft_id=_int(data, "draft_id"), expected_version=_int(data, "version"), **_opts())
    if data.get("title"):
        kw["title"] = str(data["title"])
    if op == "split":
        return redraw.split_cell(session, actor, _req(data, "cell"), _req(data, "line", object),
                                 names=data.get("names"), **kw)
    if op == "merge":
        return redraw.merge_cells(session, actor, _req(data, "cells", list), name=data.get("name"), **kw)
    if op == "move_edge":
        cells = _req(data, "cells", list)
        if len(cells) != 2:
            raise APIError("move_edge needs 'cells': [two neighbouring cells]", 400, field="cells")
        return redraw.move_edge(session, actor, cells[0], cells[1], _req(data, "line", object), **kw)
    if op == "reshape":
        return redraw.reshape_cell(session, actor, _req(data, "cell"), _req(data, "polygon", object), **kw)
    if op == "create_cell":
        return redraw.create_cell(session, actor, _req(data, "community"), _req(data, "polygon", object),
                                  name=data.get("name"), code=data.get("code"), **kw)
    if op == "retire_cell":
        return redraw.retire_cell(session, actor, _req(data, "cell"), into=data.get("into"), **kw)
    if op == "transfer":
        return redraw.transfer_area(session, actor, _req(data, "polygon", object), _req(data, "to"), **kw)
    if op == "create_community":
        return redraw.create_community(session, actor, _req(data, "street"), _req(data, "name"),
                                       _req(data, "polygon", object), code=data.get("code"),
                                       kind=data.get("kind") or "residents", **kw)
    if op == "retire_community":
        return redraw.retire_community(session, actor, _req(data, "community"), _req(data, "into"), **kw)
    if op == "replace_cells":
        return redraw.replace_cells(session, actor, _req(data, "community"), _features(data.get("features")),
                                    match_by_overlap=bool(data.get("match_by_overlap")), **kw)
    if op == "balance":
        comm = _req(data, "community")
        balance.require_advisor_access(session, actor, community=comm)  # before the optimiser runs
        prop = balance.propose_for_community(session, comm, _int(data, "n"), seed=_int(data, "seed") or 0,
                                             target=_band(data))
        return balance.proposal_to_draft(session, actor, comm, prop, draft_id=kw["draft_id"], **_opts())
    raise APIError(f"unknown operation {op!r}: use split, merge, move_edge, reshape, create_cell, retire_cell, "
                   f"transfer, create_community, retire_community, replace_cells or balance", 400, field="operation")


def _band(src) -> tuple[int, int]:
    get = src.get
    lo = get("target_min") if get("target_min") not in (None, "") else current_app.config.get("GRIDMAP_BALANCE_MIN",
                                                                                            300)
    hi = get("target_max") if get("target_max") not in (None, "") else current_app.config.get("GRIDMAP_BALANCE_MAX",
                                                                                            500)
    try:
        lo, hi = int(lo), int(hi)
    except (TypeError, ValueError):
        raise APIError("target_min and target_max must be whole numbers", 400, field="target_min") from None
    if not (1 <= lo <= balance.MAX_TARGET and 1 <= hi <= balance.MAX_TARGET):
        raise APIError(f"target_min and target_max must be from 1 to {balance.MAX_TARGET}", 400, field="target_min")
    return lo, hi


def _detail(session, d, *, impact: bool = True) -> dict:

    out = draft_summary(session, d)
    if d.status in ("draft", "submitted"):
        state = DraftState(session, d)
        problems = check_state(state, tolerance_m=current_app.config.get("GRIDMAP_TOLERANCE_M", 0.5))
        if impact:
            out["impact"] = draft_impact(session, d, state=state, snap_m=current_app.config.get("GRIDMAP_SNAP_M", 100.0))
    else:
        problems = draft_problems(d)
    out["problems"] = problems_geojson(problems)
    out["errors"] = sum(p.severity == "error" for p in problems)
    out["warnings"] = sum(p.severity == "warning" for p in problems)
    return out


@bp.post("/drafts")
@login_required
def create_or_extend():

    data = _body()
    op = _req(data, "operation")
    s = get_session()
    try:
        d = _run(s, current_actor(), op, data)
        out = draft_summary(s, d)
        probs = draft_problems(d)
        out["problems"] = problems_geojson(probs)
        s.commit()
    except DraftError as e:
        s.rollback()
        raise _api_error(e) from None
    except Exception:
        s.rollback()
        raise
    return jsonify(out), (200 if data.get("draft_id") else 201)


@bp.get("/drafts")
@login_required
def list_():

    status = request.args.get("status") or None
    if status and status not in ("draft", "submitted", "published", "rejected"):
        raise APIError("status must be draft, submitted, published or rejected", 400)
    s = get_session()
    return jsonify({"drafts": [draft_summary(s, d) for d in list_drafts(s, current_actor(), status)]})


@bp.get("/drafts/<int:draft_id>")
@login_required
def show(draft_id: int):

    s = get_session()
    try:
        d = visible_draft(s, current_actor(), draft_id)
        return jsonify(_detail(s, d))
    except DraftError as e:
        raise _api_error(e) from None


def _transition(draft_id: int, fn, **kw):

    s = get_session()
    try:
        res = fn(s, draft_id, current_actor(), **kw)
        s.commit()
    except DraftError as e:
        s.rollback()
        raise _api_error(e) from None
    except Exception:
        s.rollback()
        raise
    d = load_draft(s, draft_id)
    out = _detail(s, d, impact=False)
    if hasattr(res, "as_dict") and not hasattr(res, "__table__"):
        out["published"] = res.as_dict()
    return jsonify(out)


def _gate(draft_id: int, roles) -> None:
    """Who may act on this draft, before the body is read: 404 for a draft the caller cannot see
    (exactly like a missing one), then 403 for a role that may not. Validation never comes first."""
    act = current_actor()
    try:
        visible_draft(get_session(), act, draft_id)  # first: a draft one cannot see answers as missing
    except DraftError as e:
        raise _api_error(e) from None
    if act.role not in roles:
        raise APIError("your role may not do this", 403)


@bp.post("/drafts/<int:draft_id>/submit")
@login_required
def submit(draft_id: int):
    _gate(draft_id, DRAFT_ROLES)
    data = json_body(required=False)
    return _transition(draft_id, submit_draft, expected_version=_int(data, "version"))


@bp.post("/drafts/<int:draft_id>/publish")
@login_required
def publish(draft_id: int):
    _gate(draft_id, PUBLISH_ROLES)
    data = _body()
    reason = _req(data, "reason")
    return _transition(draft_id, publish_draft, reason=reason, expected_version=_int(data, "version"),
                       tolerance_m=current_app.config.get("GRIDMAP_TOLERANCE_M", 0.5),
                       snap_m=current_app.config.get("GRIDMAP_SNAP_M", 100.0))


@bp.post("/drafts/<int:draft_id>/reject")
@login_required
def reject(draft_id: int):
    _gate(draft_id, PUBLISH_ROLES)
    data = _body()
    return _transition(draft_id, reject_draft, reason=_req(data, "reason"), expected_version=_int(data, "version"))


def _moment(name: str, default=None) -> dt.datetime:
    from zoneinfo import ZoneInfo

    raw = request.args.get(name)
    if not raw:
        if default is not None:
            return default
        raise APIError(f"missing parameter {name!r} (YYYY-MM-DD or an ISO time)", 400, field=name)
    try:
        t = parse_instant(raw, name)
    except OutOfRange as e:
        raise APIError(str(e), 400, field=name) from None
    except ValueError:
        raise APIError(f"parameter {name!r}: {raw[:40]!r} is not a date (YYYY-MM-DD) or ISO time", 400,
                       field=name) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=ZoneInfo(current_app.config.get("GRIDMAP_TIMEZONE", "Asia/Shanghai")))
    return t.astimezone(dt.timezone.utc)


@bp.get("/diff")
@login_required
def diff_view():

    level = request.args.get("level") or None
    if level and level not in ("district", "street", "community", "cell"):
        raise APIError("level must be district, street, community or cell", 400, field="level")
    try:
        return jsonify(diff(get_session(), _moment("from"), _moment("to", utcnow()), level=level,
                            actor=current_actor()))
    except DraftError as e:
        raise _api_error(e) from None


@bp.get("/balance")
@login_required
def balance_view():

    community = request.args.get("community") or None
    street = request.args.get("street") or None
    if not community and not street:
        raise APIError("give 'community' (or 'street')", 400, field="community")
    s = get_session()
    try:
        balance.require_advisor_access(s, current_actor(), community=community, street=street)
    except DraftError as e:
        raise _api_error(e) from None
    band = _band(request.args)
    # bounded before anything runs: the optimiser's cost grows with the number of cells
    n_cells = int_arg("propose", None, 0, balance.MAX_PROPOSE_CELLS)
    seed = int_arg("seed", 0, 0, balance.MAX_SEED)
    try:
        out = balance_report(s, community=community, street=street, target=band)
        if n_cells is not None and community:
            out["proposal"] = propose_for_community(s, community, n_cells or None, seed=seed, target=band).as_dict()
    except DraftError as e:
        raise _api_error(e) from None
    return jsonify(out)
