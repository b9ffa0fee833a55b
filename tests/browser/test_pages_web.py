"""The web app in Chromium on the live server (test city, both backends), with the network closed:
every role logs in through the form and lands on its page, the maps draw their layers, a worker
reports a case by tapping the map and sees it routed to them, another cell's case is 404 (like a missing one), user
text stays text in the case page, the list and the map popup, the centre's filters and card, the
editor's preview, no Content-Security-Policy violation and no request to another host (the
``gm_page`` fixture fails the test for that)."""
from __future__ import annotations

import re

import pytest

from tests.test_pages import XSS, make_cast, wire

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"
XSS_TITLE = XSS[:60]


@pytest.fixture
def live_app(live_app, sessionmaker):
    """The harness's app (test city, geo API) wired like create_app + init_web, with the cast."""
    wire(live_app)
    with sessionmaker() as s:
        ids = make_cast(s)
        from gridmap.incidents.models import Case
        from geoalchemy2 import WKTElement

        # the XSS case a little apart from the other one, so that its marker is not clustered
        x = s.get(Case, ids["xss"])
        x.lon, x.lat, x.geom = 122.015, 30.032, WKTElement("POINT(122.015 30.032)", srid=4326)
        s.commit()
    live_app.config["GM_TEST_IDS"] = ids
    return live_app


@pytest.fixture
def ids(live_app):
    return live_app.config["GM_TEST_IDS"]


def login(gm_page, username: str):
    gm_page.goto("/login")
    gm_page.fill("#username", username)
    gm_page.fill("#password", PASSWORD)
    with gm_page.page.expect_navigation():
        gm_page.click("form button[type=submit]")
    assert "/login" not in gm_page.page.url, gm_page.page.content()[:2000]


def map_name(gm_page) -> str:
    return gm_page.page.evaluate("document.body.dataset.map")


def wait_layer(gm_page, name: str, loads: int = 1):
    gm_page.page.wait_for_function(
        "([n, k]) => { const e = document.querySelector('[data-gm-' + n + ']');"
        " return e && Number(e.getAttribute('data-gm-' + n)) >= k; }", arg=[name, loads], timeout=15000)


def screen_point(gm_page, lat: float, lon: float) -> tuple[float, float]:
    return tuple(gm_page.page.evaluate(
        "([n, lat, lon]) => { const m = window[n]; const p = m.latLngToContainerPoint([lat, lon]);"
        " const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
        [map_name(gm_page), lat, lon]))


def csp_violations(gm_page) -> list[str]:
    return [m for m in gm_page.log.console if "Content Security Policy" in m or "Content-Security-Policy" in m]


def assert_clean(gm_page):
    assert not gm_page.log.dialogs, gm_page.log.dialogs
    assert not gm_page.log.errors, gm_page.log.errors
    assert not csp_violations(gm_page), csp_violations(gm_page)


# ============================================================================ roles and maps
@pytest.mark.parametrize("user, path, layer", [("w1", "/worker", "cells"), ("street", "/street", "cells"),
                                               ("city", "/centre", "areas")])
def test_role_lands_on_its_page_with_a_map(gm_page, ids, user, path, layer):
    login(gm_page, user)
    assert gm_page.page.url.endswith(path)
    gm_page.wait_for_selector(".leaflet-container")
    wait_layer(gm_page, layer)
    assert gm_page.page.locator("path.leaflet-interactive").count() > 0
    assert_clean(gm_page)


def test_worker_map_shows_own_cells_and_cases(gm_page, ids):
    login(gm_page, "w1")
    wait_layer(gm_page, "cells")
    wait_layer(gm_page, "cases")
    # one cell outline (the worker's own) and their two open cases, coloured by state
    assert gm_page.page.locator("path.leaflet-interactive").count() == 1
    assert gm_page.page.locator(".gm-case, .marker-cluster").count() >= 1
    rows = gm_page.page.locator("tr.case-row")
    assert rows.count() == 2
    assert_clean(gm_page)


