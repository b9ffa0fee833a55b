"""A small dictionary translator for the web pages: Chinese (zh-CN) first, English available.

Owns: the language of a request (``?lang=en`` or ``?lang=zh`` sets the ``gm_lang`` cookie; then the
cookie; then the logged-in user's ``language``; then ``GRIDMAP_DEFAULT_LANGUAGE``), ``_()`` for
Python and Jinja (the message is the Chinese text; English comes from ``EN``; ``{name}``
placeholders are filled with ``str.format``), labels of statuses, actions, roles and levels, and
the ``localtime`` filter that shows every time in Asia/Shanghai (``GRIDMAP_TIMEZONE``).

``_()`` returns plain text: Jinja's autoescape still escapes it, and so do the values filled in.
A message missing from ``EN`` is shown in Chinese (``tests/test_i18n.py`` finds every ``_("…")`` in
the templates, views and scripts and fails when one has no English).
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app, g, has_request_context, request

LANGS = ("zh_CN", "en")
COOKIE = "gm_lang"
#: the language tag of each language in HTML (<html lang>)
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}

# ----------------------------------------------------------------------------- labels (Chinese)
STATUS_ZH = {
    "reported": "已上报", "filed": "已立案", "rejected": "不予立案", "dispatched": "已派遣",
    "in_progress": "处置中", "handled": "已处置", "verifying": "核查中", "closed": "已结案",
    "evaluated": "已评价", "parked": "挂账",
}
ACTION_ZH = {
    "report": "上报", "place": "人工定位", "photo": "上传照片",
    "file": "立案", "reject": "不予立案", "mark_duplicate": "标记重复", "dispatch": "派遣", "accept": "受理",
    "return": "回退", "reassign": "改派", "escalate": "升级", "request_extension": "申请延期",
    "approve_extension": "批准延期", "deny_extension": "驳回延期", "park": "挂账", "unpark": "解除挂账",
    "feedback": "处置反馈", "self_handle": "自行处置", "submit": "提交核查", "verify_pass": "核查通过（结案）",
    "verify_fail": "核查不通过（返工）", "evaluate": "评价",
    "confirm": "现场核实属实", "refute": "核实不属实", "note": "备注", "supervise": "发起督办",
}
ROLE_ZH = {
    "worker": "网格员", "head": "网格长", "community": "社区/村", "street": "街道/乡镇", "district": "区县",
    "city": "市级", "admin": "管理员", "department": "职能部门", "system": "系统",
}
LEVEL_ZH = {"district": "区县", "street": "街道/乡镇", "community": "社区/村", "cell": "网格",
            "department": "职能部门", "unroutable": "待人工定位"}
SOURCE_ZH = {"patrol": "网格员巡查", "resident": "居民上报", "hotline": "12345热线", "video": "视频发现",
             "upper": "上级交办", "department": "部门移交", "open311": "Open311", "import": "批量导入"}

# ----------------------------------------------------------------------------- English
EN: dict[str, str] = {
    # layout, navigation
    "网格化管理": "Grid management",
    "gridmap 网格化管理": "gridmap grid management",
    "主菜单": "Main menu",
    "我的网格": "My cells",
    "事件列表": "Cases",
    "上报事件": "Report a case",
    "街道": "Street",
    "边界编辑": "Boundary editor",
    "指挥中心": "Centre",
    "退出": "Log out",
    "语言": "Language",
    "中文": "中文",
    "English": "English",
    "跳到正文": "Skip to content",
    "当前用户": "Signed in as",
    # login
    "登录": "Log in",
    "用户名": "Username",
    "密码": "Password",
    "用户名或密码错误。": "Wrong username or password.",
    "尝试次数过多，请 {minutes} 分钟后再试。": "Too many attempts; try again in {minutes} minutes.",
    "请填写用户名和密码。": "Enter your username and password.",
    "请先登录。": "Please log in first.",
    "已退出登录。": "You have logged out.",
    # errors
    "出错了": "Something went wrong",
    "请求无效（{code}）": "Bad request ({code})",
    "表单已过期或无效，请刷新页面后重试。": "The form has expired or is invalid; reload the page and try again.",
    "无权访问（403）": "Forbidden (403)",
    "您无权查看此内容。": "You may not see this.",
    "未找到（404）": "Not found (404)",
    "您要找的内容不存在。": "What you are looking for does not exist.",
    "不允许的请求方式（405）": "Method not allowed (405)",
    "错误（{code}）": "Error ({code})",
    "返回首页": "Back to the start page",
    # generic
    "编号": "Number",
    "代码": "Code",
    "名称": "Name",
    "户数": "Households",
    "网格员": "Workers",
    "状态": "Status",
    "类别": "Category",
    "描述": "Description",
    "地址": "Address",
    "上报时间": "Reported",
    "处置时限": "Deadline",
    "超时": "Overdue",
    "紧急": "Urgent",
    "督办": "Supervised",
    "无": "none",
    "是": "yes",
    "否": "no",
    "上一页": "Previous",
    "下一页": "Next",
    "第 {page} / {pages} 页，共 {total} 件": "Page {page} of {pages}, {total} cases",
    "没有事件。": "No cases.",
    "查看": "Open",
    "地图": "Map",
    "全部": "All",
    "筛选": "Filter",
    "应用": "Apply",
    "加载中…": "Loading…",
    "未知": "unknown",
    # worker page
    "我的网格与事件": "My cells and cases",
    "我负责的网格": "Cells I am responsible for",
    "您目前没有负责的网格。": "You are not responsible for any cell at the moment.",
    "待办事件（按处置时限排序）": "Open cases (by deadline)",
    "图例": "Legend",
    "超时事件": "Overdue case",
    "紧急事件": "Urgent case",
    "一般事件": "Other case",
    "隐患": "Hazards",
    # cases list
    "辖区内的事件": "Cases in my area",
    "仅看超时": "Overdue only",
    "仅看未结": "Open only",
    "起始日期": "From",
    "截止日期": "To",
    # case page
    "事件 {number}": "Case {number}",
    "事件详情": "Case details",
    "来源": "Source",
    "上报人": "Reporter",
    "位置": "Location",
    "网格": "Cell",
    "社区/村": "Community",
    "街道/乡镇": "Street",
    "分派": "Routing",
    "分派给": "Assigned to",
    "分派原因": "Routing reason",
    "分派层级": "Routing level",
    "已分派给 {name}。": "Routed to {name}.",
    "尚未分派：等待人工定位。": "Not routed yet: waiting for manual placement.",
    "处理经过": "History",
    "照片": "Photos",
    "暂无照片。": "No photos.",
    "可执行的操作": "Actions",
    "当前没有您可执行的操作。": "There is nothing you can do on this case now.",
    "说明": "Comment",
    "（必填）": "(required)",
    "照片（可选）": "Photo (optional)",
    "满意度": "Satisfaction",
    "原事件编号（ID）": "Original case (id)",
    "指派给网格员": "Assign to worker",
    "（保持当前）": "(keep current)",
    "操作已完成：{action}。": "Done: {action}.",
    "事件已被他人更新，请查看最新状态后重试。": "Someone else changed the case; check its current state and try again.",
    "无法执行该操作：{reason}": "The action could not be done: {reason}",
    "照片无法保存：{reason}": "The photo could not be saved: {reason}",
    "版本": "Version",
    "延期申请待审批": "Extension request waiting",
    "非常不满意": "very dissatisfied",
    "不满意": "dissatisfied",
    "一般": "neutral",
    "满意": "satisfied",
    "非常满意": "very satisfied",
    "事件位置": "Case location",
    "无坐标": "no coordinates",
    "超时（已过处置时限）": "Overdue (past the deadline)",
    "系统": "system",
    # report page
    "上报新事件": "Report a new case",
    "在地图上点击事件位置，或使用我的位置。": "Tap the map where the case is, or use my location.",
    "使用我的位置": "Use my location",
    "经度": "Longitude",
    "纬度": "Latitude",
    "请选择类别": "Choose a category",
    "提交上报": "Submit",
    "请在地图上选择位置。": "Choose the location on the map.",
    "请选择事件类别。": "Choose a category.",
    "请填写事件描述。": "Describe the case.",
    "位置不在任何网格内，请重新选择。": "The location is outside every cell; choose again.",
    "上报未被接受：{reason}": "The report was not accepted: {reason}",
    "事件已上报。": "The case has been reported.",
    "无法获取位置：{reason}": "Cannot get your location: {reason}",
    "此浏览器不支持定位。": "This browser cannot tell your location.",
    "已选位置：{lon}, {lat}": "Chosen location: {lon}, {lat}",
    # street page
    "街道概况": "Street overview",
    "选择街道": "Choose a street",
    "社区/村与网格": "Communities and cells",
    "网格数": "Cells",
    "负责网格员": "Responsible workers",
    "未结事件": "Open cases",
    "（未配备）": "(none assigned)",
    "打开边界编辑": "Open the boundary editor",
    "没有可显示的街道。": "There is no street to show.",
    # area page
    "{level}：{name}": "{level}: {name}",
    "上级": "Parent",
    "下级区域": "Sub-areas",
    "人口": "Population",
    "网格员（在岗责任）": "Responsible workers (current)",
    "主责": "primary",
    "备岗": "backup",
    "电话": "Phone",
    "该区域的未结事件": "Open cases in this area",
    "查看全部事件": "All cases",
    # editor
    "边界编辑器": "Boundary editor",
    "在地图上绘制新的网格边界或分割线，然后点击“预览”检查。": "Draw a new cell boundary or a dividing line on "
                                               "the map, then press “Preview” to check it.",
    "预览": "Preview",
    "清除": "Clear",
    "请先绘制图形。": "Draw a shape first.",
    "几何有效。": "The geometry is valid.",
    "几何无效：{reason}": "The geometry is invalid: {reason}",
    "涉及的网格：": "Cells touched:",
    "没有涉及任何网格。": "It touches no cell.",
    "预览失败：{reason}": "The preview failed: {reason}",
    "问题": "Problems",
    "草稿已保存。": "The draft has been saved.",
    "草稿 {id} 已保存（{status}），错误 {errors} 个，警告 {warnings} 个。":
        "Draft {id} saved ({status}): {errors} errors, {warnings} warnings.",
    "保存为草稿": "Save as a draft",
    "操作": "Operation",
    "目标区域代码（点击地图上的网格可填入）": "Target area code (click a cell on the map to fill it in)",
    "用分割线拆分网格": "Split a cell along a line",
    "按多边形重绘网格": "Redraw a cell as the polygon",
    "在社区内新建网格": "Create a cell in a community",
    "把多边形划入目标区域": "Move the polygon into the target area",
    "请先填写目标区域代码。": "Enter the target area code first.",
    "此操作需要一条线。": "This operation needs a line.",
    "此操作需要一个多边形。": "This operation needs a polygon.",
    "保存失败：{reason}": "Saving failed: {reason}",
    # centre
    "一张图": "One map",
    "全域事件态势": "Cases across the territory",
    "着色依据": "Shade by",
    "未结事件数": "open cases",
    "每千户未结事件": "open cases per 1,000 households",
    "热力图": "Heat map",
    "事件点": "Case points",
    "未结": "open",
    "指标一表": "Indicators",
    "按街道": "By street",
    "按社区/村": "By community",
    "统计期": "Period",
    "立案数": "Filed",
    "应结案数": "Due",
    "结案数": "Closed",
    "结案率": "Closure rate",
    "按期结案率": "On-time rate",
    "超时未结": "Overdue open",
    "返工率": "Rework rate",
    "回退率": "Return rate",
    "自行处置数": "Self-handled",
    "结案率 = 期内结案数 / 应结案数；按期结案率 = 按期结案数 / 应结案数。":
        "Closure rate = closed in the period / due; on-time rate = closed on time / due.",
    "打开区域页面": "Open the area page",
    "点击网格查看详情。": "Click a cell for its card.",
    "合计": "Total",
    "时间范围无效：{reason}": "Invalid period: {reason}",
    "筛选条件无效：{reason}": "Invalid filter: {reason}",
}

# English of the label dictionaries (same Chinese text may appear in several)
EN.update({
    "已上报": "reported", "已立案": "filed", "不予立案": "rejected", "已派遣": "dispatched", "处置中": "in progress",
    "已处置": "handled", "核查中": "verifying", "已结案": "closed", "已评价": "evaluated", "挂账": "parked",
    "上报": "report", "人工定位": "placed by hand", "上传照片": "photo", "立案": "file", "标记重复": "mark duplicate",
    "派遣": "dispatch", "受理": "accept", "回退": "return", "改派": "reassign", "升级": "escalate",
    "申请延期": "request an extension", "批准延期": "approve the extension", "驳回延期": "deny the extension",
    "解除挂账": "unpark", "处置反馈": "report handling", "自行处置": "self-handle", "提交核查": "submit for checking",
    "核查通过（结案）": "check passed (close)", "核查不通过（返工）": "check failed (rework)", "评价": "evaluate",
    "网格长": "grid head", "区县": "district", "市级": "city", "管理员": "administrator",
    "职能部门": "department", "待人工定位": "waiting for placement",
    "网格员巡查": "worker patrol", "居民上报": "resident", "12345热线": "12345 hotline", "视频发现": "video",
    "上级交办": "order from above", "部门移交": "department", "Open311": "Open311", "批量导入": "import",
})

def _merge_area_messages() -> None:
    from gridmap.web.messages import collect

    for zh, text in collect().items():
        if zh in EN and EN[zh] != text:
            raise ValueError(f"{zh!r} is translated twice: {EN[zh]!r} and {text!r}")
        EN[zh] = text


_merge_area_messages()
# role/level labels that double as table headings (网格员, 社区/村, 街道/乡镇, 网格) are defined above


# ----------------------------------------------------------------------------- language of a request
def normalize(lang: str | None) -> str | None:
    """"zh", "zh-CN", "zh_cn" → "zh_CN"; "en", "en-US" → "en"; anything else → None."""
    if not lang:
        return None
    v = str(lang).strip().replace("-", "_").lower()
    if v.startswith("zh"):
        return "zh_CN"
    if v.startswith("en"):
        return "en"
    return None


def get_lang() -> str:
    """The language of the current request (computed once per request)."""
    if not has_request_context():
        return "zh_CN"
    if "gm_lang" in g:
        return g.gm_lang
    lang = normalize(request.args.get("lang")) or normalize(request.cookies.get(COOKIE))
    if lang is None:
        try:
            from gridmap.web.auth import current_user

            user = current_user()
            lang = normalize(user.language) if user is not None else None
        except Exception:  # noqa: BLE001 - no database (static files, early errors): use the default
            lang = None
    lang = lang or normalize(current_app.config.get("GRIDMAP_DEFAULT_LANGUAGE")) or "zh_CN"
    g.gm_lang = lang
    return lang


def gettext(message: str, **values) -> str:
    """``message`` (Chinese) in the request's language, with ``{placeholders}`` filled."""
    text = EN.get(message, message) if get_lang() == "en" else message
    if values:
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError):
            return text
    return text


