"""Hazards in Chromium on the live server (test city, both backends, the network closed): a centre user
finds the overdue hazards of a district by type and grade on the register, sees the same selection on
the map, opens one, sees its history and inspections, downloads the selection; an extension without
a reason is refused on the page; the centre's map draws the hazard layer with its legend and the
area card lists a cell's open hazards; no CSP violation, no script error, no foreign host.

The fixture is tests/hazardhelpers.py (March 2026); the pages judge "overdue" at the real now, after
April 2026, so every fixture hazard still waiting for rectification is overdue. With
GRIDMAP_SCREENSHOT_DIR set, the register and a hazard's page are saved there as PNG at desktop
width and at 360 px (docs/screenshots/ holds the committed ones).
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from tests.browser.test_pages_web import PASSWORD, assert_clean, login, screen_point
from tests.casehelpers import make_user
from tests.hazardhelpers import build_fixture
from tests.test_pages import wire

pytestmark = pytest.mark.slow
SHOTS = os.environ.get("GRIDMAP_SCREENSHOT_DIR")


@pytest.fixture
def live_app(live_app, sessionmaker):
    from gridmap.db import transaction

    wire(live_app)
    ids = build_fixture(sessionmaker)
    with transaction(sessionmaker) as s:
        make_user(s, "centre", "city")
        make_user(s, "east", "street", area_code="330999002")
    live_app.config["GM_TEST_IDS"] = ids
    return live_app


@pytest.fixture
def ids(live_app):
    return live_app.config["GM_TEST_IDS"]


def wait_hazards(gm_page, loads: int = 1):
    gm_page.page.wait_for_function(
        "(k) => { const e = document.querySelector('[data-gm-hazards]');"
        " return e && Number(e.getAttribute('data-gm-hazards')) >= k; }", arg=loads, timeout=15000)


def shot(gm_page, name: str, backend: str) -> None:
    if not SHOTS or backend != "spatialite":
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    gm_page.page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_centre_finds_overdue_hazards_by_type_and_grade_opens_one_and_downloads(gm_page, ids, backend):
    assert PASSWORD
    login(gm_page, "centre")
    gm_page.goto("/hazards")
    assert gm_page.page.text_content("#hazard-count").strip() == "7"
    wait_hazards(gm_page)
    assert gm_page.page.get_attribute("[data-gm-hazards-count]", "data-gm-hazards-count") == "7"
    shot(gm_page, "hazard-register-desktop", backend)
    # the district, overdue, fire, general: only H2 (H4 is major, H5/H6 are gas, H7 is rectified)
    gm_page.page.select_option("#f-area", "330999")
    gm_page.page.check("#f-overdue")
    gm_page.page.select_option("#f-type", "fire")
    gm_page.page.select_option("#f-grade", "general")
    with gm_page.page.expect_navigation():
        gm_page.click("#apply-filters")
    assert gm_page.page.text_content("#hazard-count").strip() == "1"
    rows = gm_page.page.locator("tr.hazard-row")
    assert rows.count() == 1 and rows.first.get_attribute("data-hazard-id") == str(ids["H2"])
    assert "is-overdue" in rows.first.get_attribute("class")
    wait_hazards(gm_page)
    # the map shows the same selection
    gm_page.page.wait_for_function("() => document.querySelector('[data-gm-hazards-count]')"
                                   ".getAttribute('data-gm-hazards-count') === '1'", timeout=15000)
    assert gm_page.page.locator("path.gm-hz-overdue").count() == 1
    assert gm_page.page.locator("#hazard-legend").is_visible()
    shot(gm_page, "hazard-register-filtered-desktop", backend)
    # download the selection: CSV and the Excel ledger
    with gm_page.page.expect_download() as dl:
        gm_page.click("#dl-csv")
    data = Path(dl.value.path()).read_bytes().decode("utf-8-sig")
    titles = [r["title"] for r in csv.DictReader(io.StringIO(data))]
    assert titles == ["H2"]
    with gm_page.page.expect_download() as dl:
        gm_page.click("#dl-xlsx")
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes())).active
    assert [ws.cell(row=i, column=6).value for i in range(4, ws.max_row + 1)
            if ws.cell(row=i, column=2).value] == ["H2"]
    # open it: history and inspections
    with gm_page.page.expect_navigation():
        gm_page.click(f"tr[data-hazard-id='{ids['H2']}'] a.hazard-link")
    assert gm_page.page.url.endswith(f"/hazards/{ids['H2']}")
    assert gm_page.page.text_content("#hazard-title").strip().startswith("H2")
    assert gm_page.page.locator("#hazard-overdue").is_visible()
    assert gm_page.page.locator("#hazard-history li[data-action='register']").count() == 1
    states = [r.get_attribute("data-state") for r in gm_page.page.locator("#hazard-inspections tr.task-row").all()]
    assert sorted(states) == sorted(["missed", "missed", "on_time", "late", "missed"])  # 02-22, 03-01 … 03-22
    assert gm_page.page.locator(".leaflet-interactive").count() >= 1  # its place on the map
    shot(gm_page, "hazard-page-desktop", backend)
    # an extension without a reason is refused on the page, nothing changes
    gm_page.click("details[data-action='extend'] summary")
    gm_page.fill("#extend-deadline", "2030-06-30")
    with gm_page.page.expect_navigation():
        gm_page.click("#extend-submit")
    assert "needs a reason" in gm_page.page.text_content(".flashes")
    assert "已延期" not in gm_page.page.text_content("#hazard-deadline")
    # 督办 works
    gm_page.click("details[data-action='supervise'] summary")
    gm_page.fill("#supervise-comment", "请于本周内完成整改")
    with gm_page.page.expect_navigation():
        gm_page.click("details[data-action='supervise'] button[type=submit]")
    assert gm_page.page.locator("#hazard-supervised").is_visible()
    assert "请于本周内完成整改" in gm_page.page.text_content("#hazard-history")
    assert_clean(gm_page)


def test_register_and_hazard_page_at_360_px(gm_page, ids, backend):
    gm_page.page.set_viewport_size({"width": 360, "height": 740})
    login(gm_page, "centre")
    gm_page.goto("/hazards?overdue=1")
    wait_hazards(gm_page)
    width = gm_page.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the register scrolls sideways at 360 px ({width} px wide)"
    assert gm_page.page.locator("#hazard-map").is_visible()
    shot(gm_page, "hazard-register-360", backend)
    gm_page.goto(f"/hazards/{ids['H5']}")
    width = gm_page.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the hazard page scrolls sideways at 360 px ({width} px wide)"
    assert "重新打开" in gm_page.page.text_content("#hazard-history")
    shot(gm_page, "hazard-page-360", backend)
    assert_clean(gm_page)


def test_centre_map_hazard_layer_and_card(gm_page, ids, backend):
    login(gm_page, "centre")
    assert gm_page.page.url.endswith("/centre")
    wait_hazards(gm_page)
    assert gm_page.page.locator("#hazard-legend").is_visible()
    # open, rectified and verified hazards (not closed): H2 H3 H4 H5 H6 H7
    count = gm_page.page.get_attribute("[data-gm-hazards-count]", "data-gm-hazards-count")
    assert count == "6"
    gm_page.page.check("#toggle-hazard-density")
    gm_page.page.wait_for_selector("canvas.leaflet-heatmap-layer", state="attached", timeout=10000)
    # the cell card lists the cell's open hazards (ticking the box scrolled the page: the map back in view)
    gm_page.page.locator(".leaflet-container").first.scroll_into_view_if_needed()
    x, y = screen_point(gm_page, 30.0325, 122.0150)  # inside CELL, away from the hazard markers
    gm_page.page.mouse.click(x, y)
    gm_page.page.wait_for_selector("#card-hazards[data-loaded='330999001001001']", state="attached", timeout=30000)
    items = gm_page.page.locator("#card-hazards li")
    assert items.count() == 4
    assert "H2" in gm_page.page.text_content("#card-hazards")
    assert_clean(gm_page)


def test_compliance_page_table_and_map(gm_page, ids, backend):
    login(gm_page, "centre")
    gm_page.goto("/hazards/compliance?from=2026-03-01&to=2026-03-31&group=street")
    rows = gm_page.page.locator("#compliance-table tbody tr")
    assert rows.count() == 2
    assert gm_page.page.text_content("#compliance-table tbody tr[data-code='330999001'] td:nth-child(5)").strip() == "2"
    assert gm_page.page.locator("#compliance-map path.leaflet-interactive").count() >= 2  # the two streets shaded
    assert "按期整改率" in gm_page.page.text_content("#indicator-table")
    shot(gm_page, "hazard-compliance-desktop", backend)
    assert_clean(gm_page)
