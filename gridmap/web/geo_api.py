"""Map data per visible area (``/api/v1/geo/…``): GeoJSON built in the database, never the whole city.

Owns: the bbox endpoints the map layers (``static/js/gridmap-layers.js``) load on every move,
and the one small function that knows how PostGIS and SpatiaLite filter by bbox on a spatial
index (``_bbox_clause``). Every endpoint needs a login and is limited to the caller's scope:
areas through ``accounts.scope.area_ids_in_scope``, cases through ``accounts.scope.case_filter``
(via ``incidents.queries.filter_clauses``). Answers are capped so a page's weight never grows
with the number of cases: past the cap, cases come back as one feature per cell.

  GET /api/v1/geo/cells?bbox=minlon,minlat,maxlon,maxlat&level=cell|community|street|district&z=
        current areas intersecting the bbox: code, name, level, households, open_cases,
        per_1000_households, label_at (a point inside the area, [lon, lat], where its label goes);
        geometry simplified to about half a pixel at zoom z.
        Optional category/from/to/overdue restrict the counted (open) cases; limit ≤ 5000.
  GET /api/v1/geo/cases?bbox=&status=open|all|s1,s2&category=&from=&to=&overdue=1&limit=
        points (id, number, category, status, urgent, overdue, supervised, title); more than ``limit``
        (default 2000) in the bbox → ``aggregated: true``, one point per cell with counts.
  GET /api/v1/geo/heat?bbox=&… (same filters)  → [[lat, lon, weight], …] on a grid (≤ limit cells)
  GET /api/v1/geo/basemap?bbox=&z=           → the offline vector basemap (GRIDMAP_BASEMAP=vector): land
        (the current district outlines in the bbox, simplified for z) and label points of the
        districts and streets (name, level). Public geography: any logged-in user, not scoped.
  GET /api/v1/geo/extent                     → {"bbox": [minlon, minlat, maxlon, maxlat] | null}, the
        caller's own area (a worker's cells), for a map's initial view
  GET /api/v1/geo/tiles/<z>/<x>/<y>.mvt      → Mapbox vector tile of current cells (PostGIS only)
  GET /tiles/local/<z>/<x>/<y>.png           → basemap tiles from the GRIDMAP_BASEMAP=local:<folder>

Text (titles, names) is returned as JSON data; the layers put it into the page with textContent.
Reporters' personal data never appears here.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os

from flask import Blueprint, current_app, request, send_from_directory
from sqlalchemy import and_, column, false, func, or_, select, table
from sqlalchemy.orm import aliased

from gridmap import get_session
from gridmap.boundaries.models import LEVELS, Area, AreaGeometry
from gridmap.db import utcnow
from gridmap.incidents.models import STATUSES, Case, Category
from gridmap.web.auth import current_actor, login_required
from gridmap.web.errors import APIError
from gridmap.web.params import int_arg as _int_arg

bp = Blueprint("geo_api", __name__, url_prefix="/api/v1/geo")

#: statuses after which a case no longer counts as open (the same set duplicate search uses)
CLOSED_STATUSES = ("rejected", "closed", "evaluated")
OPEN_STATUSES = tuple(s for s in STATUSES if s not in CLOSED_STATUSES)
#: statuses in which the deadline clock runs: past its deadline there, a case is overdue
RUNNING_STATUSES = ("dispatched", "in_progress")

MAX_CELLS = 5000
DEFAULT_CASES = 2000
MAX_CASES = 5000
MAX_AGGREGATES = 5000
DEFAULT_HEAT = 10000
MAX_HEAT = 20000
#: bins across the larger side of the bbox when aggregating for the heat layer
HEAT_BINS = 256
#: a level's column on cases
_CASE_AREA_COLUMN = {"cell": Case.cell_id, "community": Case.community_id, "street": Case.street_id,
                     "district": Case.district_id}
_COMMON = ("bbox", "z", "limit")
_CASE_FILTERS = ("status", "category", "from", "to", "overdue")


# ----------------------------------------------------------------------------- parameters

def _check_keys(allowed) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise APIError(f"unknown parameter {unknown[0]!r}; this endpoint takes {', '.join(allowed)}",
                       field=unknown[0])


def parse_bbox(raw: str | None) -> tuple[float, float, float, float]:
    """minlon,minlat,maxlon,maxlat in WGS84 → floats; APIError (400) for anything else."""
    if raw is None or not raw.strip():
        raise APIError("missing parameter 'bbox' (minlon,minlat,maxlon,maxlat in WGS84)", field="bbox")
    parts = raw.split(",")
    try:
        if len(parts) != 4:
            raise ValueError
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise APIError(f"bbox must be minlon,minlat,maxlon,maxlat (4 numbers), got {raw[:60]!r}",
                       field="bbox") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise APIError("bbox must hold finite numbers", field="bbox")
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise APIError("bbox must be minlon,minlat,maxlon,maxlat with min < max, lon within -180..180 and "
                       "lat within -90..90", field="bbox")
    return x0, y0, x1, y1




def _case_filters(*, default_status: str = "open", with_status: bool = True) -> dict:
    """The case filters of the query string, in ``incidents.queries`` form (status as a list)."""
    f = {k: request.args.get(k) for k in ("category", "from", "to", "overdue")
         if request.args.get(k) not in (None, "")}
    if with_status:
        status = (request.args.get("status") or default_status).strip()
        if status == "open":
            f["status"] = ",".join(OPEN_STATUSES)
        elif status != "all":
            f["status"] = status
    return f


def _case_where(session, actor, filters: dict) -> list:
    from gridmap.incidents.queries import QueryError, filter_clauses

    try:
        return filter_clauses(session, actor, filters)
    except QueryError as e:
        raise APIError(e.message, 400, field=e.field) from None


def _overdue_expr(now: dt.datetime):
    return or_(Case.overdue.is_(True), and_(Case.deadline_at < now, Case.status.in_(RUNNING_STATUSES)))


# ----------------------------------------------------------------------------- the dialect difference

def _is_postgis(session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _bbox_clause(session, geom_col, id_col, table_name: str, bbox, *, exact: bool = False):
    """Rows whose geometry meets the bbox, found through the spatial index.

    PostGIS: ``geom && ST_MakeEnvelope(…)`` (or ST_Intersects when ``exact``).
    SpatiaLite does not use its R*Tree by itself: the row ids come from the SpatialIndex
    virtual table (the id column is the table's rowid), then ``exact`` adds ST_Intersects.
    """
    x0, y0, x1, y1 = bbox
    if _is_postgis(session):
        env = func.ST_MakeEnvelope(x0, y0, x1, y1, 4326)
        return func.ST_Intersects(geom_col, env) if exact else geom_col.op("&&")(env)
    si = table("SpatialIndex", column("rowid"), column("f_table_name"), column("f_geometry_column"),
               column("search_frame"))
    clause = id_col.in_(select(si.c.rowid).where(
        si.c.f_table_name == table_name, si.c.f_geometry_column == "geom",
        si.c.search_frame == func.BuildMbr(x0, y0, x1, y1, 4326)))
    if exact:
        clause = and_(clause, func.ST_Intersects(geom_col, func.BuildMbr(x0, y0, x1, y1, 4326)) == 1)
    return clause


def _as_geojson(session, geom_expr, digits: int = 6):
    return (func.ST_AsGeoJSON if _is_postgis(session) else func.AsGeoJSON)(geom_expr, digits)


# ----------------------------------------------------------------------------- helpers

def tolerance_deg(z: int | None, bbox) -> float:
    """About half a screen pixel in degrees at zoom ``z`` (256-pixel Web Mercator tiles).

    A Web Mercator pixel spans 360 / (256·2^z) degrees of longitude and cos(lat) times that of
    latitude; without ``z`` the bbox is taken to be ~1,000 pixels wide.
    """
    x0, y0, x1, y1 = bbox
    if z is None:
        return (x1 - x0) / 2048
    lat = math.radians(max(-85.0, min(85.0, (y0 + y1) / 2)))
    return 0.5 * 360.0 / (256 * 2 ** z) * math.cos(lat)


def _scope_ids(session, actor) -> set[int] | None:
    from gridmap.accounts.scope import area_ids_in_scope

    return area_ids_in_scope(session, actor)


def _households_from_cells(session, level: str, ids: list[int]) -> dict[int, int]:
    """Households of areas of ``level`` summed over their current cells (areas that store none)."""
    if not ids or level == "cell":
        return {}
    depth = LEVELS.index("cell") - LEVELS.index(level)
    cell = aliased(Area)
    chain = [cell]
    q = select(func.sum(cell.households))
    for _ in range(depth):
        parent = aliased(Area)
        q = q.join(parent, parent.id == chain[-1].parent_id)
        chain.append(parent)
    top = chain[-1]
    q = q.add_columns(top.id).where(cell.level == "cell", cell.retired_at.is_(None), top.id.in_(ids)).group_by(top.id)
    return {aid: int(total) for total, aid in session.execute(q) if total is not None}


def _json_response(body: str, status: int = 200):
    """JSON text (gzipped by gridmap.web.compress when the client takes it: map data compresses ~5:1)."""
    resp = current_app.response_class(body.encode("utf-8"), mimetype="application/json", status=status)
    resp.headers["Cache-Control"] = "private, no-cache"
    resp.headers["Vary"] = "Cookie, Authorization"
    return resp


def digits_for(tol: float) -> int:
    """Decimals of a coordinate that keep it within the simplification tolerance (2–7)."""
    return max(2, min(7, math.ceil(-math.log10(tol)) + 1)) if tol > 0 else 7


def _feature_collection(features: list[str], **meta) -> str:
    head = json.dumps({"type": "FeatureCollection", **meta}, ensure_ascii=False)[:-1]
    return head + ', "features": [' + ",".join(features) + "]}"


def _point(lon: float, lat: float) -> str:
    return '{"type":"Point","coordinates":[%.6f,%.6f]}' % (lon, lat)


def _feature(fid, props: dict, geometry_json: str) -> str:
    return ('{"type":"Feature","id":%s,"properties":%s,"geometry":%s}'
            % (json.dumps(fid), json.dumps(props, ensure_ascii=False), geometry_json))


# ----------------------------------------------------------------------------- cells

def cells_geojson(session, actor, bbox, *, level: str = "cell", z: int | None = None, limit: int = MAX_CELLS,
                  case_filters: dict | None = None) -> str:
    """A GeoJSON FeatureCollection (text) of current ``level`` areas in the bbox within the actor's scope."""
    scope = _scope_ids(session, actor)
    tol = tolerance_deg(z, bbox)
    geom = AreaGeometry.geom
    pos = func.ST_PointOnSurface(geom)
    q = (select(Area.id, Area.code, Area.name, Area.level, Area.kind, Area.households,
                _as_geojson(session, func.ST_SimplifyPreserveTopology(geom, tol), digits_for(tol)).label("gj"),
                func.ST_X(pos).label("lx"), func.ST_Y(pos).label("ly"))
         .join(AreaGeometry, AreaGeometry.area_id == Area.id)
         .where(Area.level == level, Area.retired_at.is_(None), AreaGeometry.valid_to.is_(None),
                _bbox_clause(session, geom, AreaGeometry.id, "area_geometries", bbox, exact=True))
         .order_by(Area.code).limit(limit + 1))
    if scope is not None:
        q = q.where(Area.id.in_(scope) if scope else false())
    rows = session.execute(q).all()
    truncated = len(rows) > limit
    rows = rows[:limit]
    ids = [r.id for r in rows]
    counts: dict[int, int] = {}
    if ids:
        col = _CASE_AREA_COLUMN[level]
        filters = dict(case_filters or {})
        filters["status"] = ",".join(OPEN_STATUSES)
        where = _case_where(session, actor, filters)
        counts = dict(session.execute(select(col, func.count(Case.id)).where(col.in_(ids), *where).group_by(col)).all())
    summed = _households_from_cells(session, level, [r.id for r in rows if r.households is None])
    feats = []
    for r in rows:
        if r.gj is None:
            continue
        hh = r.households if r.households is not None else summed.get(r.id)
        n = int(counts.get(r.id, 0))
        props = {"id": r.id, "code": r.code, "name": r.name, "level": r.level, "kind": r.kind, "households": hh,
                 "open_cases": n, "per_1000_households": round(n * 1000.0 / hh, 2) if hh else None,
                 "label_at": [round(float(r.lx), 6), round(float(r.ly), 6)] if r.lx is not None else None}
        feats.append(_feature(r.id, props, r.gj))
    return _feature_collection(feats, level=level, count=len(feats), truncated=truncated, limit=limit,
                               tolerance=tol)


@bp.get("/cells")
@login_required
def cells():
    _check_keys(_COMMON + ("level", "category", "from", "to", "overdue"))
    bbox = parse_bbox(request.args.get("bbox"))
    level = (request.args.get("level") or "cell").strip()
    if level not in LEVELS:
        raise APIError(f"level must be one of {', '.join(LEVELS)}, got {level[:20]!r}", field="level")
    z = _int_arg("z", None, 0, 24)
    limit = _int_arg("limit", MAX_CELLS, 1, MAX_CELLS)
    body = cells_geojson(get_session(), current_actor(), bbox, level=level, z=z, limit=limit,
                         case_filters=_case_filters(with_status=False))
    return _json_response(body)


# ----------------------------------------------------------------------------- cases

def cases_geojson(session, actor, bbox, *, filters: dict, limit: int = DEFAULT_CASES,
                  now: dt.datetime | None = None) -> str:
    """Case points in the bbox, or per-cell aggregates when more than ``limit`` match."""
    now = now or utcnow()
    where = _case_where(session, actor, filters)
    where += [Case.geom.isnot(None), _bbox_clause(session, Case.geom, Case.id, "cases", bbox)]
    overdue = _overdue_expr(now)
    q = (select(Case.id, Case.number, Case.title, Case.description, Case.status, Case.urgent, Case.supervised,
                overdue.label("is_overdue"), Case.lon, Case.lat, Category.name.label("category"))
         .join(Category, Category.id == Case.category_id)
         .where(*where).order_by(Case.reported_at.desc(), Case.id.desc()).limit(limit + 1))
    rows = session.execute(q).all()
    if len(rows) <= limit:
        feats = []
        for r in rows:
            title = r.title or (r.description or "")[:80]
            props = {"id": r.id, "number": r.number, "category": r.category, "status": r.status,
                     "urgent": bool(r.urgent), "overdue": bool(r.is_overdue), "supervised": bool(r.supervised),
                     "title": title}
            feats.append(_feature(r.id, props, _point(r.lon, r.lat)))
        return _feature_collection(feats, aggregated=False, count=len(feats), limit=limit)
    return _aggregate_cases(session, where, overdue, limit)


def _aggregate_cases(session, where: list, overdue, limit: int) -> str:
    """One feature per cell (at the mean position of its cases), plus ~1 km bins for unplaced ones."""
    from sqlalchemy import case as sql_case

    n_over = func.sum(sql_case((overdue, 1), else_=0))
    n_urgent = func.sum(sql_case((Case.urgent.is_(True), 1), else_=0))
    q_cells = (select(Case.cell_id, func.count(Case.id), n_over, n_urgent, func.avg(Case.lon), func.avg(Case.lat))
               .where(*where, Case.cell_id.isnot(None)).group_by(Case.cell_id)
               .order_by(func.count(Case.id).desc()).limit(MAX_AGGREGATES + 1))
    cell_rows = session.execute(q_cells).all()
    gx, gy = func.round(Case.lon * 100), func.round(Case.lat * 100)
    q_loose = (select(gx, gy, func.count(Case.id), n_over, n_urgent, func.avg(Case.lon), func.avg(Case.lat))
               .where(*where, Case.cell_id.is_(None)).group_by(gx, gy)
               .order_by(func.count(Case.id).desc()).limit(MAX_AGGREGATES + 1))
    loose_rows = session.execute(q_loose).all()
    truncated = len(cell_rows) + len(loose_rows) > MAX_AGGREGATES
    cell_rows = cell_rows[:MAX_AGGREGATES]
    loose_rows = loose_rows[:max(0, MAX_AGGREGATES - len(cell_rows))]
    names = {}
    if cell_rows:
        names = {i: (c, n) for i, c, n in session.execute(
            select(Area.id, Area.code, Area.name).where(Area.id.in_([r[0] for r in cell_rows])))}
    feats, total = [], 0
    for cid, n, n_o, n_u, lon, lat in cell_rows:
        code, name = names.get(cid, (None, None))
        total += n
        feats.append(_feature(f"cell-{cid}", {"cell_id": cid, "cell_code": code, "cell_name": name, "count": int(n),
                                              "overdue": int(n_o or 0), "urgent": int(n_u or 0)},
                              _point(float(lon), float(lat))))
    for x, y, n, n_o, n_u, lon, lat in loose_rows:
        total += n
        feats.append(_feature(f"bin-{int(x)}-{int(y)}", {"cell_id": None, "cell_code": None, "cell_name": None,
                                                        "count": int(n), "overdue": int(n_o or 0),
                                                        "urgent": int(n_u or 0)},
                              _point(float(lon), float(lat))))
    return _feature_collection(feats, aggregated=True, count=len(feats), total=int(total), limit=limit,
                               truncated=truncated)


@bp.get("/cases")
@login_required
def cases():
    _check_keys(_COMMON + _CASE_FILTERS)
    bbox = parse_bbox(request.args.get("bbox"))
    _int_arg("z", None, 0, 24)
    limit = _int_arg("limit", DEFAULT_CASES, 1, MAX_CASES)
    body = cases_geojson(get_session(), current_actor(), bbox, filters=_case_filters(), limit=limit)
    return _json_response(body)


# ----------------------------------------------------------------------------- heat

def heat_points(session, actor, bbox, *, filters: dict, limit: int = DEFAULT_HEAT) -> tuple[list, float, bool]:
    """[[lat, lon, weight], …] of cases binned on a grid of ~1/HEAT_BINS of the bbox; (points, grid, truncated)."""
    x0, y0, x1, y1 = bbox
    grid = max(x1 - x0, y1 - y0) / HEAT_BINS
    where = _case_where(session, actor, filters)
    where += [Case.geom.isnot(None), _bbox_clause(session, Case.geom, Case.id, "cases", bbox)]
    gx, gy = func.round(Case.lon / grid), func.round(Case.lat / grid)
    n = func.count(Case.id)
    rows = session.execute(select(gx, gy, n).where(*where).group_by(gx, gy).order_by(n.desc()).limit(limit + 1)).all()
    truncated = len(rows) > limit
    pts = [[round(float(y) * grid, 6), round(float(x) * grid, 6), int(c)] for x, y, c in rows[:limit]]
    return pts, grid, truncated


@bp.get("/heat")
@login_required
def heat():
    _check_keys(_COMMON + _CASE_FILTERS)
    bbox = parse_bbox(request.args.get("bbox"))
    _int_arg("z", None, 0, 24)
    limit = _int_arg("limit", DEFAULT_HEAT, 1, MAX_HEAT)
    pts, grid, truncated = heat_points(get_session(), current_actor(), bbox, filters=_case_filters(), limit=limit)
    resp = _json_response(json.dumps(pts, separators=(",", ":")))
    resp.headers["X-Gridmap-Grid-Degrees"] = f"{grid:.8f}"
    resp.headers["X-Gridmap-Truncated"] = "1" if truncated else "0"
    return resp


# ----------------------------------------------------------------------------- basemap

def basemap_geojson(session, bbox, *, z: int | None = None) -> str:
    """Land (district outlines) in the bbox and label points of the districts and streets there."""
    tol = max(tolerance_deg(z, bbox), 1e-6)
    geom = AreaGeometry.geom
    current = (Area.retired_at.is_(None), AreaGeometry.valid_to.is_(None),
               _bbox_clause(session, geom, AreaGeometry.id, "area_geometries", bbox, exact=True))
    land = session.execute(
        select(Area.code, Area.name,
               _as_geojson(session, func.ST_SimplifyPreserveTopology(geom, tol), digits_for(tol)).label("gj"))
        .join(AreaGeometry, AreaGeometry.area_id == Area.id)
        .where(Area.level == "district", *current).order_by(Area.code)).all()
    pos = func.ST_PointOnSurface(geom)
    labels = session.execute(
        select(Area.code, Area.name, Area.level, func.ST_X(pos).label("x"), func.ST_Y(pos).label("y"))
        .join(AreaGeometry, AreaGeometry.area_id == Area.id)
        .where(Area.level.in_(("district", "street")), *current).order_by(Area.code)).all()
    feats = [_feature(f"land-{r.code}", {"kind": "land", "code": r.code, "name": r.name}, r.gj)
             for r in land if r.gj is not None]
    feats += [_feature(f"label-{r.code}", {"kind": "label", "level": r.level, "code": r.code, "name": r.name},
                       _point(float(r.x), float(r.y))) for r in labels if r.x is not None]
    return _feature_collection(feats, count=len(feats), tolerance=tol)


@bp.get("/basemap")
@login_required
def basemap():
    _check_keys(("bbox", "z"))
    bbox = parse_bbox(request.args.get("bbox"))
    z = _int_arg("z", None, 0, 24)
    return _json_response(basemap_geojson(get_session(), bbox, z=z))


# ----------------------------------------------------------------------------- extent

def scope_extent(session, actor) -> tuple[float, float, float, float] | None:
    """The bbox of the actor's own area (a worker: their cells; everyone city-wide: all districts)."""
    from gridmap.accounts.scope import worker_cell_ids

    q = (select(AreaGeometry.geom).join(Area, Area.id == AreaGeometry.area_id)
         .where(AreaGeometry.valid_to.is_(None), Area.retired_at.is_(None)))
    if actor.role == "worker":
        ids = worker_cell_ids(session, actor.worker_id) if actor.worker_id else []
        if not ids:
            return None
        q = q.where(Area.id.in_(ids))
    elif actor.role in ("city", "admin", "system", "department") or actor.area_id is None:
        q = q.where(Area.level == "district")
    else:
        q = q.where(Area.id == actor.area_id)
    sub = q.subquery()
    names = ("ST_XMin", "ST_YMin", "ST_XMax", "ST_YMax") if _is_postgis(session) else \
        ("MbrMinX", "MbrMinY", "MbrMaxX", "MbrMaxY")
    aggs = [(func.min if i < 2 else func.max)(getattr(func, n)(sub.c.geom)) for i, n in enumerate(names)]
    row = session.execute(select(*aggs)).one()
    if row[0] is None:
        return None
    return tuple(round(float(v), 6) for v in row)


@bp.get("/extent")
@login_required
def extent():
    _check_keys(())
    bbox = scope_extent(get_session(), current_actor())
    return _json_response(json.dumps({"bbox": list(bbox) if bbox else None}))


# ----------------------------------------------------------------------------- vector tiles (PostGIS)

def cells_mvt(session, actor, z: int, x: int, y: int, level: str = "cell") -> bytes:
    """A Mapbox vector tile (layer ``cells``) of current areas of ``level`` in tile z/x/y, scope-filtered."""
    from sqlalchemy import text

    scope = _scope_ids(session, actor)
    params = {"z": z, "x": x, "y": y, "level": level}
    scope_sql = ""
    if scope is not None:
        if not scope:
            return b""
        scope_sql = "AND a.id = ANY(:ids)"
        params["ids"] = sorted(scope)
    sql = text(f"""
        WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env3857,
                          ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => 64.0 / 4096), 4326) AS env)
        SELECT ST_AsMVT(t, 'cells', 4096, 'geom') FROM (
            SELECT a.id, a.code, a.name, a.level, a.households,
                   ST_AsMVTGeom(ST_Transform(g.geom, 3857), b.env3857, 4096, 64, true) AS geom
            FROM area_geometries g JOIN areas a ON a.id = g.area_id, b
            WHERE g.valid_to IS NULL AND a.retired_at IS NULL AND a.level = :level
              AND g.geom && b.env {scope_sql}
        ) t WHERE t.geom IS NOT NULL""")
    data = session.execute(sql, params).scalar()
    return bytes(data) if data else b""


@bp.get("/tiles/<int:z>/<int:x>/<int:y>.mvt")
@login_required
def mvt(z: int, x: int, y: int):
    _check_keys(("level",))
    session = get_session()
    if not _is_postgis(session):
        raise APIError("vector tiles need PostGIS; use /api/v1/geo/cells (GeoJSON by bbox) on SpatiaLite", 404)
    if not (0 <= z <= 22 and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise APIError(f"no tile {z}/{x}/{y}", 404)
    level = (request.args.get("level") or "cell").strip()
    if level not in LEVELS:
        raise APIError(f"level must be one of {', '.join(LEVELS)}", field="level")
    data = cells_mvt(session, current_actor(), z, x, y, level)
    resp = current_app.response_class(data, mimetype="application/vnd.mapbox-vector-tile")
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


# ----------------------------------------------------------------------------- local basemap tiles

def local_tile_folder(app) -> str | None:
    """The folder of GRIDMAP_BASEMAP=local:<folder> (relative paths are under the instance folder)."""
    basemap = str(app.config.get("GRIDMAP_BASEMAP") or "")
    if not basemap.startswith("local:"):
        return None
    folder = basemap[len("local:"):].strip()
    return folder if os.path.isabs(folder) else os.path.join(app.instance_path, folder)


@login_required
def local_tile(z: int, x: int, y: int):
    folder = local_tile_folder(current_app)
    if folder is None:
        raise APIError("no local basemap is configured (GRIDMAP_BASEMAP=local:<folder>)", 404)
    return send_from_directory(folder, f"{z}/{x}/{y}.png", max_age=86400)


@bp.record_once
def _register_tile_route(state) -> None:
    # outside the blueprint's /api/v1/geo prefix: the path maps.make_map puts into pages
    state.app.add_url_rule("/tiles/local/<int:z>/<int:x>/<int:y>.png", "geo_api_local_tile", local_tile)


__all__ = ["bp", "cells_geojson", "cases_geojson", "heat_points", "scope_extent", "cells_mvt", "parse_bbox",
           "tolerance_deg", "OPEN_STATUSES", "CLOSED_STATUSES"]