# ============================================================================ reporting
def test_worker_reports_a_case_by_tapping_the_map(gm_page, ids):
    login(gm_page, "w1")
    gm_page.goto("/report")
    wait_layer(gm_page, "cells")
    x, y = screen_point(gm_page, 30.0345, 122.0123)       # inside CELL 330999001001001
    gm_page.page.mouse.click(x, y)
    gm_page.page.wait_for_function("() => document.getElementById('lon').value !== ''")
    lon = float(gm_page.page.input_value("#lon"))
    lat = float(gm_page.page.input_value("#lat"))
    assert abs(lon - 122.0123) < 0.0005 and abs(lat - 30.0345) < 0.0005
    gm_page.page.select_option("#category", "test.litter")
    gm_page.fill("#description", "路边垃圾堆放")
    with gm_page.page.expect_navigation():
        gm_page.click("#submit-report")
    assert re.search(r"/cases/\d+$", gm_page.page.url)
    assert "张伟" in gm_page.page.text_content(".routed-to")
    assert "张伟" in gm_page.page.text_content("#route-reason")
    assert gm_page.page.text_content("#case-description") == "路边垃圾堆放"
    assert_clean(gm_page)


def test_report_with_geolocation(gm_page, ids):
    gm_page.context.grant_permissions(["geolocation"])
    gm_page.context.set_geolocation({"latitude": 30.0355, "longitude": 122.0055})
    login(gm_page, "w1")
    gm_page.goto("/report")
    gm_page.click("#use-location")
    gm_page.page.wait_for_function("() => document.getElementById('lon').value !== ''")
    assert gm_page.page.input_value("#lon") == "122.005500"
    assert gm_page.page.input_value("#lat") == "30.035500"


# ============================================================================ scope and escaping
def test_worker_opening_another_cells_case_gets_404(gm_page, ids):
    login(gm_page, "w1")
    resp = gm_page.goto(f"/cases/{ids['other']}")
    assert resp.status == 404
    assert "东街道的事件" not in gm_page.page.content()
    assert gm_page.goto("/cases/987654").status == 404


def _no_injected_elements(gm_page):
    assert gm_page.page.evaluate("document.querySelectorAll('img[src=\"x\"], b').length") == 0
    assert gm_page.page.evaluate("[...document.scripts].filter(s => s.textContent.includes('alert(')).length") == 0


def test_script_in_description_is_text_everywhere(gm_page, ids):
    login(gm_page, "w1")
    # the case page
    gm_page.goto(f"/cases/{ids['xss']}")
    assert gm_page.page.text_content("#case-description") == XSS
    assert gm_page.page.text_content("#case-title") == XSS_TITLE
    _no_injected_elements(gm_page)
    # the list
    gm_page.goto("/worker")
    row = gm_page.page.locator(f"tr[data-case-id='{ids['xss']}'] td.desc")
    assert "<script>alert(2)</script>" in row.text_content()
    # the map popup
    wait_layer(gm_page, "cases")
    opened = gm_page.page.evaluate(
        """(title) => new Promise((resolve) => {
            const h = GridmapLayers.get('cases'); let hit = null;
            h.layer.eachLayer((g) => { if (g.eachLayer) { g.eachLayer((m) => {
                if (m.options && m.options.title === title) { hit = [g, m]; } }); } });
            if (!hit) { resolve(false); return; }
            const [group, marker] = hit;
            const show = () => { const r = marker._icon.getBoundingClientRect();
                                 resolve([r.left + r.width / 2, r.top + r.height / 2]); };
            if (group.zoomToShowLayer) { group.zoomToShowLayer(marker, show); } else { show(); }
        })""", XSS_TITLE)
    assert opened, "the XSS case's marker is not on the map"
    gm_page.page.mouse.click(*opened)
    gm_page.wait_for_selector(".leaflet-popup-content .gm-popup-title")
    assert gm_page.page.text_content(".leaflet-popup-content .gm-popup-title") == XSS_TITLE
    assert gm_page.page.locator(".leaflet-popup-content img, .leaflet-popup-content script, "
                                ".leaflet-popup-content b").count() == 0
    _no_injected_elements(gm_page)
    assert_clean(gm_page)


