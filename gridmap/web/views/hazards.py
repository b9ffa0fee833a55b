"""Hazard pages (隐患): the register (``/hazards``), one hazard (``/hazards/<id>``) with its actions as
POST forms, its photos, and inspection compliance with the hazard indicators (``/hazards/compliance``).

The register's filters (type, grade, status, overdue, area, responsible unit, found date, 督办) are
checked one by one (``hazards.register.check_filters``): an unknown value gives a message on the
page and the other filters still apply. The count, the table, the map (``static/js/hazard-layer.js``
loading ``/api/v1/hazards/geo`` with the same filters) and the downloads (CSV and GeoJSON from
``/api/v1/export``, the selection's 隐患台账 as .xlsx here, the area ledger from ``/api/v1/ledgers``)
show the same hazards. Scope: a hazard outside the user's area answers 404, exactly like an unknown id
(pages, like the case pages); everything is read through ``hazards.service`` with the user's actor.
Actions go through ``hazards.service.apply_action`` and ``hazards.actions`` with the version the
user saw; a refusal (a verify by the rectifier, an extension without a reason …) is shown as a
message and changes nothing.
"""
from __future__ import annotations

import datetime as dt
import io
import math
from urllib.parse import urlencode

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import select

from gridmap.boundaries.models import Area
from gridmap.hazards.models import (ACCIDENT_GRADE_ZH, GRADE_ZH, GRADES, HAZARD_STATUSES, STATUS_ZH, TASK_RESULT_ZH,
                                    Hazard, HazardCase, HazardEvent, HazardPhoto, HazardType, InspectionSchedule,
                                    InspectionTask)
from gridmap.web.i18n import gettext as _
from gridmap.web.views.base import (actor, base_map, bp, get_db, login_page_required, map_parts_for_page,
                                    page_arg_int, roles_page_required)

#: who opens the register and the compliance page (a worker sees their hazards on their own pages)
REGISTER_ROLES = ("head", "community", "street", "district", "city", "admin")
PER_PAGE = 50
GROUP_BY_LEVEL = {"city": "district", "admin": "district", "district": "street", "street": "community",
                  "community": "cell", "head": "cell"}
#: the messages hazard-layer.js shows
JS_MESSAGES = ("隐患", "超期", "督办", "一般隐患", "重大隐患", "待整改", "已整改", "已核查", "已销号", "超期未整改",
               "打开隐患页面", "整改期限")


#: the grades as a page names them (一般 alone is also a satisfaction level, translated otherwise)
GRADE_LABEL = {"general": "一般隐患", "major": "重大隐患"}


def _labels():
    return {"status": {k: _(v) for k, v in STATUS_ZH.items()}, "grade": {k: _(GRADE_LABEL[k]) for k in GRADES}}


def _now():
    return dt.datetime.now(dt.timezone.utc)


def _tz():
    from zoneinfo import ZoneInfo

    return ZoneInfo(current_app.config.get("GRIDMAP_TIMEZONE") or "Asia/Shanghai")


def _reason_text(e) -> str:
    return f"{e.field}: {e.message}"


# ----------------------------------------------------------------------------- the register
@bp.get("/hazards")
@roles_page_required(*REGISTER_ROLES)
def hazards():
    from gridmap.hazards.register import check_filters, parse_sort, select_hazards
    from gridmap.hazards.service import ensure_types, hazard_dicts
    from gridmap.web.geo_api import scope_extent

    session = get_db()
    act = actor()
    ensure_types(session)
    now = _now()
    raw = {k: request.args.get(k) for k in request.args}
    if raw.get("overdue") == "0":
        raw.pop("overdue")
    filters, problems = check_filters(session, act, raw, now=now)
    for e in problems:
        flash(_("筛选条件无效：{reason}", reason=_reason_text(e)), "error")
    sort, desc, sort_msg = parse_sort(request.args.get("sort"), request.args.get("dir"))
    if sort_msg:
        flash(_("排序无效：{reason}", reason=sort_msg), "error")
    page = page_arg_int("page")
    sel = select_hazards(session, act, filters, sort=sort, descending=desc, page=page, per_page=PER_PAGE, now=now)
    rows = hazard_dicts(session, sel.hazards, now=now)
    qs = urlencode(filters)
    m = base_map(scope_extent(session, act))
    _outlines(m)
    types = list(session.scalars(select(HazardType).where(HazardType.active.is_(True)).order_by(HazardType.code)))
    areas = _area_choices(session, act)
    ledger_area = filters.get("area") or (areas[0][0] if len(areas) == 1 else None)
    pages = max(1, math.ceil(sel.total / PER_PAGE))
    return render_template(
        "hazards.html", map=map_parts_for_page(m), map_name=m.get_name(), rows=rows, sel=sel, filters=filters,
        raw=raw, qs=qs, types=types, areas=areas, grades=GRADES, statuses=HAZARD_STATUSES, labels=_labels(),
        sort=sort, desc=desc, page=sel.page, pages=pages, ledger_area=ledger_area,
        geo_url=url_for("hazards_api.geo") + ("?" + qs if qs else ""), sort_url=_sort_url)


