"""Street office pages: ``/street`` (the street's communities and cells with codes, households and
workers, and a map), ``/areas/<code>`` (one district, street, community or cell), and the boundary
editor ``/street/editor`` with its preview endpoint.

A street holds tens of communities and at most a few hundred cells, so its tables are complete;
cases are counted in SQL and never listed whole. The editor draws with Leaflet.Draw and sends the
drawing to the redrawing service's ``POST /api/v1/boundaries/drafts`` when it is installed, else to
``POST /street/editor/preview`` here, which checks the geometry (shapely ``is_valid_reason``) and
lists the current cells it touches. The editing operations themselves belong to the redrawing
service.
"""
from __future__ import annotations

import datetime as dt
import re

import shapely
from flask import abort, jsonify, render_template, request, url_for
from sqlalchemy import func, or_, select

from gridmap.accounts.scope import case_filter
from gridmap.assign.models import Responsibility, Worker
from gridmap.boundaries.models import CHILD_LEVEL, Area, AreaGeometry
from gridmap.incidents.models import Case
from gridmap.web.i18n import gettext as _
from gridmap.web.views.base import (CITY_ROLES, CLOSED_STATUSES, GEO_API, STREET_ROLES, actor, ancestors, area_bounds,
                                    area_or_abort, base_map, bp, cell_tooltip, get_db, login_page_required,
                                    map_parts_for_page, may_see_area, page_arg_int, roles_page_required,
                                    url_of_rule)
from gridmap.web.views.worker import case_rows, pagination

AREA_PER_PAGE = 20
_LEVEL_COLUMN = {"cell": Case.cell_id, "community": Case.community_id, "street": Case.street_id,
                 "district": Case.district_id}
MAX_PREVIEW_BYTES = 2 * 1024 * 1024
MAX_PREVIEW_FEATURES = 50
MAX_PREVIEW_VERTICES = 20000


# ----------------------------------------------------------------------------- shared queries
def streets_in_scope(session, act) -> list[Area]:
    q = select(Area).where(Area.level == "street", Area.retired_at.is_(None)).order_by(Area.code)
    if act.role in CITY_ROLES:
        return list(session.scalars(q))
    if act.area_id is None:
        return []
    home = session.get(Area, act.area_id)
    if home is None:
        return []
    if home.level == "street":
        return [home]
    if home.level == "district":
        return list(session.scalars(q.where(Area.parent_id == home.id)))
    return []


def children(session, parent_ids, level: str | None = None) -> list[Area]:
    ids = list(parent_ids)
    if not ids:
        return []
    q = select(Area).where(Area.parent_id.in_(ids), Area.retired_at.is_(None))
    if level:
        q = q.where(Area.level == level)
    return list(session.scalars(q.order_by(Area.code)))


def workers_of_cells(session, cell_ids, today: dt.date | None = None) -> dict[int, list[tuple[Worker, str]]]:
    """Current responsibilities per cell: [(worker, "primary" | "backup")], primary first."""
    ids = list(cell_ids)
    if not ids:
        return {}
    today = today or dt.date.today()
    out: dict[int, list] = {}
    rows = session.execute(
        select(Responsibility.cell_id, Responsibility.role, Worker).join(Worker, Worker.id == Responsibility.worker_id)
        .where(Responsibility.cell_id.in_(ids), Responsibility.valid_from <= today,
               or_(Responsibility.valid_to.is_(None), Responsibility.valid_to > today), Worker.active.is_(True))
        .order_by(Responsibility.role.desc(), Worker.code))
    for cell_id, role, w in rows:
        out.setdefault(cell_id, []).append((w, role))
    return out


def open_counts(session, act, level: str, ids) -> dict[int, tuple[int, int]]:
    """{area id: (open cases, overdue open cases)} within the actor's scope, counted in SQL."""
    from sqlalchemy import and_, case as sql_case

    ids = list(ids)
    if not ids:
        return {}
    col = _LEVEL_COLUMN[level]
    now = dt.datetime.now(dt.timezone.utc)
    overdue = or_(Case.overdue.is_(True), and_(Case.deadline_at < now, Case.status.in_(("dispatched", "in_progress"))))
    rows = session.execute(
        select(col, func.count(Case.id), func.sum(sql_case((overdue, 1), else_=0)))
        .where(col.in_(ids), Case.status.notin_(CLOSED_STATUSES), case_filter(session, act)).group_by(col))
    return {i: (int(n), int(o or 0)) for i, n, o in rows}


def _chosen_street(session, act) -> tuple[Area | None, list[Area]]:
    streets = streets_in_scope(session, act)
    code = (request.args.get("code") or "").strip()
    if code:
        street = area_or_abort(session, act, code)
        if street.level != "street":
            abort(404)
        return street, streets
    return (streets[0] if streets else None), streets


