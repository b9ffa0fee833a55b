"""Browser test harness: a live server on the parametrized backend and a Chromium page that may
talk to nobody but that server.

- ``live_app``: the test app (conftest ``app``, on PostGIS and SpatiaLite) with the ``loaded_city``
  data and the geo blueprint. A test module may override it (``def live_app(live_app): …``) to add
  test-only routes before the server starts.
- ``live_server``: werkzeug's ``make_server`` on 127.0.0.1 and a free port, in a thread; its base URL.
- ``browser``: Debian's Chromium (``/usr/bin/chromium``, or GRIDMAP_CHROMIUM) driven by Playwright
  for Python. No browser is ever downloaded (never run ``playwright install``).
- ``gm_page``: a fresh context and page whose every request is recorded; a request to any host
  but the live server is aborted (the network is closed) and, unless the test allowed that host
  (``gm_page.log.allow(host, …)``, e.g. the configured basemap's), fails the test at teardown.
  Authentication: ``gm_page.log.token`` is sent as ``Authorization: Bearer …`` on the server's
  requests when the test asks for it (``gm_page.login()``).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 # no name resolves: the machine's network is closed to the page whatever the host has
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


@pytest.fixture
def live_app(app, loaded_city):
    if "geo_api" not in app.blueprints:
        from gridmap.web.geo_api import bp

        app.register_blueprint(bp)
    return app


@pytest.fixture
def live_server(live_app):
    from werkzeug.serving import make_server

    srv = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, name="gridmap-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        thread.join(timeout=10)
        srv.server_close()


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'", pytrace=False)
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y --no-install-recommends chromium fonts-noto-cjk "
                    "(tools/sysdeps.sh browser)", pytrace=False)
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@dataclass
class RequestLog:
    """Every request a page made; which went (or tried to go) to a host it may not contact."""

    server: str
    allowed_hosts: set[str] = field(default_factory=set)
    urls: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    token: str | None = None

    def allow(self, *hosts: str) -> None:
        self.allowed_hosts.update(hosts)

    def is_server(self, url: str) -> bool:
        return urlsplit(url).netloc == urlsplit(self.server).netloc

    def foreign(self) -> list[str]:
        out = []
        for u in self.urls:
            parts = urlsplit(u)
            if parts.scheme in ("data", "blob", "about") or self.is_server(u):
                continue
            if parts.hostname not in self.allowed_hosts:
                out.append(u)
        return out


class GmPage:
    """A Playwright page plus its request log."""

    def __init__(self, context, page, log: RequestLog):
        self.context, self.page, self.log = context, page, log

    def login(self, token: str) -> None:
        self.log.token = token

    def goto(self, path: str, **kw):
        return self.page.goto(self.log.server + path, **kw)

    def __getattr__(self, name):
        return getattr(self.page, name)


@pytest.fixture
def gm_page(browser, live_server):
    log = RequestLog(server=live_server)
    ctx = browser.new_context(viewport={"width": 1000, "height": 700}, locale="zh-CN", service_workers="block")

    def route(r):
        url = r.request.url
        if log.is_server(url):
            if log.token:
                r.continue_(headers={**r.request.headers, "authorization": f"Bearer {log.token}"})
            else:
                r.continue_()
        else:
            log.blocked.append(url)
            r.abort("internetdisconnected")

    ctx.route("**/*", route)
    page = ctx.new_page()
    page.on("request", lambda req: log.urls.append(req.url))
    page.on("pageerror", lambda exc: log.errors.append(str(exc)))
    page.on("console", lambda msg: log.console.append(f"{msg.type}: {msg.text}"))

    def on_dialog(d):
        log.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield GmPage(ctx, page, log)
    finally:
        ctx.close()
    foreign = log.foreign()
    assert not foreign, f"the page contacted hosts other than the app and the basemap: {foreign[:5]}"
