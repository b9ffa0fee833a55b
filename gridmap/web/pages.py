"""The web app for grid workers, street offices and governance centres, and ``init_web(app)``.

Owns: the ``pages`` blueprint (``/``, ``/healthz``, ``/login``, ``/logout`` here; the role pages in
``gridmap.web.views``: ``/worker``, ``/cases``, ``/cases/<id>``, ``/report``, ``/street``,
``/areas/<code>``, ``/street/editor``, ``/centre``, ``/admin/audit``), and ``init_web`` which wires the web layer into
the app: the blueprint, CSRF protection (the Bearer-token JSON APIs are exempt), the i18n context
processor and filters, the session cookie settings and the error pages.

Login: ``accounts.login.attempt_login`` (scrypt hashes, same time for unknown names; throttling
per name and address, per address and per name kept in the database so every process sees it);
one message for every failure so names cannot be probed. The cookie holds a server-side session
id (``accounts.sessions``: ends at logout, on a password change, when the user is disabled, after
GRIDMAP_SESSION_IDLE_MINUTES idle and GRIDMAP_SESSION_ABSOLUTE_HOURS in all) and ``pw`` (the last
16 characters of the password hash), read by ``gridmap.web.auth.current_user``. With
GRIDMAP_SECURE_COOKIES the cookie is sent over HTTPS only.
"""
from __future__ import annotations

from flask import flash, redirect, render_template, request, session as http_session, url_for
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from gridmap import get_session
from gridmap.web.i18n import gettext as _
from gridmap.web.views import admin, areas, cases, centre, hazards, offline, registry, worker  # noqa: F401  (routes on the blueprint)
from gridmap.web.views.base import bp, landing_url, login_page_required, safe_next

#: JSON API blueprints that authenticate with Bearer tokens: no CSRF token is asked of them
API_BLUEPRINTS = ("api", "cases_api", "metrics_api", "geo_api", "boundaries_api", "open311", "hazards_api",
                  "registry_api", "fieldwork_api")


@bp.get("/")
@login_page_required
def index():
    from gridmap.web.auth import current_user

    return redirect(landing_url(current_user()))


@bp.get("/healthz")
def healthz():
    get_session().execute(text("SELECT 1"))
    return {"status": "ok"}


# ----------------------------------------------------------------------------- login, logout
@bp.route("/login", methods=["GET", "POST"])
def login():
    from flask import current_app

    from gridmap.accounts.login import Limits, attempt_login
    from gridmap.web.auth import current_user, log_in
    from gridmap.web.forms import LoginForm

    form = LoginForm()
    nxt = safe_next(request.values.get("next"))
    if request.method == "GET":
        user = current_user()
        if user is not None:
            return redirect(nxt or landing_url(user))
        form.next.data = nxt
        return render_template("login.html", form=form, error=None)
    if not form.validate_on_submit():
        return render_template("login.html", form=form, error=_("请填写用户名和密码。")), 400
    db = get_session()
    result = attempt_login(db, form.username.data, form.password.data, request.remote_addr or "",
                           Limits.from_config(current_app.config))
    db.commit()  # the failure count and the audit entry are kept whatever the outcome
    if result.wait_seconds:
        return render_template("login.html", form=form, error=_("尝试次数过多，请 {minutes} 分钟后再试。",
                                                                minutes=(result.wait_seconds + 59) // 60)), 429
    if result.user is None:
        form.password.data = ""
        return render_template("login.html", form=form, error=_("用户名或密码错误。")), 401
    log_in(result.user, result.session_id)
    return redirect(nxt or landing_url(result.user))


@bp.post("/logout")
def logout():
    from gridmap import audit
    from gridmap.web.auth import current_user, log_out
    from gridmap.web.forms import LogoutForm

    LogoutForm()  # the CSRF token was checked before the view (CSRFProtect)
    user = current_user()
    log_out()
    if user is not None:
        db = get_session()
        audit.record(db, "logout", actor_user_id=user.id, actor_name=user.username, address=request.remote_addr)
        db.commit()
    flash(_("已退出登录。"), "info")
    return redirect(url_for("pages.login"))


# ----------------------------------------------------------------------------- errors
_ERROR_TEXT = {
    400: ("请求无效（{code}）", "表单已过期或无效，请刷新页面后重试。"),
    403: ("无权访问（403）", "您无权查看此内容。"),
    404: ("未找到（404）", "您要找的内容不存在。"),
    405: ("不允许的请求方式（405）", None),
    413: ("请求过大（413）", "上传的内容超过上限。"),
}


@bp.errorhandler(HTTPException)
def _page_error(e: HTTPException):
    if e.code is None or e.code < 400 or request.path.startswith(("/api/", "/open311/")):
        return e
    title, body = _ERROR_TEXT.get(e.code, ("错误（{code}）", None))
    return render_template("error.html", title=_(title, code=e.code), message=_(body) if body else None,
                           code=e.code), e.code


# ----------------------------------------------------------------------------- wiring
def init_web(app) -> None:
    """Register the pages, CSRF protection, i18n and the session cookie settings (idempotent)."""
    if app.extensions.get("gridmap.web"):
        return
    from flask_wtf.csrf import CSRFError, CSRFProtect

    from gridmap.web.i18n import init_i18n

    if "pages" not in app.blueprints:
        app.register_blueprint(bp)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config.get("GRIDMAP_SECURE_COOKIES"))
    # pages stay open for a shift on a worker's phone; the token is bound to the session anyway
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 12 * 3600)
    # CSRFProtect's own hook is switched off: ours (below) also lets Bearer-token requests through
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf = CSRFProtect(app)
    exempt = {name for name in API_BLUEPRINTS if name in app.blueprints}
    for name in exempt:
        csrf.exempt(app.blueprints[name])

    @app.before_request
    def _csrf_protect():
        if not app.config.get("WTF_CSRF_ENABLED", True):
            return None
        if request.method not in app.config["WTF_CSRF_METHODS"] or not request.endpoint:
            return None
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            return None
        # the JSON APIs, when called without the login cookie (Bearer token, Open311 api_key);
        # a page's own fetch() to them carries the cookie and must send X-CSRFToken
        if exempt.intersection(request.blueprints) and app.config["SESSION_COOKIE_NAME"] not in request.cookies:
            return None
        csrf.protect()
        return None

    @app.errorhandler(CSRFError)
    def _csrf_error(e):
        if request.path.startswith(("/api/", "/open311/")) or request.is_json:
            from flask import jsonify

            return jsonify({"error": f"CSRF check failed: {e.description}"}), 400
        return render_template("error.html", title=_("请求无效（{code}）", code=400),
                               message=_("表单已过期或无效，请刷新页面后重试。"), code=400), 400

    init_i18n(app)
    from gridmap.web.reasons import init_reasons

    init_reasons(app)  # routing reasons and system comments per language
    app.extensions["gridmap.web"] = {"csrf": csrf}


__all__ = ["bp", "init_web", "API_BLUEPRINTS"]
