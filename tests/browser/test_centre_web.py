"""The centre page in Chromium: the indicator tree follows the category filter and folds by district
and street; the columns sort within each level; the hot-spot layer draws with its legend.

The cast (tests/test_pages.py): three test.litter cases of March 2026 (two in the west street's
cell CELL, one in the east street's OTHER_CELL); here one more case of another category in CELL,
and for the hot spots a planted cluster in February 2026: 113 cases in the four cells of the
north-west community, 2 beside them, none elsewhere.
"""
from __future__ import annotations

import datetime as dt

import pytest

from tests.browser.test_pages_web import assert_clean, login, wait_layer
from tests.test_pages import make_cast, wire

pytestmark = pytest.mark.slow
MARCH = "from=2026-03-01&to=2026-03-31"


@pytest.fixture
def live_app(live_app, sessionmaker, loaded_city):
    from geoalchemy2 import WKTElement

    from tests.casehelpers import make_case, make_category
    from gridmap.assign.models import Worker

    wire(live_app)
    with sessionmaker() as s:
        ids = make_cast(s)
        other = make_category(s, "dispute", name="矛盾纠纷", kind="dispute", limit=(2, "natural_days"))
        c = make_case(s, "dispatched", category=other, worker=s.get(Worker, ids["w1"]), description="邻里纠纷")
        c.lon, c.lat, c.geom = 122.007, 30.036, WKTElement("POINT(122.007 30.036)", srid=4326)
        s.flush()
        from tests.test_analysis import NW, add_cases, centre

        items = []
        for code, n in {NW[0]: 30, NW[1]: 25, NW[2]: 28, NW[3]: 30, "330999001002001": 2}.items():
            x, y = centre(loaded_city, code)
            items += [(code, x, y, dt.datetime(2026, 2, 1 + k % 20, 2, tzinfo=dt.timezone.utc)) for k in range(n)]
        add_cases(s, other, items)
        s.commit()
    live_app.config["GM_TEST_IDS"] = ids
    return live_app


def _filed(gm_page, code: str) -> str:
    return gm_page.page.text_content(f"#indicators tr[data-code='{code}'] td:nth-child(2)")


def test_centre_table_follows_the_category_filter_and_folds(gm_page):
    login(gm_page, "city")
    gm_page.goto(f"/centre?{MARCH}")
    rows = gm_page.page.locator("#indicators tbody tr")
    assert rows.count() == 3  # the district (opened) and its two streets
    assert (_filed(gm_page, "330999"), _filed(gm_page, "330999001"), _filed(gm_page, "330999002")) == ("4", "3", "1")
    # open the west street: its communities load from /centre/rows under the same filter
    gm_page.click("#indicators tr[data-code='330999001'] .tree-toggle")
    gm_page.wait_for_selector("#indicators tr[data-parent='330999001']")
    comms = gm_page.page.locator("#indicators tr[data-parent='330999001']")
    assert comms.count() == 2 and _filed(gm_page, "330999001001") == "3"
    # fold the district: every row below it hides; open it again: the west street's communities return
    gm_page.click("#indicators tr[data-code='330999'] .tree-toggle")
    assert gm_page.page.locator("#indicators tbody tr:not([hidden])").count() == 1
    gm_page.click("#indicators tr[data-code='330999'] .tree-toggle")
    assert gm_page.page.locator("#indicators tbody tr:not([hidden])").count() == 5
    # sort by 立案数: descending first, then ascending; communities stay under their street
    gm_page.click("#indicators th .sort[data-key='1']")
    codes = gm_page.page.eval_on_selector_all("#indicators tbody tr", "rs => rs.map(r => r.dataset.code)")
    assert codes[:2] == ["330999", "330999001"] and codes[-1] == "330999002"
    gm_page.click("#indicators th .sort[data-key='1']")
    codes = gm_page.page.eval_on_selector_all("#indicators tbody tr", "rs => rs.map(r => r.dataset.code)")
    assert codes[:2] == ["330999", "330999002"] and codes.index("330999001001") > codes.index("330999001")
    # the category filter: the page reloads and every row counts disputes only
    with gm_page.page.expect_navigation():
        gm_page.page.select_option("#centre-filters select[name=category]", "dispute")
    assert "category=dispute" in gm_page.page.url
    assert (_filed(gm_page, "330999"), _filed(gm_page, "330999001"), _filed(gm_page, "330999002")) == ("1", "1", "0")
    open_col = gm_page.page.text_content("#indicators tr[data-code='330999001'] td:nth-child(7)")
    assert open_col == "1"  # 未结事件 follows the category too
    gm_page.click("#indicators tr[data-code='330999001'] .tree-toggle")
    gm_page.wait_for_selector("#indicators tr[data-parent='330999001']")
    assert _filed(gm_page, "330999001001") == "1"
    # the table fits the page: no sideways scroll at desktop width
    assert gm_page.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_clean(gm_page)


def test_a_filter_value_that_does_not_exist_says_so(gm_page):
    login(gm_page, "city")
    gm_page.goto(f"/centre?{MARCH}&category=no.such")
    assert "没有类别“no.such”" in gm_page.page.text_content(".flashes")
    assert _filed(gm_page, "330999") == "4"  # the bad condition is left out, the table is not empty
    gm_page.goto("/centre?from=2020-01-01&to=2020-01-31")
    assert "没有符合条件的事件" in gm_page.page.text_content("#no-cases")
    gm_page.wait_for_selector("#centre-map[data-hotspots=empty]")
    assert "没有事件" in gm_page.page.text_content("#hotspot-status")
    assert_clean(gm_page)


def test_hotspot_layer_shows_with_its_legend(gm_page):
    login(gm_page, "city")
    gm_page.goto("/centre?from=2026-02-01&to=2026-02-28&hot=cell")
    wait_layer(gm_page, "areas")
    gm_page.wait_for_selector("#centre-map[data-hotspots=loaded]")
    legend = gm_page.page.locator(".gm-hotspot-legend")
    assert legend.is_visible()
    assert "错误发现率校正" in legend.text_content()
    rows = gm_page.page.eval_on_selector_all(
        ".gm-hotspot-legend .gm-legend-row", "rs => rs.map(r => [r.dataset.class, Number(r.textContent.match(/\\((\\d+)\\)/)[1])])")
    assert [c for c, _ in rows] == ["hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"]
    counts = dict(rows)
    assert sum(counts.values()) == 16  # every cell of the test city is in one class
    hot = counts["hot_99"] + counts["hot_95"] + counts["hot_90"]
    assert hot >= 2  # the planted cluster is found
    # only significant cells are drawn, each with its class
    significant = sum(n for c, n in rows if c != "not_significant")
    assert gm_page.page.locator("path.gm-hotspot").count() == significant
    assert gm_page.page.locator("path[class*='gm-hotspot-hot']").count() == hot
    assert "16 个区域，115 件事件" in gm_page.page.text_content("#hotspot-status")
    gm_page.uncheck("#toggle-hotspots")
    assert gm_page.page.locator("path.gm-hotspot").count() == 0 and gm_page.page.locator(".gm-hotspot-legend").count() == 0
    gm_page.check("#toggle-hotspots")
    assert gm_page.page.locator("path.gm-hotspot").count() == significant
    assert_clean(gm_page)
