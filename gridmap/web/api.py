"""JSON API, version 1: thin views that parse parameters and call the services (``/locate``), and
``/openapi.json``, the description of the whole HTTP API (built by ``gridmap.web.openapi``)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from gridmap import get_session
from gridmap.assign.locate import locate_one
from gridmap.geo.coords import CRSError, parse_crs
from gridmap.web.auth import login_required
from gridmap.web.params import float_arg
from gridmap.web.errors import APIError

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/locate")
@login_required
def locate():
    """GET /api/v1/locate?lon=&lat=&crs=&snap_m= → the cell, its parents, snapped, distance_m and
    ``responsible``: the worker on duty (code, name, masked phone) and the level of the answer
    (primary, substitute, fallback)."""
    crs_name = request.args.get("crs", "wgs84")
    try:
        crs = parse_crs(crs_name)
    except CRSError as e:
        raise APIError(str(e)) from None
    geographic = crs.kind in ("wgs84", "cgcs2000", "gcj02", "bd09")
    x = float_arg("lon", lo=-180 if geographic else None, hi=180 if geographic else None)
    y = float_arg("lat", lo=-90 if geographic else None, hi=90 if geographic else None)
    snap = float_arg("snap_m", required=False, default=current_app.config["GRIDMAP_SNAP_M"], lo=0, hi=100000)
    return jsonify(locate_one(get_session(), x, y, crs, snap))


@bp.get("/openapi.json")
def openapi():
    """GET /api/v1/openapi.json → the OpenAPI 3 description of every JSON route (gridmap.web.openapi)."""
    from gridmap.web.openapi import openapi_document

    return jsonify(openapi_document(current_app))