# ============================================================================ acting on a case
def test_worker_accepts_and_reports_handling(gm_page, ids):
    login(gm_page, "w1")
    gm_page.goto(f"/cases/{ids['mine']}")
    wait_layer(gm_page, "cells")
    with gm_page.page.expect_navigation():
        gm_page.click("form.action-simple[data-action='accept'] button")
    assert gm_page.page.text_content(".badge-status") == "处置中"
    gm_page.click("details[data-action='feedback'] summary")
    gm_page.fill("#comment-feedback", "已清理完毕 <i>ok</i>")
    with gm_page.page.expect_navigation():
        gm_page.click("details[data-action='feedback'] button[type=submit]")
    assert gm_page.page.text_content(".badge-status") == "已处置"
    assert "已清理完毕 <i>ok</i>" in gm_page.page.text_content("#timeline")
    assert gm_page.page.locator("#timeline i").count() == 0
    assert_clean(gm_page)


# ============================================================================ centre and editor
def test_centre_filters_and_card(gm_page, ids):
    login(gm_page, "city")
    wait_layer(gm_page, "areas")
    wait_layer(gm_page, "heat")
    # one district, opened at once on its two streets (communities load per street)
    assert gm_page.page.locator("#indicators tbody tr").count() == 3
    # a filter change reloads the page: map, table and panels follow the same filter
    with gm_page.page.expect_navigation():
        gm_page.check("#centre-filters input[name=overdue]")
    assert "overdue=1" in gm_page.page.url
    assert gm_page.page.is_checked("#centre-filters input[name=overdue]")
    wait_layer(gm_page, "areas")
    with gm_page.page.expect_navigation():
        gm_page.uncheck("#centre-filters input[name=overdue]")
    assert "overdue=1" not in gm_page.page.url
    wait_layer(gm_page, "areas")
    loads = int(gm_page.page.get_attribute("[data-gm-areas]", "data-gm-areas"))
    gm_page.page.evaluate("window[document.body.dataset.map].setView([30.035, 122.006], 15)")
    wait_layer(gm_page, "areas", loads + 1)
    x, y = screen_point(gm_page, 30.035, 122.006)                          # CELL
    gm_page.page.mouse.click(x, y)
    gm_page.wait_for_selector("#area-card:not([hidden])")
    assert gm_page.page.text_content("#card-code") == "330999001001001"
    assert gm_page.page.text_content("#card-workers") == "张伟"
    assert gm_page.page.get_attribute("#card-link", "href") == "/areas/330999001001001"
    gm_page.uncheck("#toggle-heat")
    assert gm_page.page.locator(".leaflet-heatmap-layer").count() == 0
    assert_clean(gm_page)


def test_editor_preview_shows_touched_cells_and_problems(gm_page, ids):
    login(gm_page, "street")
    gm_page.goto("/street/editor")
    wait_layer(gm_page, "cells")
    assert gm_page.page.locator(".leaflet-draw-draw-polygon").count() == 1
    drawn = gm_page.page.get_attribute("#editor-map", "data-drawn")
    gm_page.page.evaluate("""(n) => window[n].addLayer(L.polygon(
        [[30.031, 122.001], [30.031, 122.025], [30.039, 122.025], [30.039, 122.001]]))""", drawn)
    gm_page.click("#preview-btn")
    gm_page.wait_for_selector("#editor-map[data-preview='valid']")
    cells = gm_page.page.locator("#preview-cells li").all_text_contents()
    assert [c.split()[0] for c in cells] == ["330999001001001", "330999001001002"]
    gm_page.click("#clear-btn")
    gm_page.page.evaluate("""(n) => window[n].addLayer(L.polygon(
        [[30.031, 122.001], [30.039, 122.009], [30.031, 122.009], [30.039, 122.001]]))""", drawn)
    gm_page.click("#preview-btn")
    gm_page.wait_for_selector("#editor-map[data-preview='invalid']")
    assert "Self-intersection" in gm_page.page.text_content("#preview-problems")
    assert gm_page.page.locator("path.gm-problem").count() == 1
    assert_clean(gm_page)