_ = gettext


def label(table: dict[str, str], key: str | None) -> str:
    if key is None:
        return ""
    zh = table.get(key)
    return gettext(zh) if zh else str(key)


def status_label(s):
    return label(STATUS_ZH, s)


def action_label(a):
    return label(ACTION_ZH, a)


def role_label(r):
    return label(ROLE_ZH, r)


def level_label(lv):
    return label(LEVEL_ZH, lv)


def source_label(s):
    return label(SOURCE_ZH, s)


def name_of(obj) -> str:
    """A category's (or anything with ``name``/``name_en``) name in the request's language."""
    if obj is None:
        return ""
    if get_lang() == "en" and getattr(obj, "name_en", None):
        return obj.name_en
    return getattr(obj, "name", "") or ""


# ----------------------------------------------------------------------------- times
def _zone() -> ZoneInfo:
    tz = "Asia/Shanghai"
    try:
        tz = current_app.config.get("GRIDMAP_TIMEZONE") or tz
    except RuntimeError:
        pass
    return ZoneInfo(tz)


def localtime(value, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC (or naive = UTC) datetime, or ISO text, shown in Asia/Shanghai."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(_zone()).strftime(fmt)
    if isinstance(value, dt.date):
        return value.strftime(fmt.split(" ")[0])
    return str(value)


def percent(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


# ----------------------------------------------------------------------------- Flask wiring
def js_messages(*messages: str) -> dict[str, str]:
    """Messages for a page's script, translated (the script reads them from a JSON data block)."""
    return {m: gettext(m) for m in messages}


def init_i18n(app) -> None:
    """Context processor, Jinja filters and the cookie of ``?lang=``."""
    app.jinja_env.globals.update(_=gettext)
    app.jinja_env.filters.update(localtime=localtime, status=status_label, action_label=action_label,
                                 role_label=role_label, level_label=level_label, source_label=source_label,
                                 name_of=name_of, percent=percent)

    @app.context_processor
    def _i18n_context():
        lang = get_lang()
        return {"_": gettext, "lang": lang, "html_lang": HTML_LANG[lang]}

    @app.after_request
    def _remember_lang(resp):
        lang = normalize(request.args.get("lang"))
        if lang and request.cookies.get(COOKIE) != lang:
            resp.set_cookie(COOKIE, lang, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                            secure=bool(app.config.get("SESSION_COOKIE_SECURE")))
        return resp
