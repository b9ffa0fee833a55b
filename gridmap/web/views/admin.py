"""The audit log page for administrators: ``/admin/audit`` (admin role only).

Owns: reading the page's filters (action, who, from, to: local dates, both included), asking
``gridmap.audit.search`` and rendering the rows in the reader's language (codes and parameters
are stored, text is made here). Bad filters are dropped with a message, never a 500.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app, flash, render_template, request

from gridmap import audit
from gridmap.web.i18n import gettext as _
from gridmap.web.views.base import bp, get_db, page_arg_int, roles_page_required
from gridmap.web.views.worker import pagination

PER_PAGE = 100
#: what each action code is called on the page
ACTION_LABELS = {
    "login": "登录成功", "login.failed": "登录失败", "login.throttled": "登录受限（尝试过多）", "logout": "退出登录",
    "token.use": "使用 API 令牌", "token.create": "创建 API 令牌", "token.revoke": "吊销 API 令牌",
    "user.create": "创建用户", "user.disable": "停用用户", "user.enable": "启用用户", "user.passwd": "重设密码",
    "export.personal": "导出个人信息", "boundary.publish": "发布边界",
}


def _day(raw: str | None, name: str) -> dt.date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        d = dt.date.fromisoformat(raw[:10])
        if not dt.date(1970, 1, 1) <= d <= dt.date(9998, 12, 31):
            raise ValueError(raw)
        return d
    except ValueError:
        flash(_("时间范围无效：{reason}", reason=raw[:20]), "error")
        return None


def _utc(d: dt.date) -> dt.datetime:
    zone = ZoneInfo(current_app.config.get("GRIDMAP_TIMEZONE") or "Asia/Shanghai")
    return dt.datetime.combine(d, dt.time(), zone).astimezone(dt.timezone.utc)


@bp.get("/admin/audit")
@roles_page_required("admin")
def audit_log():
    args = request.args
    action = (args.get("action") or "").strip()
    if action and action not in audit.ACTIONS:
        flash(_("筛选条件无效：{reason}", reason=action[:40]), "error")
        action = ""
    who = (args.get("who") or "").strip()[:120]
    d_from, d_to = _day(args.get("from"), "from"), _day(args.get("to"), "to")
    page = page_arg_int("page")
    result = audit.search(get_db(), action=action or None, actor=who or None,
                          date_from=_utc(d_from) if d_from else None,
                          date_to=_utc(d_to + dt.timedelta(days=1)) if d_to else None,
                          limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    rows = [{"at": e.at, "action": _(ACTION_LABELS.get(e.action, e.action)), "code": e.action,
             "who": e.actor_name or "", "target": e.target or "", "address": e.address or "",
             "detail": ", ".join(f"{k}={v}" for k, v in e.params.items() if v not in (None, ""))}
            for e in result.entries]
    actions = [(code, _(ACTION_LABELS[code])) for code in audit.ACTIONS]
    return render_template("admin_audit.html", rows=rows, actions=actions, action=action, args=args,
                           pager=pagination(page, result.total, PER_PAGE))