# ============================================================================ language, phone
def test_english_pages(gm_page, ids):
    login(gm_page, "w1")
    gm_page.goto("/worker?lang=en")
    assert gm_page.page.get_attribute("html", "lang") == "en"
    assert "My cells and cases" in gm_page.page.text_content("h1")
    gm_page.goto(f"/cases/{ids['mine']}")
    assert "Routed to 张伟." in gm_page.page.text_content(".routed-to")


def test_phone_layout_has_large_targets(gm_page, ids):
    gm_page.page.set_viewport_size({"width": 390, "height": 844})
    login(gm_page, "w1")
    wait_layer(gm_page, "cells")
    box = gm_page.page.locator("#worker-map").bounding_box()
    assert box["width"] <= 390 and box["height"] >= 300
    for sel in (".btn-primary", ".mainnav a", "a.case-link"):
        for b in gm_page.page.locator(sel).all():
            assert b.bounding_box()["height"] >= 44, sel
    assert gm_page.page.evaluate("document.documentElement.scrollWidth") <= 390 + 1


def test_editor_saves_a_draft_with_the_redrawing_service(gm_page, ids, live_app):
    assert "boundaries_api" in live_app.blueprints
    login(gm_page, "street")
    gm_page.goto("/street/editor")
    wait_layer(gm_page, "cells")
    drawn = gm_page.page.get_attribute("#editor-map", "data-drawn")
    # a line across cell 330999001001001 (122.00–122.02 E, 30.03–30.04 N), north to south
    gm_page.page.evaluate("(n) => window[n].addLayer(L.polyline([[30.0415, 122.01], [30.0285, 122.01]]))", drawn)
    gm_page.page.select_option("#draft-operation", "split")
    x, y = screen_point(gm_page, 30.036, 122.005)
    gm_page.page.mouse.click(x, y)                     # clicking a cell fills in its code
    assert gm_page.page.input_value("#draft-target") == "330999001001001"
    gm_page.click("#draft-btn")
    gm_page.page.wait_for_function("() => document.getElementById('editor-map').hasAttribute('data-draft')", timeout=20000)
    draft = gm_page.page.get_attribute("#editor-map", "data-draft")
    assert draft.isdigit(), gm_page.page.text_content("#preview-result")
    assert_clean(gm_page)


def test_hazards_layer_shows_titles_as_text(gm_page, ids, live_app, sessionmaker):
    assert "hazards_api" in live_app.blueprints
    from gridmap.hazards.service import create_hazard
    from tests.casehelpers import ADMIN

    with sessionmaker() as s:
        create_hazard(s, {"type": "fire", "title": XSS_TITLE, "lon": 122.012, "lat": 30.033}, ADMIN)
        s.commit()
    login(gm_page, "w1")
    wait_layer(gm_page, "hazards")
    hz = gm_page.page.locator("path.gm-hazard")
    assert hz.count() == 1
    hz.first.hover()
    gm_page.wait_for_selector(".leaflet-tooltip .gm-tooltip-title")
    assert gm_page.page.text_content(".leaflet-tooltip .gm-tooltip-title") == XSS_TITLE
    _no_injected_elements(gm_page)
    assert_clean(gm_page)


def test_csp_blocks_injected_inline_script(gm_page, ids):
    """The policy is enforced: a script element without the page's nonce does not run."""
    login(gm_page, "w1")
    gm_page.page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__gmInjected = 1'; document.body.appendChild(s); }""")
    assert gm_page.page.evaluate("window.__gmInjected") is None
    assert csp_violations(gm_page)
    gm_page.log.console.clear()
