"""Routing reasons and system comments rendered per language from their codes and parameters.

Owns: the Chinese message of every routing reason code (``gridmap.assign.router.REASON_CODES``)
and system comment code (intake's auto-filing and dispatch), translated with ``_()`` like every
page text (English in ``gridmap.web.messages.centre``), and the Jinja filters ``route_reason``
(a case) and ``event_comment`` (a history event). A row stored before the codes existed, or a
reason typed by a person, has no code and is shown as stored.
"""
from __future__ import annotations

import json

from gridmap.web.i18n import gettext as _, level_label

ROUTE_TEXT = {
    "department": "类别“{category}”按权责清单交由 {department}",
    "unplaced": "未能定位到网格，等待人工定位",
    "unplaced.low_confidence": "地址匹配置信度低于 {threshold}，等待人工定位",
    "cell.primary": "网格 {cell}：专职网格员 {worker}",
    "cell.substitute": "网格 {cell}：网格员 {primary} 请假，由代班 {worker} 处理",
    "cell.backup": "网格 {cell}：网格员 {primary} 请假，由备岗 {worker} 处理",
    "cell.backup_no_primary": "网格 {cell}：无在岗专职网格员，由备岗 {worker} 处理",
    "cell.nobody": "网格 {cell}：无在岗网格员",
    "fallback.staff": "网格 {cell} 无人在岗，属地兜底：{level} {area} 的 {worker}",
    "fallback.queue": "网格 {cell} 无人在岗，属地兜底：{level} {area} 待办",
    "escalated.staff": "超时升级（第 {escalation} 级）：{level} {area} 的 {worker}",
    "escalated.queue": "超时升级（第 {escalation} 级）：{level} {area} 待办，无人在岗",
    "escalated.no_area": "超时升级（第 {escalation} 级）：该事件没有更高一级的区域",
    "returned": "{by} 回退：{reason}",
}
PLACEMENT_TEXT = {
    "snapped_m": "（吸附 {snapped_m} 米至网格 {snapped_cell}）",
    "address_score": "（按地址定位，匹配度 {address_score}）",
}
COMMENT_TEXT = {
    "auto_filed": "上报时自动立案",
    "auto_dispatched": "上报时自动派遣",
    "filed_on_placement": "人工定位后立案",
    "dispatched_on_placement": "人工定位后派遣",
}


def _params(raw) -> dict:
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        out = json.loads(raw)
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def render_route_reason(code: str | None, params, text: str | None) -> str | None:
    """The reason in the page's language; the stored text when there is no (known) code."""
    if not code or code not in ROUTE_TEXT:
        return text
    from gridmap.assign.router import REASON_CODES

    p = _params(params)
    if any(k not in p for k in REASON_CODES.get(code, ())):  # parameters missing from an odd row
        return text
    values = {k: ("" if v is None else v) for k, v in p.items()}
    if "level" in values:
        values["level"] = level_label(str(values["level"]))
    out = _(ROUTE_TEXT[code], **values)
    for key, tmpl in PLACEMENT_TEXT.items():
        if key in p:
            out += _(tmpl, **values)
    return out


def route_reason(case) -> str | None:
    return render_route_reason(getattr(case, "route_reason_code", None), getattr(case, "route_reason_params", None),
                               case.route_reason)


def event_comment(ev) -> str | None:
    code = getattr(ev, "comment_code", None)
    if code in COMMENT_TEXT:
        return _(COMMENT_TEXT[code], **_params(getattr(ev, "comment_params", None)))
    return ev.comment


def init_reasons(app) -> None:
    app.jinja_env.filters.update(route_reason=route_reason, event_comment=event_comment)
