"""What every page shares: the ``pages`` blueprint, the login and role checks, scope checks that
answer 404 both for no such thing and for a thing outside the user's scope, the
Content-Security-Policy with its per-request nonce, and the helper that puts a folium map into a page.

Scope rules come from ``gridmap.accounts.scope``; nothing here decides who may see a case beyond
asking it. Pages answer like the JSON API: an existing case or area that is not yours is a 404,
word for word the answer for a missing one, so ids and codes cannot be probed. A page the user's
role may not open at all (the centre for a grid worker) is a 403.
"""
from __future__ import annotations

import re
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, request, url_for
from markupsafe import Markup
from sqlalchemy import select

from gridmap import get_session
from gridmap.accounts.actor import Actor
from gridmap.boundaries.models import Area
from gridmap.db import MAX_ID
from gridmap.incidents.models import Case
from gridmap.web.auth import current_actor, current_user
from gridmap.web.csp import add_nonce, csp_nonce  # noqa: F401  (pages use both)

bp = Blueprint("pages", __name__)

#: roles that see the whole city
CITY_ROLES = ("city", "admin")
#: roles of the street office page and the boundary editor
STREET_ROLES = ("street", "district", "city", "admin")
#: roles of the governance centre (一张图)
CENTRE_ROLES = ("district", "city", "admin")
#: roles that report cases from the field map
WORKER_ROLES = ("worker", "head")
#: statuses after which a case is no longer open
CLOSED_STATUSES = ("rejected", "closed", "evaluated")
RUNNING_STATUSES = ("dispatched", "in_progress")
AREA_CODE_RE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]|%[01][0-9a-f]|%7f", re.I)


# ----------------------------------------------------------------------------- login and roles
def safe_next(target: str | None) -> str | None:
    """A local path to return to after login, or None (no other host, no scheme, no //)."""
    if not target or not isinstance(target, str) or len(target) > 500:
        return None
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if _CONTROL.search(target):  # CR/LF (raw or %-encoded) would split the Location header
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def login_page_required(view):
    """Anonymous visitors are sent to the login page (and back afterwards)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            nxt = request.full_path if request.method == "GET" else None
            if nxt and nxt.endswith("?"):
                nxt = nxt[:-1]
            return redirect(url_for("pages.login", next=safe_next(nxt)))
        return view(*args, **kwargs)

    return wrapped


def roles_page_required(*roles):
    def deco(view):
        @wraps(view)
        @login_page_required
        def wrapped(*args, **kwargs):
            if current_user().role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return deco


def actor() -> Actor:
    a = current_actor()
    if a is None:  # pragma: no cover - the decorators run first
        abort(401)
    return a


def landing_url(user) -> str:
    """Where a user starts: a worker their cells, a community its page, a street office its street,
    a district or city centre the one map."""
    role = user.role
    if role == "worker":
        return url_for("pages.worker")
    if role in ("head", "community"):
        code = user.area.code if user.area is not None else None
        return url_for("pages.area", code=code) if code else url_for("pages.cases")
    if role == "street":
        return url_for("pages.street")
    if role in CENTRE_ROLES:
        return url_for("pages.centre")
    return url_for("pages.cases")


# ----------------------------------------------------------------------------- scope: 404
def ancestors(session, area: Area) -> list[Area]:
    out, a, seen = [], area.parent, set()
    while a is not None and a.id not in seen:
        seen.add(a.id)
        out.append(a)
        a = a.parent
    return out


def worker_cells(session, act: Actor) -> list[int]:
    from gridmap.accounts.scope import worker_cell_ids

    if act.worker_id is None:
        return []
    if "gm_worker_cells" not in g:
        g.gm_worker_cells = worker_cell_ids(session, act.worker_id)
    return g.gm_worker_cells


def may_see_area(session, act: Actor, area: Area) -> bool:
    """The area is the user's own area or below it (a worker: one of their cells)."""
    if act.role in CITY_ROLES or act.is_system:
        return True
    if act.role == "worker":
        return area.id in set(worker_cells(session, act))
    if act.area_id is None:
        return False
    return area.id == act.area_id or any(a.id == act.area_id for a in ancestors(session, area))


def area_or_abort(session, act: Actor, code: str) -> Area:
    """The area with this code: 404 when the code is malformed, unknown or outside the scope."""
    if not code or not AREA_CODE_RE.match(code):
        abort(404)
    area = session.scalar(select(Area).where(Area.code == code))
    if area is None:
        abort(404)
    if not may_see_area(session, act, area):
        abort(404)
    return area


def may_see_case(session, act: Actor, case: Case) -> bool:
    from gridmap.accounts.scope import case_filter

    if act.user_id is not None and act.user_id == case.reporter_user_id:
        return True
    return session.scalar(select(Case.id).where(Case.id == case.id, case_filter(session, act))) is not None


def case_or_abort(session, act: Actor, case_id: int) -> Case:
    """The case: 404 when there is none or it is outside the user's scope (the same answer)."""
    if not isinstance(case_id, int) or case_id < 1 or case_id > MAX_ID:
        abort(404)
    case = session.get(Case, case_id)
    if case is None:
        abort(404)
    if not may_see_case(session, act, case):
        abort(404)
    return case


def is_overdue(case: Case, now) -> bool:
    return bool(case.overdue or (case.deadline_at is not None and case.status in RUNNING_STATUSES
                                 and case.deadline_at < now))


# ----------------------------------------------------------------------------- CSP and maps
def map_parts_for_page(m) -> dict[str, Markup]:
    """``gridmap.web.maps.map_parts`` with the CSP nonce on its inline scripts and styles."""
    from gridmap.web.maps import map_parts

    parts = map_parts(m)
    nonce = csp_nonce()
    return {k: add_nonce(v, nonce) for k, v in parts.items()}


