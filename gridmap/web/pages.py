"""The web app for grid workers, street offices and governance centres, and ``init_web(app)``.

Owns: the ``pages`` blueprint (``/``, ``/healthz``, ``/login``, ``/logout`` here; the role pages in
``gridmap.web.views``: ``/worker``, ``/cases``, ``/cases/<id>``, ``/report``, ``/street``,
``/areas/<code>``, ``/street/editor``, ``/centre``), and ``init_web`` which wires the web layer into
the app: the blueprint, CSRF protection (the Bearer-token JSON APIs are exempt), the i18n context
processor and filters, the session cookie settings and the error pages.

Login: username/password checked by ``accounts.service.authenticate`` (scrypt hashes, same time
for unknown names); one message for every failure so names cannot be probed; after 5 failures
from one address for one name within 15 minutes that pair waits 15 minutes (kept in memory, per
process). The session holds ``uid`` and ``pw`` (the last 16 characters of the password hash, so a
password change ends every session), read by ``gridmap.web.auth.current_user``.
"""
from __future__ import annotations

import threading
import time

from flask import flash, redirect, render_template, request, session as http_session, url_for
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from gridmap import get_session
from gridmap.web.i18n import gettext as _
from gridmap.web.views import areas, cases, centre, worker  # noqa: F401  (routes on the blueprint)
from gridmap.web.views.base import bp, landing_url, login_page_required, safe_next

#: JSON API blueprints that authenticate with Bearer tokens: no CSRF token is asked of them
API_BLUEPRINTS = ("api", "cases_api", "metrics_api", "geo_api", "boundaries_api", "open311", "hazards_api")
LOCKOUT_FAILURES = 5
LOCKOUT_SECONDS = 15 * 60


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
class _Lockout:
    """Failed logins per (name, address) in the last ``LOCKOUT_SECONDS``."""

    def __init__(self):
        self._lock = threading.Lock()
        self._fails: dict[tuple[str, str], list[float]] = {}

    def _recent(self, key, now) -> list[float]:
        return [t for t in self._fails.get(key, ()) if now - t < LOCKOUT_SECONDS]

    def wait_seconds(self, key) -> int:
        now = time.monotonic()
        with self._lock:
            recent = self._recent(key, now)
            if len(recent) < LOCKOUT_FAILURES:
                return 0
            return int(LOCKOUT_SECONDS - (now - recent[-LOCKOUT_FAILURES])) + 1

    def fail(self, key) -> None:
        now = time.monotonic()
        with self._lock:
            recent = self._recent(key, now)
            recent.append(now)
            self._fails[key] = recent[-LOCKOUT_FAILURES:]
            if len(self._fails) > 10000:  # forget the stale ones
                self._fails = {k: v for k, v in self._fails.items() if self._recent(k, now)}

    def clear(self, key) -> None:
        with self._lock:
            self._fails.pop(key, None)


def _lockout():
    from flask import current_app

    return current_app.extensions.setdefault("gridmap.login_lockout", _Lockout())


@bp.route("/login", methods=["GET", "POST"])
def login():
    from gridmap.accounts.service import authenticate
    from gridmap.web.auth import current_user
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
    username = form.username.data.strip()
    key = (username.lower(), request.remote_addr or "")
    wait = _lockout().wait_seconds(key)
    if wait:
        return render_template("login.html", form=form,
                               error=_("尝试次数过多，请 {minutes} 分钟后再试。", minutes=(wait + 59) // 60)), 429
    db = get_session()
    user = authenticate(db, username, form.password.data)
    if user is None:
        _lockout().fail(key)
        form.password.data = ""
        return render_template("login.html", form=form, error=_("用户名或密码错误。")), 401
    _lockout().clear(key)
    http_session.clear()  # a new session: no fixation
    http_session["uid"] = user.id
    http_session["pw"] = (user.password_hash or "")[-16:]
    return redirect(nxt or landing_url(user))


@bp.post("/logout")
def logout():
    from gridmap.web.forms import LogoutForm

    LogoutForm()  # the CSRF token was checked before the view (CSRFProtect)
    http_session.clear()
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
    app.extensions["gridmap.web"] = {"csrf": csrf}


__all__ = ["bp", "init_web", "API_BLUEPRINTS"]