def _js_messages():
    from gridmap.web.i18n import js_messages

    return js_messages(*JS_MESSAGES)


@bp.app_context_processor
def _hazard_context():
    """``hazard_js_messages()`` for any page that draws the hazard layer (the centre's too)."""
    return {"hazard_js_messages": _js_messages}


def _sort_url(key: str, current: str, desc: bool) -> str:
    args = {k: v for k, v in request.args.items() if k not in ("sort", "dir", "page")}
    args["sort"] = key
    args["dir"] = "asc" if key == current and desc else "desc"
    return "?" + urlencode(args)


def _area_choices(session, act) -> list[tuple[str, str]]:
    """(code, label) of the areas a user filters by: their own and the levels below, to communities."""
    from gridmap.accounts.scope import area_ids_in_scope

    ids = area_ids_in_scope(session, act)
    q = select(Area.code, Area.name, Area.level).where(Area.level.in_(("district", "street", "community")),
                                                       Area.retired_at.is_(None))
    if ids is not None:
        root = session.get(Area, act.area_id) if act.area_id else None
        below = ids - ({a.id for a in _ancestors(root)} if root else set())
        q = q.where(Area.id.in_(below or {-1}))
    order = {"district": 0, "street": 1, "community": 2}
    rows = sorted(session.execute(q).all(), key=lambda r: (r.code[:6], order[r.level], r.code))
    indent = {"district": "", "street": "· ", "community": "· · "}
    return [(r.code, f"{indent[r.level]}{r.name}") for r in rows][:2000]


def _ancestors(area):
    out, a = [], area.parent if area is not None else None
    while a is not None:
        out.append(a)
        a = a.parent
    return out


@bp.get("/hazards/export.xlsx")
@roles_page_required(*REGISTER_ROLES)
def hazards_xlsx():
    """The selection's 隐患台账 as Excel (the same filters as the page)."""
    from gridmap.analysis.common import AnalysisError
    from gridmap.analysis.ledgers import hazard_selection_ledger, write_xlsx
    from gridmap.hazards.register import check_filters

    session = get_db()
    act = actor()
    filters, problems = check_filters(session, act, {k: request.args.get(k) for k in request.args})
    if problems:
        flash(_("筛选条件无效：{reason}", reason=_reason_text(problems[0])), "error")
        return redirect(url_for("pages.hazards", **filters))
    try:
        led = hazard_selection_ledger(session, act, filters)
    except AnalysisError as e:
        flash(_("筛选条件无效：{reason}", reason=e.message), "error")
        return redirect(url_for("pages.hazards"))
    buf = io.BytesIO()
    write_xlsx([led], buf)
    buf.seek(0)
    name = f"hazards-{dt.datetime.now(_tz()):%Y%m%d-%H%M}.xlsx"
    resp = send_file(buf, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     as_attachment=True, download_name=name)
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["X-Gridmap-Rows"] = str(len(led.rows))
    return resp


# ----------------------------------------------------------------------------- one hazard
def hazard_or_abort(session, act, hazard_id: int) -> Hazard:
    """The hazard, or 404 alike when there is none and when it is outside the user's scope (an id
    cannot be probed)."""
    from gridmap.hazards.service import get_hazard

    if not isinstance(hazard_id, int) or hazard_id < 1 or hazard_id > 2**31 - 1:
        abort(404)
    h = get_hazard(session, act, hazard_id)
    if h is None:
        abort(404)
    return h


