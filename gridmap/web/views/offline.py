"""What lets the worker's pages work offline: the web app manifest, the service worker, a fresh
CSRF token for the outbox, and the outbox page.

Owns: ``/manifest.webmanifest``, ``/sw.js`` (served from the root so that it controls every page;
its text is ``static/js/sw.js`` with the cache version filled in, so a new release replaces the
cached pages), ``/offline/token`` (the CSRF token a page needs when it sends its outbox long
after it was loaded) and ``/outbox`` (what waits to be sent, and what the server refused, read
from the phone's own IndexedDB by ``static/js/outbox.js``).

Nothing personal is cached beyond what the worker's own pages already show her.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Response, current_app, jsonify, render_template, url_for
from flask_wtf.csrf import generate_csrf

from gridmap import __version__
from gridmap.web.auth import current_user
from gridmap.web.i18n import gettext as _
from gridmap.web.views.base import bp, login_page_required

STATIC = Path(__file__).resolve().parent.parent.parent / "static"
#: the pages a worker may need offline (each is cached with the assets it references)
OFFLINE_PAGES = ("/worker", "/report", "/outbox")


def cache_version() -> str:
    """Changes whenever the service worker, the outbox script or the app's version changes."""
    h = hashlib.sha256(__version__.encode())
    for name in ("js/sw.js", "js/outbox.js", "js/app.js", "css/app.css"):
        p = STATIC / name
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


@bp.get("/sw.js")
def service_worker():
    text = (STATIC / "js" / "sw.js").read_text(encoding="utf-8")
    text = text.replace("__CACHE_VERSION__", cache_version()).replace(
        "__OFFLINE_PAGES__", ",".join(f'"{p}"' for p in OFFLINE_PAGES))
    resp = Response(text, mimetype="application/javascript")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Service-Worker-Allowed"] = "/"
    # a worker script's own policy governs what the worker may fetch: the app's pages and data only
    # (the app-wide default for non-HTML answers, default-src 'none', would stop it fetching at all)
    resp.headers["Content-Security-Policy"] = "default-src 'self'; object-src 'none'; base-uri 'none'"
    return resp


@bp.get("/manifest.webmanifest")
def manifest():
    data = {
        "name": _("gridmap 网格化管理"), "short_name": "gridmap", "lang": "zh-CN",
        "start_url": "/worker", "scope": "/", "display": "standalone",
        "background_color": "#ffffff", "theme_color": "#1d4ed8",
        "icons": [{"src": url_for("static", filename="icons/gridmap.svg"), "sizes": "any",
                   "type": "image/svg+xml", "purpose": "any"}],
    }
    resp = jsonify(data)
    resp.mimetype = "application/manifest+json"
    return resp


@bp.get("/offline/token")
def offline_token():
    """A fresh CSRF token for the logged-in user's outbox; 401 JSON when the session has ended."""
    if current_user() is None:
        return jsonify({"error": "login required"}), 401
    resp = jsonify({"csrf_token": generate_csrf()})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/outbox")
@login_page_required
def outbox():
    return render_template("outbox.html")


#: the outbox script's messages (static/js/outbox.js), translated for the page
OUTBOX_JS_MESSAGES = (
    "待发送 {n}", "未被接受 {n}", "请重新登录后发送", "上报：{text}", "事件 {id}：{action}", "记录于 {time}",
    "等待发送", "服务器答复：{reason}", "事件当前状态：{status}", "重新发送", "删除",
    "确定删除这条记录？它不会再发送。", "请在地图上选择位置。", "请选择事件类别。", "请填写事件描述。",
    "上报未被接受：{reason}", "已保存到待发送箱，联网后自动发送。", "事件已上报（{number}），但照片未被接受：{reason}",
)


@bp.app_context_processor
def _outbox_context():
    from gridmap.web.i18n import js_messages

    return {"outbox_messages": js_messages(*OUTBOX_JS_MESSAGES),
            "outbox_seconds": int(current_app.config.get("GRIDMAP_OUTBOX_SYNC_SECONDS", 30))}
