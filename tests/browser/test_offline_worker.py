"""A grid worker on a boat: the phone loses its network, she reports a case and accepts another,
the network comes back, and the server holds each exactly once (Chromium with the app's service
worker; both backends). Also: the worker page reloads offline from the service worker's cache.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from tests.test_pages import make_cast, wire

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"


@pytest.fixture
def live_app(live_app, sessionmaker):
    wire(live_app)
    with sessionmaker() as s:
        ids = make_cast(s)
        s.commit()
    live_app.config["GM_TEST_IDS"] = ids
    return live_app


@pytest.fixture
def phone(browser, live_server):
    """A phone-sized context that lets the app register its service worker. Names resolve to
    nothing but 127.0.0.1 (the browser's launch flags); every request is recorded."""
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN", service_workers="allow")
    urls, errors = [], []
    ctx.on("request", lambda r: urls.append(r.url))
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield ctx, page, live_server, errors
    finally:
        ctx.close()
    foreign = [u for u in urls if not u.startswith((live_server, "data:", "blob:", "about:", "chrome"))]
    assert not foreign, foreign[:5]


def login(page, base, username):
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "/login" not in page.url


def controlled(page):
    """Wait until the service worker has installed (it caches the offline pages first: slow on a
    busy machine) and controls the page."""
    page.wait_for_function("() => navigator.serviceWorker && navigator.serviceWorker.controller !== null"
                           " || (window.__swReady = window.__swReady || navigator.serviceWorker.ready.then("
                           "() => { window.__swActive = true; })) && window.__swActive === true", timeout=90000)
    if page.evaluate("() => navigator.serviceWorker.controller === null"):
        page.reload()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30000)


def cases_with(sessionmaker, description):
    from gridmap.incidents.models import Case

    with sessionmaker() as s:
        return s.scalar(select(func.count()).select_from(Case).where(Case.description == description))


def events(sessionmaker, case_id, action):
    from gridmap.incidents.models import CaseEvent

    with sessionmaker() as s:
        return s.scalar(select(func.count()).select_from(CaseEvent)
                        .where(CaseEvent.case_id == case_id, CaseEvent.action == action))


def test_offline_report_and_action_reach_the_server_once(phone, live_app, sessionmaker):
    ctx, page, base, errors = phone
    ids = live_app.config["GM_TEST_IDS"]
    login(page, base, "w1")
    page.wait_for_selector(".leaflet-container")
    page.goto(base + "/worker")          # the service worker installs and takes control
    controlled(page)
    page.goto(base + "/report")          # cached while online (page, assets, her cells)
    page.wait_for_selector(".leaflet-container")
    page.goto(base + f"/cases/{ids['mine']}")
    page.wait_for_selector("form[data-action=accept]")

    ctx.set_offline(True)
    # a case action while offline goes to the outbox
    page.click("form[data-action=accept] button[type=submit]")
    page.wait_for_selector("#outbox-notice")
    # the report page reloads offline, from the cache
    page.goto(base + "/report")
    page.wait_for_selector("#report-form")
    page.evaluate("() => { document.getElementById('lon').value = '122.0123';"
                  " document.getElementById('lat').value = '30.0345'; }")
    page.select_option("#category", ids["cat"])
    page.fill("#description", "渔港码头护栏损坏（离线上报）")
    page.click("#submit-report")
    page.wait_for_selector("#outbox-notice.flash-success")
    page.wait_for_function("() => document.getElementById('outbox-indicator').getAttribute('data-waiting') === '2'")
    assert cases_with(sessionmaker, "渔港码头护栏损坏（离线上报）") == 0
    assert events(sessionmaker, ids["mine"], "accept") == 0

    ctx.set_offline(False)
    page.evaluate("() => window.GridmapOutbox.sync()")
    page.wait_for_function("() => document.getElementById('outbox-indicator').getAttribute('data-waiting') === '0'",
                           timeout=20000)
    assert cases_with(sessionmaker, "渔港码头护栏损坏（离线上报）") == 1
    assert events(sessionmaker, ids["mine"], "accept") == 1
    # a second sync (say, the phone thought the first answer was lost) changes nothing
    page.evaluate("() => window.GridmapOutbox.sync()")
    time.sleep(0.5)
    assert cases_with(sessionmaker, "渔港码头护栏损坏（离线上报）") == 1
    assert not errors, errors


def test_a_refused_entry_stays_visible_with_the_server_state(phone, live_app, sessionmaker):
    ctx, page, base, errors = phone
    ids = live_app.config["GM_TEST_IDS"]
    login(page, base, "w1")
    page.goto(base + f"/cases/{ids['mine']}")
    page.wait_for_selector("form[data-action=accept]")
    ctx.set_offline(True)
    page.click("form[data-action=accept] button[type=submit]")
    page.wait_for_selector("#outbox-notice")
    # meanwhile the case is accepted from another device: the queued accept no longer applies
    from gridmap.incidents.lifecycle import apply_action
    from tests.casehelpers import worker_actor
    from gridmap.assign.models import Worker

    with sessionmaker() as s:
        w = s.get(Worker, ids["w1"])
        apply_action(s, ids["mine"], "accept", worker_actor(w))
        s.commit()
    ctx.set_offline(False)
    page.evaluate("() => window.GridmapOutbox.sync()")
    page.wait_for_function("() => document.getElementById('outbox-indicator').getAttribute('data-refused') === '1'",
                           timeout=20000)
    page.goto(base + "/outbox")
    page.wait_for_selector(".outbox-refused")
    text = page.text_content("#outbox-list")
    assert "in_progress" in text or "处置中" in text or "服务器答复" in text
    assert events(sessionmaker, ids["mine"], "accept") == 1
    assert not errors, errors