def basemap_img_hosts() -> list[str]:
    try:
        from gridmap.web.maps import basemap_hosts

        return [f"https://{h}" for h in basemap_hosts() if h]
    except Exception:  # noqa: BLE001 - a bad basemap setting must not break every page
        return []


def content_security_policy() -> str:
    nonce = csp_nonce()
    img = " ".join(["'self'", "data:", "blob:"] + basemap_img_hosts())
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        f"img-src {img}",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def url_of_rule(path: str, method: str = "GET") -> bool:
    """Whether some rule answers ``method`` on exactly ``path``."""
    adapter = current_app.url_map.bind("localhost")
    try:
        adapter.match(path, method=method)
        return True
    except Exception:  # noqa: BLE001 - NotFound / MethodNotAllowed / RequestRedirect
        return False


def get_db():
    return get_session()


def area_bounds(session, area_ids) -> tuple[float, float, float, float] | None:
    """(minlon, minlat, maxlon, maxlat) of the current geometries of these areas (a handful: one street)."""
    import shapely
    from sqlalchemy import func

    from gridmap.boundaries.models import AreaGeometry

    ids = list(area_ids)
    if not ids:
        return None
    wkbs = session.scalars(select(func.ST_AsBinary(AreaGeometry.geom))
                           .where(AreaGeometry.area_id.in_(ids), AreaGeometry.valid_to.is_(None))).all()
    geoms = [shapely.from_wkb(bytes(w)) for w in wkbs if w is not None]
    if not geoms:
        return None
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    return float(x0), float(y0), float(x1), float(y1)


def page_arg_int(name: str, default: int = 1, hi: int = 100000) -> int:
    raw = request.args.get(name, "")
    try:
        v = int(raw)
    except ValueError:
        return default
    return v if 1 <= v <= hi else default


# ----------------------------------------------------------------------------- map helpers
GEO_API = "/api/v1/geo"


def cell_tooltip() -> list[list[str]]:
    from gridmap.web.i18n import gettext as _

    return [["name", ""], ["code", _("代码")], ["households", _("户数")], ["open_cases", _("未结事件")],
            ["per_1000_households", _("每千户未结事件")]]


def base_map(bounds=None, **options):
    """A map of the configured basemap fitted to ``bounds`` (minlon, minlat, maxlon, maxlat)."""
    from gridmap.web.maps import make_map

    return make_map(bounds=bounds, control_scale=True, **options)


def hazards_layer_url() -> str | None:
    """The bbox GeoJSON endpoint of hazards, when the hazards API is installed."""
    for path in ("/api/v1/hazards/geo", f"{GEO_API}/hazards"):
        if url_of_rule(path):
            return path
    return None


# ----------------------------------------------------------------------------- template context
def nav_items(user) -> list[tuple[str, str, str]]:
    """(endpoint key, label, url) of the menu for this user's role."""
    from gridmap.web.i18n import gettext as _

    if user is None:
        return []
    role = user.role
    items = []
    if role in ("worker", "head") and user.worker_id:
        items.append(("worker", _("我的网格"), url_for("pages.worker")))
        items.append(("worker_registry", _("房屋人口"), url_for("pages.worker_registry")))
    if role in ("head", "community") and user.area is not None:
        items.append(("area", _("社区/村"), url_for("pages.area", code=user.area.code)))
    if role in CENTRE_ROLES:
        items.append(("centre", _("指挥中心"), url_for("pages.centre")))
    if role in ("head", "community", "street", "district", "city", "admin") and "pages.hazards" in current_app.view_functions:
        items.append(("hazards", _("隐患台账"), url_for("pages.hazards")))
    if role in STREET_ROLES:
        items.append(("street", _("街道"), url_for("pages.street")))
        items.append(("editor", _("边界编辑"), url_for("pages.editor")))
    if role in ("head", "community", "street", "district", "city", "admin"):
        items.append(("queue", _("待定位"), url_for("pages.queue")))
    items.append(("cases", _("事件列表"), url_for("pages.cases")))
    if role != "department":
        items.append(("report", _("上报事件"), url_for("pages.report")))
    if role == "admin":
        items.append(("audit_log", _("审计日志"), url_for("pages.audit_log")))
    return items


def lang_url(lang: str) -> str:
    """This page in another language (the other query parameters kept)."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [lang]
    from urllib.parse import urlencode

    return request.path + "?" + urlencode(args, doseq=True)


#: messages every page's script may need (the rest is passed per page)
COMMON_JS_MESSAGES = (
    "加载中…", "已选位置：{lon}, {lat}", "无法获取位置：{reason}", "此浏览器不支持定位。", "请先绘制图形。",
    "几何有效。", "几何无效：{reason}", "涉及的网格：", "没有涉及任何网格。", "预览失败：{reason}", "代码", "户数",
    "网格员", "未结事件", "超时", "打开区域页面", "（未配备）", "草稿已保存。", "问题",
    "草稿 {id} 已保存（{status}），错误 {errors} 个，警告 {warnings} 个。", "请先填写目标区域代码。", "此操作需要一条线。",
    "此操作需要一个多边形。", "保存失败：{reason}", "隐患",
)


@bp.app_context_processor
def _page_context():
    from gridmap.web.i18n import js_messages

    user = current_user()
    return {"me": user, "nav": nav_items(user), "lang_url": lang_url, "csp_nonce": csp_nonce,
            "js_messages": js_messages(*COMMON_JS_MESSAGES), "active": request.endpoint}


@bp.app_template_filter("merge_page")
def _merge_page(args: dict, page: int) -> str:
    from urllib.parse import urlencode

    out = {k: v for k, v in (args or {}).items() if k != "page"}
    out["page"] = page
    return urlencode(out)
