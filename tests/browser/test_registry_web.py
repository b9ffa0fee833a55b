"""The registry's pages in Chromium (both backends, network closed): a community head places a
queued case by choosing a candidate on /queue; a grid worker sees her residents masked on
/worker/registry, with her buildings drawn on the map; no CSP violation, no foreign request."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.browser.test_pages_web import assert_clean, login, wait_layer
from tests.test_pages import wire
from tests.test_registry import ID_A
from tests.test_registry_web import _queue_case, registry_cast

pytestmark = pytest.mark.slow


@pytest.fixture
def live_app(live_app, sessionmaker, tmp_path):
    wire(live_app)
    ids = registry_cast(live_app, sessionmaker, tmp_path)
    ids["queued"] = _queue_case(sessionmaker)
    live_app.config["GM_TEST_IDS"] = ids
    return live_app


def test_head_places_a_queued_case_by_choosing_a_candidate(gm_page, live_app, sessionmaker):
    from gridmap.incidents.models import Case

    cid = live_app.config["GM_TEST_IDS"]["queued"]
    login(gm_page, "head")
    gm_page.goto("/queue")
    item = gm_page.page.locator(f'li.queue-item[data-case-id="{cid}"]')
    assert item.count() == 1
    cand = item.locator("form.candidate-form", has_text="浙江省舟山市定海区解放西路123号")
    with gm_page.page.expect_navigation():
        cand.locator("button").click()
    assert "已定位到" in gm_page.page.locator(".flashes").inner_text()
    assert gm_page.page.locator(f'li.queue-item[data-case-id="{cid}"]').count() == 0
    with sessionmaker() as s:
        c = s.get(Case, cid)
        assert c.placement == "manual" and c.status == "dispatched"
        assert c.assignee_worker_id == live_app.config["GM_TEST_IDS"]["w1"]
    assert_clean(gm_page)


def test_worker_sees_her_residents_masked_and_her_buildings_on_the_map(gm_page, live_app):
    login(gm_page, "w1")
    gm_page.goto("/worker/registry")
    text = gm_page.page.locator("main").inner_text()
    assert "张桂英" in text and ID_A[:6] + "********" + ID_A[-4:] in text and "138****5678" in text
    assert ID_A not in gm_page.page.content() and "王小雨" not in text
    wait_layer(gm_page, "buildings")
    assert gm_page.page.locator("path.gm-building").count() == 1
    assert_clean(gm_page)