def _hazard_map(session, h: Hazard):
    import folium

    from gridmap.hazards.service import hazard_geometry_geojson

    gj = hazard_geometry_geojson(session, h.id)
    if h.geom_kind == "point":
        d = 0.004
        bounds = (h.lon - d, h.lat - d, h.lon + d, h.lat + d)
    else:
        import shapely

        g = shapely.from_geojson(__import__("json").dumps(gj))
        x0, y0, x1, y1 = g.bounds
        pad = max(x1 - x0, y1 - y0) * 0.3 + 0.001
        bounds = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    m = base_map(bounds)
    _outlines(m)
    color = "#9c4221" if h.grade == "major" else "#dd6b20"
    if h.geom_kind == "area":
        folium.GeoJson(gj, name="hazard", style_function=lambda _f: {"color": color, "weight": 3, "dashArray": "5 4",
                                                                      "fillColor": color, "fillOpacity": 0.25},
                       tooltip=h.title).add_to(m)
    folium.CircleMarker([h.lat, h.lon], radius=9, color="#7b341e", weight=2, fill=True, fill_color=color,
                        fill_opacity=0.9, tooltip=h.title).add_to(m)
    return m


def _outlines(m) -> None:
    """The areas in view as outlines under the hazards (district → cell by zoom), for orientation."""
    from gridmap.web.maps import LEVELS_BY_ZOOM, add_cells_layer
    from gridmap.web.views.base import GEO_API, cell_tooltip

    add_cells_layer(m, f"{GEO_API}/cells", levels=LEVELS_BY_ZOOM, name="cells", tooltip=cell_tooltip())


