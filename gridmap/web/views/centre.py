"""The governance centre (综治中心): ``/centre``, the whole territory on one map (一张图) beside one
table of indicators (一表), the hot spots, scorecards and 红黑榜, the trend, repeated places and the
downloads, all following ONE filter (category, status, overdue, period; quick periods with 近30天 by
default). A filter change reloads the page (``static/js/app.js``), so nothing on it is stale.

- The table (``analysis.indicators``): districts, then streets, then communities as a collapsible
  tree; a parent row is the subtotal of its children; children load per level from
  ``/centre/rows?parent=CODE&…`` (JSON, put into the page with textContent) and the columns sort
  within each level (``static/js/centre.js``).
- The map: cells or communities shaded by open cases or cases per 1,000 households, heat, case
  points (supervised ones ringed) from ``/api/v1/geo``; the hot-spot layer (Gi* classes with a
  legend) from ``/api/v1/hotspots`` (``static/js/centre.js``). Hazards are drawn by their own layer.
- Clicking an area opens its card from ``/centre/card/<code>`` (JSON).

A filter value that does not exist is named in a message on the page and left out (never an
empty table); a period without cases says so.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, jsonify, render_template, request
from sqlalchemy import select

from gridmap.boundaries.models import Area
from gridmap.incidents.models import STATUSES
from gridmap.web.i18n import gettext as _, js_messages
from gridmap.web.views.areas import children, open_counts, workers_of_cells
from gridmap.web.views.base import (AREA_CODE_RE, CENTRE_ROLES, GEO_API, STREET_ROLES, actor, area_or_abort,
                                    base_map, bp, cell_tooltip, get_db, hazards_layer_url, map_parts_for_page,
                                    may_see_area, roles_page_required)

SHADES = {"per_1000_households": (1, 2, 5, 10), "open_cases": (1, 3, 5, 10)}
TREND_UNITS = ("day", "week", "month")
#: messages of static/js/centre.js
JS_MESSAGES = ("展开或收起", "加载中…", "加载失败：{reason}", "热点 99%", "热点 95%", "热点 90%", "冷点 99%", "冷点 95%",
               "冷点 90%", "不显著", "未检验（无户数）", "热点分析", "{n} 个区域，{total} 件事件", "没有显著的热点或冷点。",
               "该时段没有事件，无法做热点分析。", "事件数", "q 值", "错误发现率校正", "未校正", "区域太少，无法做热点分析。")
PERIOD_LABELS = {"last30": "近30天", "month": "本月", "last_month": "上月", "quarter": "本季度", "year": "本年",
                 "custom": "自定义"}


def _tz() -> str:
    return current_app.config.get("GRIDMAP_TIMEZONE") or "Asia/Shanghai"


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo(_tz())).date()


def centre_filter(session):
    from gridmap.analysis.indicators import parse_filter

    return parse_filter(session, request.args, _today())


def _problem_text(field: str, code: str, value: str) -> str:
    texts = {
        "unknown_category": _("没有类别“{value}”，已忽略这一条件。", value=value),
        "unknown_status": _("没有状态“{value}”，已忽略这一条件。", value=value),
        "unknown_period": _("没有时段“{value}”，已改用近30天。", value=value),
        "bad_date": _("日期“{value}”无效（应为 YYYY-MM-DD），已忽略。", value=value),
        "reversed": _("起始日期晚于截止日期，已对调。"),
        "too_long": _("时间范围过长，已截为十年。"),
        "bad_flag": _("“仅看超时”的值“{value}”无效，已忽略。", value=value),
    }
    return texts.get(code, _("筛选条件无效：{reason}", reason=f"{field}={value}"))


def layer_filter(f) -> dict:
    """The filter in the geo API's query form (its status takes one status, or open/all)."""
    out = {"status": f.status, "from": f.date_from.isoformat(), "to": f.date_to.isoformat()}
    if f.category:
        out["category"] = f.category
    if f.overdue:
        out["overdue"] = "1"
    return out


def export_query(f) -> dict:
    """The filter in the export API's form (``incidents.queries`` filters)."""
    from gridmap.analysis.indicators import OPEN_STATUSES

    out = {"from": f.date_from.isoformat(), "to": f.date_to.isoformat()}
    if f.category:
        out["category"] = f.category
    if f.status == "open":
        out["status"] = ",".join(OPEN_STATUSES)
    elif f.status != "all":
        out["status"] = f.status
    if f.overdue:
        out["overdue"] = "1"
    return out


def _trend_unit(f) -> str:
    raw = (request.args.get("trend") or "").strip()
    if raw in TREND_UNITS:
        return raw
    days = (f.date_to - f.date_from).days + 1
    return "day" if days <= 45 else ("week" if days <= 190 else "month")


def _panels(session, act, f) -> dict:
    """Scorecards and 红黑榜, the trend chart and the repeated places of the filter's period."""
    from gridmap.analysis.common import AnalysisError, period
    from gridmap.analysis.rates import trend
    from gridmap.analysis.repeats import repeats
    from gridmap.analysis.scorecards import scorecards
    from gridmap.web.charts import legend_items, stacked_bars

    per = period(f.date_from, f.date_to, tz=_tz())
    out: dict = {}
    try:
        out["scores"] = scorecards(session, act, level="street", per=per)
    except AnalysisError as e:
        out["scores"] = {"rows": [], "red_list": [], "black_list": [], "message": e.message}
    unit = _trend_unit(f)
    try:
        tr = trend(session, act, unit=unit, by="category", category=f.category, per=per)
    except AnalysisError as e:
        tr = {"periods": [], "series": [], "total": 0, "message": e.message}
    out["trend"] = tr
    out["trend_unit"] = unit
    out["trend_svg"] = stacked_bars(tr["periods"], tr["series"], label=_("事件数趋势")) if tr["total"] else None
    out["trend_legend"] = legend_items(tr["series"]) if tr["total"] else []
    try:
        out["repeats"] = repeats(session, act, category=f.category, per=per, limit=10)
    except AnalysisError as e:
        out["repeats"] = {"places": [], "count": 0, "message": e.message}
    return out