# ----------------------------------------------------------------------------- /street
@bp.get("/street")
@roles_page_required(*STREET_ROLES)
def street():
    from gridmap.web.maps import add_cells_layer

    session = get_db()
    act = actor()
    street_area, streets = _chosen_street(session, act)
    if street_area is None:
        return render_template("street.html", street=None, streets=streets, communities=[], map=None)
    comms = children(session, [street_area.id], "community")
    cells = children(session, [c.id for c in comms], "cell")
    by_comm: dict[int, list[Area]] = {}
    for c in cells:
        by_comm.setdefault(c.parent_id, []).append(c)
    workers = workers_of_cells(session, [c.id for c in cells])
    cell_counts = open_counts(session, act, "cell", [c.id for c in cells])
    comm_counts = open_counts(session, act, "community", [c.id for c in comms])
    communities = []
    for cm in comms:
        own = by_comm.get(cm.id, [])
        hh = sum(c.households or 0 for c in own) if cm.households is None else cm.households
        communities.append({"area": cm, "households": hh, "counts": comm_counts.get(cm.id, (0, 0)),
                            "cells": [{"area": c, "workers": workers.get(c.id, []),
                                       "counts": cell_counts.get(c.id, (0, 0))} for c in own]})
    m = base_map(area_bounds(session, [street_area.id]))
    add_cells_layer(m, f"{GEO_API}/cells", level="cell", name="cells", tooltip=cell_tooltip(),
                    areaUrl="/areas/{code}")
    add_cells_layer(m, f"{GEO_API}/cells", level="community", name="communities", tooltip=[["name", ""]],
                    style={"color": "#1e3a8a", "weight": 3, "fill": False})
    return render_template("street.html", street=street_area, streets=streets, communities=communities,
                           map=map_parts_for_page(m), map_name=m.get_name(),
                           may_edit=act.role in STREET_ROLES)


# ----------------------------------------------------------------------------- /areas/<code>
@bp.get("/areas/<code>")
@login_page_required
def area(code: str):
    from gridmap.web.maps import add_cases_layer, add_cells_layer

    session = get_db()
    act = actor()
    a = area_or_abort(session, act, code)
    parents = [p for p in reversed(ancestors(session, a)) if may_see_area(session, act, p)]
    subs = children(session, [a.id], CHILD_LEVEL.get(a.level)) if a.level in CHILD_LEVEL else []
    sub_counts = open_counts(session, act, subs[0].level, [s.id for s in subs]) if subs else {}
    if a.level == "cell":
        cell_ids = [a.id]
    elif a.level == "community":
        cell_ids = [s.id for s in subs]
    else:
        cell_ids = []
    resp = workers_of_cells(session, cell_ids)
    staff = list(session.scalars(select(Worker).where(Worker.area_id == a.id, Worker.active.is_(True),
                                                      Worker.role != "worker").order_by(Worker.code)))
    households = a.households
    if households is None and a.level == "community":
        households = sum(s.households or 0 for s in subs)
    page = page_arg_int("page")
    where = [_LEVEL_COLUMN[a.level] == a.id, Case.status.notin_(CLOSED_STATUSES), case_filter(session, act)]
    total = session.scalar(select(func.count(Case.id)).where(*where)) or 0
    rows = list(session.scalars(select(Case).where(*where)
                                .order_by(Case.deadline_at.is_(None), Case.deadline_at, Case.id.desc())
                                .offset((page - 1) * AREA_PER_PAGE).limit(AREA_PER_PAGE)))
    m = base_map(area_bounds(session, [a.id]))
    level = "cell" if a.level in ("cell", "community") else CHILD_LEVEL.get(a.level, "cell")
    add_cells_layer(m, f"{GEO_API}/cells", level=level, name="cells", tooltip=cell_tooltip(), areaUrl="/areas/{code}")
    add_cases_layer(m, f"{GEO_API}/cases", name="cases", filter={"status": "open"}, case_url="/cases/{id}")
    workers_by_cell = [(s, resp.get(s.id, [])) for s in subs] if a.level == "community" else \
        ([(a, resp.get(a.id, []))] if a.level == "cell" else [])
    return render_template("area.html", area=a, parents=parents, subs=subs, sub_counts=sub_counts, staff=staff,
                           workers_by_cell=workers_by_cell, households=households, rows=case_rows(session, rows),
                           pager=pagination(page, total, AREA_PER_PAGE), map=map_parts_for_page(m),
                           map_name=m.get_name())


# ----------------------------------------------------------------------------- boundary editor
DRAFTS_PATH = "/api/v1/boundaries/drafts"


