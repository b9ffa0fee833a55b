"""The governance centre (综治中心): ``/centre``, the whole territory on one map (一张图) beside one
table of indicators per street and community (一表).

The map's layers (cells or communities shaded by open cases or cases per 1,000 households, a heat
map, case points, hazards when installed) load per visible area from ``/api/v1/geo``; the filter
form reloads them in place (``static/js/app.js``) and, on submit, the table too. Clicking an area
opens its card from ``/centre/card/<code>`` (JSON, put into the page with textContent).
The table comes from ``incidents.metrics.compute_metrics`` (结案率, 按期结案率 …, each with its
denominator) and the open / overdue counts of now, all within the user's scope.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app, flash, jsonify, render_template, request
from sqlalchemy import and_

from gridmap.accounts.scope import case_filter
from gridmap.incidents.models import STATUSES, Case
from gridmap.timebounds import parse_day
from gridmap.web.i18n import gettext as _
from gridmap.web.views.areas import children, open_counts, streets_in_scope, workers_of_cells
from gridmap.web.views.base import (CENTRE_ROLES, GEO_API, STREET_ROLES, actor, area_or_abort, base_map, bp,
                                    cell_tooltip, get_db, hazards_layer_url, map_parts_for_page,
                                    roles_page_required)

SHADES = {"per_1000_households": (1, 2, 5, 10), "open_cases": (1, 3, 5, 10)}


def _filters(session) -> dict:
    """The filter form's values, checked (a bad one is dropped with a message)."""
    from gridmap.incidents.queries import QueryError, category_ids_with_children

    args = request.args
    out = {"status": "open", "shade": "per_1000_households"}
    status = (args.get("status") or "open").strip()
    if status in ("open", "all") or status in STATUSES:
        out["status"] = status
    shade = (args.get("shade") or "").strip()
    if shade in SHADES:
        out["shade"] = shade
    if args.get("overdue") == "1":
        out["overdue"] = "1"
    cat = (args.get("category") or "").strip()[:60]
    if cat:
        try:
            out["category_ids"] = category_ids_with_children(session, cat)
            out["category"] = cat
        except QueryError as e:
            flash(_("筛选条件无效：{reason}", reason=e.message), "error")
    for key in ("from", "to"):
        raw = (args.get(key) or "").strip()
        if raw:
            try:
                out[key] = parse_day(raw, key)
            except ValueError:
                flash(_("时间范围无效：{reason}", reason=raw[:20]), "error")
    return out


def _period(f: dict) -> tuple[dt.date, dt.date]:
    tz = ZoneInfo(current_app.config.get("GRIDMAP_TIMEZONE") or "Asia/Shanghai")
    today = dt.datetime.now(tz).date()
    date_to = f.get("to") or today
    date_from = f.get("from") or date_to.replace(day=1)
    if date_from > date_to:
        date_from, date_to = date_to, date_from
    return date_from, date_to


def layer_filter(f: dict) -> dict:
    """The filter in the geo API's query form."""
    out = {"status": f["status"]}
    for key in ("category", "overdue"):
        if f.get(key):
            out[key] = f[key]
    for key in ("from", "to"):
        if f.get(key):
            out[key] = f[key].isoformat()
    return out


def _indicator_rows(session, act, f: dict, date_from, date_to) -> tuple[list[dict], dict | None]:
    from gridmap.incidents.metrics import MetricsError, compute_metrics

    scope = case_filter(session, act)
    if f.get("category_ids"):
        scope = and_(scope, Case.category_id.in_(f["category_ids"]))
    tz = current_app.config.get("GRIDMAP_TIMEZONE") or "Asia/Shanghai"
    try:
        by_street = {r["group"]["id"]: r for r in compute_metrics(session, group_by="street", date_from=date_from,
                                                                   date_to=date_to, scope_filter=scope, tz=tz)}
        by_comm = {r["group"]["id"]: r for r in compute_metrics(session, group_by="community", date_from=date_from,
                                                                 date_to=date_to, scope_filter=scope, tz=tz)}
        total = compute_metrics(session, group_by="none", date_from=date_from, date_to=date_to, scope_filter=scope,
                                tz=tz)[0]
    except MetricsError as e:
        flash(_("时间范围无效：{reason}", reason=str(e)), "error")
        return [], None
    streets = streets_in_scope(session, act)
    comms = children(session, [s.id for s in streets], "community")
    s_counts = open_counts(session, act, "street", [s.id for s in streets])
    c_counts = open_counts(session, act, "community", [c.id for c in comms])
    by_parent: dict[int, list] = {}
    for c in comms:
        by_parent.setdefault(c.parent_id, []).append(c)
    rows = []
    for s in streets:
        rows.append({"area": s, "level": "street", "m": by_street.get(s.id), "counts": s_counts.get(s.id, (0, 0))})
        for c in by_parent.get(s.id, []):
            rows.append({"area": c, "level": "community", "m": by_comm.get(c.id),
                         "counts": c_counts.get(c.id, (0, 0))})
    totals = {"m": total, "counts": (sum(v[0] for v in s_counts.values()), sum(v[1] for v in s_counts.values()))}
    return rows, totals


@bp.get("/centre")
@roles_page_required(*CENTRE_ROLES)
def centre():
    from gridmap.web.geo_api import scope_extent
    from gridmap.web.maps import add_cases_layer, add_choropleth_layer, add_heat_layer

    session = get_db()
    act = actor()
    f = _filters(session)
    date_from, date_to = _period(f)
    lf = layer_filter(f)
    area_filter = {k: v for k, v in lf.items() if k != "status"}
    m = base_map(scope_extent(session, act))
    shade = f["shade"]
    legend = _("每千户未结事件") if shade == "per_1000_households" else _("未结事件数")
    add_choropleth_layer(m, f"{GEO_API}/cells", property=shade, breaks=SHADES[shade], legend=legend, level="cell",
                         name="areas", filter=area_filter, tooltip=cell_tooltip())
    add_heat_layer(m, f"{GEO_API}/heat", name="heat", filter=lf)
    add_cases_layer(m, f"{GEO_API}/cases", name="cases", filter=lf, case_url="/cases/{id}")
    hazards = hazards_layer_url()  # drawn by static/js/app.js (data-hazards-url)
    rows, totals = _indicator_rows(session, act, f, date_from, date_to)
    from gridmap.web.views.cases import category_groups as groups

    return render_template("centre.html", map=map_parts_for_page(m), map_name=m.get_name(), f=f, lf=lf,
                           date_from=date_from, date_to=date_to, rows=rows, totals=totals,
                           groups=groups(session), statuses=STATUSES, shades=SHADES, hazards_url=hazards)


@bp.get("/centre/card/<code>")
@roles_page_required(*(CENTRE_ROLES + STREET_ROLES))
def centre_card(code: str):
    """One area's card for the map: code, name, households, workers, open and overdue cases."""
    session = get_db()
    act = actor()
    a = area_or_abort(session, act, code)
    cells = [a] if a.level == "cell" else (children(session, [a.id], "cell") if a.level == "community" else [])
    workers = workers_of_cells(session, [c.id for c in cells])
    names = []
    for c in cells:
        for w, role in workers.get(c.id, []):
            if w.name not in names:
                names.append(w.name)
    households = a.households
    if households is None and cells:
        households = sum(c.households or 0 for c in cells)
    n_open, n_over = open_counts(session, act, a.level, [a.id]).get(a.id, (0, 0))
    resp = jsonify({"code": a.code, "name": a.name, "level": a.level, "households": households,
                    "workers": names[:50], "open": n_open, "overdue": n_over, "url": f"/areas/{a.code}"})
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