@bp.get("/centre")
@roles_page_required(*CENTRE_ROLES)
def centre():
    from gridmap.analysis.indicators import CHILD_LEVEL, indicator_rows, indicator_total, top_areas
    from gridmap.web.geo_api import scope_extent
    from gridmap.web.maps import add_cases_layer, add_choropleth_layer, add_heat_layer
    from gridmap.web.views.cases import category_groups

    session = get_db()
    act = actor()
    f = centre_filter(session)
    for problem in f.problems:
        flash(_problem_text(*problem), "error")
    shade = (request.args.get("shade") or "").strip()
    shade = shade if shade in SHADES else "per_1000_households"
    hot_level = (request.args.get("hot") or "community").strip()
    hot_level = hot_level if hot_level in ("cell", "community") else "community"
    lf = layer_filter(f)
    area_filter = {k: v for k, v in lf.items() if k != "status"}
    m = base_map(scope_extent(session, act))
    legend = _("每千户未结事件") if shade == "per_1000_households" else _("未结事件数")
    add_choropleth_layer(m, f"{GEO_API}/cells", property=shade, breaks=SHADES[shade], legend=legend, level="cell",
                         name="areas", filter=area_filter, tooltip=cell_tooltip())
    add_heat_layer(m, f"{GEO_API}/heat", name="heat", filter=lf)
    add_cases_layer(m, f"{GEO_API}/cases", name="cases", filter=lf, case_url="/cases/{id}")
    tz = _tz()
    rows = []
    for r in indicator_rows(session, act, f, tz=tz):
        r["depth"], r["parent"] = 0, None
        rows.append(r)
    if len(rows) == 1 and rows[0]["has_children"]:  # one district: open it at once
        top = top_areas(session, act)[0]
        rows[0]["expanded"] = True
        for r in indicator_rows(session, act, f, parent=top, tz=tz):
            r["depth"], r["parent"] = 1, top.code
            rows.append(r)
    total = indicator_total(session, act, f, tz=tz)
    with_register(session, act, rows)
    for k in REGISTER_KEYS:  # the register's totals: the sum of the top rows
        total[k] = sum(r[k] for r in rows if r["depth"] == 0)
    hotspot_query = {"level": hot_level, "from": f.date_from.isoformat(), "to": f.date_to.isoformat(),
                     "simplify_m": "5", **({"category": f.category} if f.category else {})}
    return render_template(
        "centre.html", map=map_parts_for_page(m), map_name=m.get_name(), f=f, lf=lf, shade=shade, shades=SHADES,
        rows=rows, total=total, child_level=CHILD_LEVEL, groups=category_groups(session), statuses=STATUSES,
        periods=PERIOD_LABELS, hazards_url=hazards_layer_url(), hot_level=hot_level, hotspot_query=hotspot_query,
        export_query=export_query(f), ledger_areas=top_areas(session, act),
        centre_messages=js_messages(*JS_MESSAGES), **_panels(session, act, f))


REGISTER_KEYS = ("reg_households", "reg_persons", "reg_organisations")


def with_register(session, act, rows: list[dict]) -> list[dict]:
    """Each indicator row gains the base register's households, residents and organisations of its
    area (within the reader's scope of the register), counted per level in one pass each."""
    from gridmap.registry.service import summary
    from gridmap.web.registry_api import registry_scope

    scope = registry_scope(session, act)
    by_level: dict[str, set[int]] = {}
    for r in rows:
        if r.get("id") is not None:
            by_level.setdefault(r["level"], set()).add(r["id"])
    counts = {}
    for level, ids in by_level.items():
        for x in summary(session, level, scope=scope, area_ids=ids)["rows"]:
            counts[x["id"]] = x
    for r in rows:
        x = counts.get(r.get("id"), {})
        r["reg_households"], r["reg_persons"], r["reg_organisations"] = (
            int(x.get("households", 0)), int(x.get("persons", 0)), int(x.get("organisations", 0)))
    return rows


@bp.get("/centre/rows")
@roles_page_required(*CENTRE_ROLES)
def centre_rows():
    """JSON: the indicator rows of the children of ``parent`` (an area code) under the page's filter.

    An unknown parent, or one outside the reader's scope, answers 404 alike."""
    from gridmap.analysis.indicators import indicator_rows

    session = get_db()
    act = actor()
    code = (request.args.get("parent") or "").strip()
    if not code or not AREA_CODE_RE.match(code):
        abort(404)
    parent = session.scalar(select(Area).where(Area.code == code, Area.retired_at.is_(None)))
    if parent is None or not may_see_area(session, act, parent):
        abort(404)
    f = centre_filter(session)
    rows = indicator_rows(session, act, f, parent=parent, tz=_tz())
    with_register(session, act, rows)
    resp = jsonify({"parent": parent.code, "rows": rows, "filter": f.query(),
                    "problems": [_problem_text(*p) for p in f.problems]})
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


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
