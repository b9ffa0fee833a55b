"""Maps people can read, in Chromium: the offline vector basemap under the cells, labels by zoom,
one legend naming every layer, a metric scale only."""
from __future__ import annotations

import pytest

from gridmap.web import maps
from tests.browser.test_maps_offline import _wait_layer, map_data  # noqa: F401 (fixture)


def _readable_view():
    from flask import request

    z = int(request.args.get("z", "15"))
    m = maps.make_map(center=(30.035, 122.01), zoom=z, control_scale=True)  # the default basemap
    maps.add_cells_layer(m, levels=maps.LEVELS_BY_ZOOM)
    maps.add_cases_layer(m, case_url="/cases/{id}")
    return maps.render_page(m, title="可读地图")


@pytest.fixture
def live_app(live_app):
    live_app.add_url_rule("/_test/readable", "test_readable", _readable_view)
    return live_app


@pytest.mark.slow
def test_basemap_labels_legend_and_metric_scale(gm_page, map_data):  # noqa: F811
    gm = gm_page
    gm.login(map_data["token"])
    gm.goto("/_test/readable?z=15")
    _wait_layer(gm, "basemap")
    _wait_layer(gm, "cells")
    _wait_layer(gm, "cases")
    page = gm.page
    # the vector basemap: land drawn in its own pane under the cells, the sea as background
    assert page.locator(".leaflet-gmBasemap-pane path").count() == 1
    bg = page.evaluate("getComputedStyle(document.querySelector('.leaflet-container')).backgroundColor")
    assert bg == "rgb(220, 235, 245)"
    assert page.locator("img.leaflet-tile").count() == 0
    # cells at zoom 15 carry their number and short code
    labels = page.locator(".gm-area-label-cell").all_inner_texts()
    assert labels and all(" · 0" in t for t in labels)
    assert "第1网格 · 001" in labels
    # one legend names the layers
    legend = page.locator(".gm-layer-legend").inner_text()
    for word in ("网格边界", "事件", "超时", "陆地", "海域"):
        assert word in legend
    # metric only
    scale = page.locator(".leaflet-control-scale").inner_text()
    assert ("m" in scale or "km" in scale) and "ft" not in scale and "mi" not in scale
    assert page.locator(".leaflet-control-scale-line").count() == 1
    assert gm.log.errors == []

    # zoomed out to the streets: the cells lose their labels, the streets are named
    gm.page.evaluate("() => GridmapLayers.get('cells').loader.map.setZoom(11)")
    _wait_layer(gm, "cells", 2)
    assert page.locator(".gm-area-label-cell").count() == 0
    streets = page.locator(".gm-area-label-street").all_inner_texts()
    assert set(streets) == {"西街道", "东街道"}
    assert "街道乡镇边界" in page.locator(".gm-layer-legend").inner_text()