def _inspections(session, h: Hazard) -> tuple[list, list]:
    from gridmap.assign.models import Worker

    schedules = list(session.scalars(select(InspectionSchedule).where(InspectionSchedule.hazard_id == h.id)
                                     .order_by(InspectionSchedule.id)))
    today = dt.datetime.now(_tz()).date()
    tasks = []
    for t, wname in session.execute(select(InspectionTask, Worker.name)
                                    .outerjoin(Worker, Worker.id == InspectionTask.worker_id)
                                    .where(InspectionTask.hazard_id == h.id)
                                    .order_by(InspectionTask.due_date.desc()).limit(200)):
        if t.done_at is not None:
            state = "on_time" if t.done_at.astimezone(_tz()).date() <= t.due_date else "late"
        else:
            state = "missed" if t.due_date < today else "pending"
        tasks.append({"task": t, "worker": wname, "state": state,
                      "result": TASK_RESULT_ZH.get(t.result) if t.result else None})
    nexts = []
    for s in schedules:
        if s.active and h.status != "closed":
            k = max(0, -(-(today - s.start_date).days // s.interval_days))
            nxt = s.start_date + dt.timedelta(days=k * s.interval_days)
            nexts.append({"schedule": s, "next": nxt if not s.end_date or nxt <= s.end_date else None})
        else:
            nexts.append({"schedule": s, "next": None})
    return nexts, tasks


def _countdown(h: Hazard, now: dt.datetime) -> dict | None:
    if h.rectify_deadline is None or h.status != "open":
        return None
    secs = (h.rectify_deadline - now).total_seconds()
    days, rest = divmod(abs(int(secs)), 86400)
    return {"overdue": secs < 0, "days": days, "hours": rest // 3600}


@bp.get("/hazards/<int:hazard_id>")
@login_page_required
def hazard_page(hazard_id: int):
    from gridmap.hazards.actions import available_actions, rectified_by_actor
    from gridmap.hazards.service import hazard_dicts
    from gridmap.incidents.models import Case

    session = get_db()
    act = actor()
    h = hazard_or_abort(session, act, hazard_id)
    now = _now()
    d = hazard_dicts(session, [h], now=now)[0]
    events = list(session.scalars(select(HazardEvent).where(HazardEvent.hazard_id == h.id).order_by(HazardEvent.seq)))
    photos = list(session.scalars(select(HazardPhoto).where(HazardPhoto.hazard_id == h.id).order_by(HazardPhoto.id)))
    by_event: dict[int, list] = {}
    for p in photos:
        by_event.setdefault(p.event_id, []).append(p)
    from gridmap.accounts.scope import case_filter

    cases = session.execute(select(Case, HazardCase.relation).join(HazardCase, HazardCase.case_id == Case.id)
                            .where(HazardCase.hazard_id == h.id).order_by(Case.id)).all()
    visible = set(session.scalars(select(Case.id).where(Case.id.in_([c.id for c, _r in cases]),
                                                        case_filter(session, act)))) if cases else set()
    schedules, tasks = _inspections(session, h)
    actions = available_actions(session, h, act)
    m = _hazard_map(session, h)
    return render_template(
        "hazard.html", h=h, d=d, events=events, by_event=by_event, cases=cases, visible_cases=visible,
        schedules=schedules, tasks=tasks, actions=actions, labels=_labels(),
        accident_zh=ACCIDENT_GRADE_ZH, countdown=_countdown(h, now),
        own_rectification=rectified_by_actor(session, h, act), map=map_parts_for_page(m), map_name=m.get_name())


def _photos_from_request() -> list[tuple[bytes, str]]:
    from gridmap.web.views.cases import _photo_max

    out = []
    for storage in request.files.getlist("photo")[:5]:
        if storage is None or not storage.filename:
            continue
        data = storage.stream.read(_photo_max() + 1)
        if data:
            out.append((data, storage.filename))
    return out


@bp.post("/hazards/<int:hazard_id>/action")
@login_page_required
def hazard_action(hazard_id: int):
    from gridmap.hazards import actions as manage
    from gridmap.hazards.service import HazardError, apply_action
    from gridmap.web.views.cases import _photo_max

    session = get_db()
    act = actor()
    h = hazard_or_abort(session, act, hazard_id)
    form = request.form
    action = (form.get("action") or "").strip()
    try:
        version = int(form.get("version") or 0) or None
    except ValueError:
        version = None
    comment = (form.get("comment") or "").strip()[:5000] or None
    back = redirect(url_for("pages.hazard_page", hazard_id=h.id))
    try:
        if action == "rectify":
            manage.rectify_with_photos(session, h.id, act, comment=comment, photos=_photos_from_request(),
                                       instance_path=current_app.instance_path, max_bytes=_photo_max(),
                                       expected_version=version)
        elif action in ("verify_pass", "verify_fail"):
            apply_action(session, h.id, "verify", act, comment=comment, data={"passed": action == "verify_pass"},
                         expected_version=version)
        elif action in ("close", "reopen"):
            apply_action(session, h.id, action, act, comment=comment, expected_version=version)
        elif action == "assign":
            manage.assign_unit(session, h.id, act, unit=form.get("unit"), person=form.get("person"), comment=comment,
                               expected_version=version)
        elif action == "extend":
            manage.extend(session, h.id, act, deadline=form.get("deadline"), reason=form.get("reason"),
                          expected_version=version)
        elif action == "supervise":
            manage.supervise(session, h.id, act, comment=comment, expected_version=version)
        else:
            session.rollback()
            flash(_("未知操作：{action}", action=action[:40]), "error")
            return back
        session.commit()
    except HazardError as e:
        session.rollback()
        flash(_("操作未执行：{reason}", reason=e.message), "error")
        return back
    flash(_("已完成：{action}", action=_(ACTION_ZH.get(action, action))), "info")
    return back


#: the actions' names on the page (history events too)
ACTION_ZH = {"register": "登记", "rectify": "整改", "verify": "核查", "verify_pass": "核查通过", "verify_fail": "核查不通过",
             "close": "销号", "reopen": "重新打开", "assign": "指定责任单位", "extend": "延期", "supervise": "督办",
             "link_case": "关联事件", "photo": "照片"}


@bp.app_template_filter("hazard_action")
def _hazard_action_label(a: str) -> str:
    return _(ACTION_ZH[a]) if a in ACTION_ZH else a


@bp.get("/hazards/<int:hazard_id>/photos/<int:photo_id>")
@login_page_required
def hazard_photo(hazard_id: int, photo_id: int):
    from gridmap.hazards.actions import photo_path
    from gridmap.hazards.service import HazardError

    session = get_db()
    h = hazard_or_abort(session, actor(), hazard_id)
    p = session.get(HazardPhoto, photo_id)
    if p is None or p.hazard_id != h.id:
        abort(404)
    try:
        path = photo_path(p, current_app.instance_path)
    except HazardError:
        abort(404)
    if not path.exists():
        abort(404)
    resp = send_file(path, mimetype=p.content_type, max_age=0)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


# ----------------------------------------------------------------------------- compliance and indicators
@bp.get("/hazards/compliance")
@roles_page_required(*REGISTER_ROLES)
def hazard_compliance():
    from gridmap.hazards.indicators import hazard_indicators, inspection_compliance
    from gridmap.hazards.service import HazardError
    from gridmap.web.geo_api import scope_extent

    session = get_db()
    act = actor()
    default_group = GROUP_BY_LEVEL.get(act.role, "street")
    if act.role in ("street", "district") and act.area_id:
        a = session.get(Area, act.area_id)
        default_group = {"district": "street", "street": "community"}.get(a.level if a else "", default_group)
    group = (request.args.get("group") or default_group).strip()
    args = {"group_by": group, "date_from": request.args.get("from") or None,
            "date_to": request.args.get("to") or None, "area": request.args.get("area") or None}
    comp = ind = None
    try:
        comp = inspection_compliance(session, act, **args)
        ind = hazard_indicators(session, act, **args)
    except HazardError as e:
        flash(_("筛选条件无效：{reason}", reason=_reason_text(e)), "error")
        args.update(group_by=default_group, date_from=None, date_to=None, area=None)
        comp = inspection_compliance(session, act, **args)
        ind = hazard_indicators(session, act, **args)
    total_comp = inspection_compliance(session, act, **{**args, "group_by": "none"})["rows"][0]
    total_ind = hazard_indicators(session, act, **{**args, "group_by": "none"})["rows"][0]
    m = base_map(scope_extent(session, act))
    _compliance_layer(session, m, comp)
    return render_template("hazard_compliance.html", comp=comp, ind=ind, total_comp=total_comp, total_ind=total_ind,
                           group=args["group_by"], groups=("district", "street", "community", "cell"),
                           args=request.args, map=map_parts_for_page(m), map_name=m.get_name(),
                           areas=_area_choices(session, act))


COMPLIANCE_BREAKS = ((0.6, "#c53030"), (0.8, "#dd6b20"), (0.95, "#ecc94b"), (1.01, "#2f855a"))


def compliance_color(rate) -> str:
    if rate is None:
        return "#cbd5e0"
    for top, color in COMPLIANCE_BREAKS:
        if rate < top:
            return color
    return COMPLIANCE_BREAKS[-1][1]


def _compliance_layer(session, m, comp: dict) -> None:
    """The groups' outlines (simplified, a few hundred at most) filled by their 按时巡检率."""
    import json

    import folium
    from sqlalchemy import func

    from gridmap.boundaries.models import AreaGeometry
    from gridmap.web.geo_api import _as_geojson

    rows = {r["group"]["id"]: r for r in comp["rows"] if r.get("group") and r["group"].get("id")}
    if not rows:
        return
    feats = []
    for aid, gj in session.execute(
            select(AreaGeometry.area_id,
                   _as_geojson(session, func.ST_SimplifyPreserveTopology(AreaGeometry.geom, 0.0002)))
            .where(AreaGeometry.area_id.in_(list(rows)[:500]), AreaGeometry.valid_to.is_(None))):
        r = rows[aid]
        rate = r["on_time_rate"]
        feats.append({"type": "Feature", "geometry": json.loads(gj),
                      "properties": {"name": r["group"]["name"], "color": compliance_color(rate),
                                     "rate": "—" if rate is None else f"{rate * 100:.1f}%",
                                     "missed": r["missed"], "due": r["due"]}})
    folium.GeoJson({"type": "FeatureCollection", "features": feats}, name="compliance",
                   style_function=lambda f: {"color": "#4a5568", "weight": 1, "fillColor": f["properties"]["color"],
                                             "fillOpacity": 0.55},
                   tooltip=folium.GeoJsonTooltip(fields=["name", "rate", "due", "missed"],
                                                 aliases=["", _("按时巡检率"), _("应巡检"), _("漏检")])).add_to(m)


# ----------------------------------------------------------------------------- the centre's area card
@bp.get("/hazards/card/<code>")
@roles_page_required(*REGISTER_ROLES)
def hazard_card(code: str):
    """An area's open hazards for the map's card (JSON): counts and the first 20, overdue first."""
    from flask import jsonify

    from gridmap.hazards.service import HazardError, filter_clauses, overdue_clause
    from gridmap.web.views.base import area_or_abort

    session = get_db()
    act = actor()
    a = area_or_abort(session, act, code)
    now = _now()
    try:
        where = filter_clauses(session, act, {"area": a.code, "status": "open"}, now=now)
    except HazardError:
        abort(404)
    from sqlalchemy import case, func

    over = overdue_clause(now)
    n_open, n_over = session.execute(select(func.count(Hazard.id), func.sum(case((over, 1), else_=0)))
                                     .where(*where)).one()
    rows = session.execute(select(Hazard.id, Hazard.number, Hazard.title, Hazard.grade, Hazard.status,
                                  over.label("overdue"))
                           .where(*where).order_by(case((over, 0), else_=1), Hazard.rectify_deadline, Hazard.id)
                           .limit(20)).all()
    resp = jsonify({"code": a.code, "open": int(n_open or 0), "overdue": int(n_over or 0),
                    "items": [{"id": r.id, "number": r.number, "title": r.title, "grade": r.grade,
                               "grade_name": GRADE_ZH[r.grade], "status_name": STATUS_ZH[r.status],
                               "overdue": bool(r.overdue), "url": url_for("pages.hazard_page", hazard_id=r.id)}
                              for r in rows]})
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