@bp.get("/street/editor")
@roles_page_required(*STREET_ROLES)
def editor():
    import folium

    from gridmap.web.maps import LocalDraw, add_cells_layer

    session = get_db()
    act = actor()
    street_area, streets = _chosen_street(session, act)
    if street_area is None:
        abort(404)
    m = base_map(area_bounds(session, [street_area.id]))
    add_cells_layer(m, f"{GEO_API}/cells", level="cell", name="cells", tooltip=cell_tooltip())
    drawn = folium.FeatureGroup(name="drawn", control=False)
    drawn.add_to(m)
    LocalDraw(feature_group=drawn, show_geometry_on_click=False, position="topleft",
              draw_options={"polygon": {"allowIntersection": False, "showArea": False},
                            "polyline": {"allowIntersection": True}, "rectangle": {"showArea": False},
                            "circle": False, "circlemarker": False, "marker": False},
              edit_options={"poly": {"allowIntersection": False}}).add_to(m)
    drafts = url_of_rule(DRAFTS_PATH, "POST")
    comms = children(session, [street_area.id], "community")
    cells = children(session, [c.id for c in comms], "cell")
    return render_template("editor.html", street=street_area, streets=streets, map=map_parts_for_page(m),
                           map_name=m.get_name(), drawn_name=drawn.get_name(),
                           preview_url=url_for("pages.editor_preview"), drafts_url=DRAFTS_PATH if drafts else None,
                           operations=DRAFT_OPERATIONS, draft_labels=DRAFT_LABELS, communities=comms, cells=cells)


#: the redrawing service's operations the editor offers: (operation, geometry field, target field)
DRAFT_OPERATIONS = (("split", "line", "cell"), ("reshape", "polygon", "cell"),
                    ("create_cell", "polygon", "community"), ("transfer", "polygon", "to"))
DRAFT_LABELS = {"split": "用分割线拆分网格", "reshape": "按多边形重绘网格", "create_cell": "在社区内新建网格",
                "transfer": "把多边形划入目标区域"}


_POINT_IN_REASON = re.compile(r"\[\s*(-?[\d.]+(?:e-?\d+)?)\s+(-?[\d.]+(?:e-?\d+)?)")


def _problem(i: int, reason: str) -> dict:
    out = {"feature": i, "reason": reason}
    m = _POINT_IN_REASON.search(reason)
    if m:
        out["lon"], out["lat"] = float(m.group(1)), float(m.group(2))
    return out


@bp.post("/street/editor/preview")
@roles_page_required(*STREET_ROLES)
def editor_preview():
    """Check a drawing (GeoJSON, WGS84): validity per feature and the street's cells it touches."""
    session = get_db()
    act = actor()
    if request.content_length and request.content_length > MAX_PREVIEW_BYTES:
        abort(413)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify({"error": "send a GeoJSON Feature or FeatureCollection"}), 400
    street_code = body.get("street") if isinstance(body.get("street"), str) else None
    gj = body.get("geojson", body)
    feats = gj.get("features") if isinstance(gj, dict) and gj.get("type") == "FeatureCollection" else [gj]
    if not isinstance(feats, list) or not feats:
        return jsonify({"error": "no features"}), 400
    if len(feats) > MAX_PREVIEW_FEATURES:
        return jsonify({"error": f"at most {MAX_PREVIEW_FEATURES} features"}), 400
    geoms, problems = [], []
    for i, f in enumerate(feats):
        geom_json = f.get("geometry") if isinstance(f, dict) and f.get("type") == "Feature" else f
        try:
            g = shapely.geometry.shape(geom_json)
        except Exception:  # noqa: BLE001 - anything unparsable is one problem, reported per feature
            problems.append({"feature": i, "reason": "not a GeoJSON geometry"})
            continue
        if g.geom_type not in ("Polygon", "MultiPolygon", "LineString", "MultiLineString"):
            problems.append({"feature": i, "reason": f"{g.geom_type} is not a polygon or a line"})
            continue
        if shapely.get_num_coordinates(g) > MAX_PREVIEW_VERTICES:
            return jsonify({"error": f"more than {MAX_PREVIEW_VERTICES} vertices"}), 400
        x0, y0, x1, y1 = g.bounds
        if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            problems.append({"feature": i, "reason": "coordinates are not WGS84 longitude/latitude"})
            continue
        reason = shapely.is_valid_reason(g)
        if reason != "Valid Geometry":
            problems.append(_problem(i, reason))
        geoms.append(g)
    street_area = area_or_abort(session, act, street_code) if street_code else None
    if street_area is not None and street_area.level != "street":
        abort(404)
    streets = [street_area] if street_area is not None else streets_in_scope(session, act)
    cells = children(session, [c.id for c in children(session, [s.id for s in streets], "community")], "cell")
    touched = []
    if geoms and cells:
        rows = session.execute(select(AreaGeometry.area_id, func.ST_AsBinary(AreaGeometry.geom))
                               .where(AreaGeometry.area_id.in_([c.id for c in cells]),
                                      AreaGeometry.valid_to.is_(None))).all()
        by_id = {c.id: c for c in cells}
        drawn = shapely.union_all([shapely.make_valid(g) for g in geoms])
        for aid, wkb in rows:
            cg = shapely.from_wkb(bytes(wkb))
            if cg.intersects(drawn):
                c = by_id[aid]
                touched.append({"code": c.code, "name": c.name, "households": c.households})
        touched.sort(key=lambda c: c["code"])
    return jsonify({"valid": not problems, "problems": problems, "cells": touched,
                    "message": _("几何有效。") if not problems else
                    _("几何无效：{reason}", reason="; ".join(p["reason"] for p in problems))})
