"""Pages of the base registry: the manual-placement queue (``/queue``) and the worker's register of
her cells (``/worker/registry``).

``/queue``: supervisors (grid heads, community, street, district, city) see the queued cases of
their area (gridmap.incidents.queue), each with its best register candidates; a case is placed
by choosing a candidate or by clicking the map (``static/js/registry.js`` fills the form's
lon/lat), POSTed as a form with its CSRF token to ``/queue/<id>/place``, which calls
``intake.place_case`` (locate, route, dispatch, history) like ``POST /api/v1/cases/<id>/place``.

``/worker/registry``: a grid worker's buildings → households → residents (masked), the people she
looks after (tagged), the organisations, with search; the buildings are drawn on her map from
``/api/v1/registry/buildings/geo``.
"""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from gridmap.boundaries.models import Area
from gridmap.incidents.intake import PLACING_ROLES
from gridmap.web.i18n import gettext as _
from gridmap.web.views.base import (GEO_API, actor, base_map, bp, cell_tooltip, get_db, map_parts_for_page,
                                    page_arg_int, roles_page_required, worker_cells)

REGISTRY_PER_PAGE = 20


@bp.get("/queue")
@roles_page_required(*PLACING_ROLES)
def queue():
    from gridmap.web.geo_api import scope_extent
    from gridmap.incidents.queue import queued_cases
    from gridmap.web.maps import add_cells_layer

    session = get_db()
    act = actor()
    rows = queued_cases(session, act)
    m = base_map(scope_extent(session, act))
    add_cells_layer(m, f"{GEO_API}/cells", level="cell", name="cells", tooltip=cell_tooltip(),
                    style={"color": "#1d4ed8", "weight": 1, "fillOpacity": 0.04})
    return render_template("queue.html", rows=rows, map=map_parts_for_page(m), map_name=m.get_name())


@bp.post("/queue/<int:case_id>/place")
@roles_page_required(*PLACING_ROLES)
def queue_place(case_id: int):
    from gridmap.incidents.intake import IntakeError, place_case
    from gridmap.registry.models import Address
    from gridmap.web.forms import LogoutForm

    LogoutForm()  # the CSRF token was checked before the view (CSRFProtect)
    session = get_db()
    act = actor()
    raw_addr = (request.form.get("address_id") or "").strip()
    lon, lat, how = request.form.get("lon"), request.form.get("lat"), "map"
    if raw_addr:
        a = session.get(Address, int(raw_addr)) if raw_addr.isdigit() and len(raw_addr) < 10 else None
        if a is None:
            flash(_("所选地址不存在。"), "error")
            return redirect(url_for("pages.queue"))
        lon, lat, how = a.lon, a.lat, "candidate"
    try:
        lon_f, lat_f = float(lon), float(lat)
    except (TypeError, ValueError):
        flash(_("请选择一个候选地址，或在地图上点选位置。"), "error")
        return redirect(url_for("pages.queue"))
    comment = _("按候选地址定位") if how == "candidate" else _("在地图上定位")
    try:
        case = place_case(session, case_id, lon_f, lat_f, "wgs84", act, comment=comment)
        session.commit()
    except IntakeError as e:
        session.rollback()
        flash(_("定位失败：{reason}", reason=e.message), "error")
        return redirect(url_for("pages.queue"))
    cell = session.get(Area, case.cell_id) if case.cell_id else None
    flash(_("事件 {number} 已定位到 {cell} 并派遣。", number=case.number or case.id,
            cell=cell.name if cell else "-"), "info")
    return redirect(url_for("pages.queue"))


@bp.get("/worker/registry")
@roles_page_required("worker", "head")
def worker_registry():
    from gridmap.web.geo_api import scope_extent
    from gridmap.registry.service import building_tree, cared_for, list_records
    from gridmap.web.maps import add_cells_layer
    from gridmap.web.registry_api import registry_scope

    session = get_db()
    act = actor()
    q = (request.args.get("q") or "").strip()[:60] or None
    page = page_arg_int("page")
    scope = registry_scope(session, act)
    tree, total = building_tree(session, scope=scope, q=q, page=page, per_page=REGISTRY_PER_PAGE)
    orgs, n_orgs = list_records(session, "organisations", scope=scope, q=q, per_page=100)
    ids = worker_cells(session, act)
    cells = list(session.scalars(select(Area).where(Area.id.in_(ids)).order_by(Area.code))) if ids else []
    m = base_map(scope_extent(session, act))
    add_cells_layer(m, f"{GEO_API}/cells", level="cell", name="cells", tooltip=cell_tooltip(),
                    style={"color": "#1d4ed8", "weight": 2, "fillOpacity": 0.06})
    from gridmap.web.views.worker import pagination

    return render_template("worker_registry.html", tree=tree, pager=pagination(page, total, REGISTRY_PER_PAGE),
                           cared=cared_for(session, scope=scope), orgs=orgs, n_orgs=n_orgs, q=q or "", cells=cells,
                           map=map_parts_for_page(m), map_name=m.get_name(),
                           buildings_url=url_for("registry_api.buildings_geo"))


def registry_columns(session, act) -> dict:
    """For the centre's indicator table: households, residents and organisations of the register per
    street and community in the user's scope (``by_id``) and their total."""
    from gridmap.registry.service import summary
    from gridmap.web.registry_api import registry_scope

    scope = registry_scope(session, act)
    by_id = {}
    total = {"households": 0, "persons": 0, "organisations": 0}
    for level in ("street", "community"):
        res = summary(session, level, scope=scope)
        for r in res["rows"]:
            by_id[r["id"]] = {k: r[k] for k in total}
        if level == "street":
            total = {k: res["totals"][k] for k in total}
    return {"by_id": by_id, "total": total}
