"""Maps that work with no internet: folium with local assets, the bbox-loaded layers, in Chromium.

The first tests need no browser (what ``gridmap.web.maps`` writes into a page); the ``slow`` ones
open a test-only page (``/_test/map``, registered here on the test app) in Chromium with the
network closed, and authenticate the geo API with a Bearer token.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import urlsplit

import folium
import folium.plugins
import pytest

from gridmap.web import maps

STATIC = Path(maps.__file__).resolve().parents[1] / "static"
XSS = "<img src=x onerror=alert(1)>"
UTC = dt.timezone.utc


def _local_refs(html: str) -> list[str]:
    return re.findall(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']?([^"'\s>]+)""", html)


# ----------------------------------------------------------------------------- no browser

def test_local_assets_only_and_present():
    m = maps.make_map(bounds=(122.0, 30.0, 122.08, 30.04), basemap="none")
    maps.add_cells_layer(m)
    maps.add_cases_layer(m)
    maps.add_choropleth_layer(m)
    maps.add_heat_layer(m)
    maps.LocalMarkerCluster().add_to(m)
    maps.LocalDraw().add_to(m)
    folium.Marker([30.01, 122.01], icon=folium.Icon(angle=45)).add_to(m)
    html = maps.render_page(m)
    refs = _local_refs(html)
    assert refs and all(r.startswith("/static/") for r in refs), refs
    for r in refs:
        assert (STATIC / r[len("/static/"):]).is_file(), r
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assert "tileLayer" not in html and '"maxZoom": 19' in html
    # fitBounds before any tile layer, the light background of a tiles-less map
    assert "fitBounds" in html and maps.NO_TILES_BACKGROUND in html
    # the embedded header leaves the host page's <html>/<body> alone
    assert "html, body {" not in maps.map_parts(m)["header"]


def test_folium_class_lists_untouched():
    before = {cls: (list(cls.default_js), list(cls.default_css)) for cls in
              (folium.Map, folium.plugins.MarkerCluster, folium.plugins.Draw, folium.plugins.HeatMap)}
    m = maps.make_map(basemap="none")
    maps.LocalMarkerCluster().add_to(m)
    maps.LocalHeatMap([[30, 122, 1]]).add_to(m)
    maps.map_parts(m)
    for cls, (js, css) in before.items():
        assert cls.default_js == js and cls.default_css == css
        assert all("/static/" not in u for _, u in cls.default_js + cls.default_css)
    assert folium.Map.default_js is not maps.LocalMap.default_js


def test_map_parts_refuses_foreign_assets():
    m = maps.make_map(basemap="none")
    folium.plugins.MarkerCluster().add_to(m)  # stock plugin: loads from cdnjs
    with pytest.raises(ValueError, match="another host"):
        maps.map_parts(m)


def test_map_parts_shape():
    m = maps.make_map(center=(30.02, 122.04), zoom=14, basemap="none", height="480px")
    maps.add_cells_layer(m, "/api/v1/geo/cells", level="community", name="areas")
    parts = maps.map_parts(m)
    assert set(parts) == {"header", "html", "script"}
    assert "/static/vendor/leaflet/leaflet.js" in parts["header"] and "480.0px" in parts["header"]
    assert 'class="folium-map gridmap-map"' in parts["html"]
    assert parts["script"].startswith("<script>") and parts["script"].rstrip().endswith("</script>")
    assert 'GridmapLayers.cells(' in parts["script"] and '"level": "community"' in parts["script"]
    assert '"name": "areas"' in parts["script"]


def test_layer_options_are_json_not_markup():
    m = maps.make_map(basemap="none")
    maps.add_cases_layer(m, "/api/v1/geo/cases?x=</script><script>alert(1)</script>",
                         filter={"category": "</script>"})
    script = maps.map_parts(m)["script"]
    assert script.count("</script>") == 1  # only the closing tag of the block itself


def test_basemaps():
    m = maps.make_map(basemap="tianditu", tianditu_key="KEY123")
    html = maps.render_page(m)
    assert "https://t{s}.tianditu.gov.cn/vec_w/wmts" in html and "https://t{s}.tianditu.gov.cn/cva_w/wmts" in html
    assert "tk=KEY123" in html and '"subdomains": "01234567"' in html and "\\u5929\\u5730\\u56fe" in html
    assert {urlsplit(u).hostname for u in maps.external_urls(html)} == set()
    assert maps.basemap_hosts("tianditu") == tuple(f"t{i}.tianditu.gov.cn" for i in range(8))

    html = maps.render_page(maps.make_map(basemap="xyz:https://tiles.example.org/{z}/{x}/{y}.png"))
    assert "https://tiles.example.org/{z}/{x}/{y}.png" in html
    assert maps.basemap_hosts("xyz:https://{s}.tile.example.org/{z}/{x}/{y}.png") == tuple(
        f"{s}.tile.example.org" for s in "abc")

    html = maps.render_page(maps.make_map(basemap="local:/srv/tiles"))
    assert '"/tiles/local/{z}/{x}/{y}.png"' in html and maps.basemap_hosts("local:/srv/tiles") == ()

    # tianditu without a key: no tiles rather than a page of 403s
    assert "tileLayer" not in maps.render_page(maps.make_map(basemap="tianditu", tianditu_key=""))
    for bad in ("osm", "xyz:", "local:", "tianditu:x"):
        with pytest.raises(ValueError):
            maps.make_map(basemap=bad)


def test_basemap_from_config(app):
    app.config.update(GRIDMAP_BASEMAP="tianditu", GRIDMAP_TIANDITU_KEY="CFGKEY")
    with app.app_context():
        html = maps.render_page(maps.make_map())
        hosts = maps.basemap_hosts()
    assert "tk=CFGKEY" in html and "t0.tianditu.gov.cn" in hosts


def test_bounds_forms():
    a = maps.render_page(maps.make_map(bounds=(122.0, 30.0, 122.08, 30.04), basemap="none"))
    b = maps.render_page(maps.make_map(bounds=[[30.0, 122.0], [30.04, 122.08]], basemap="none"))
    assert "[[30.0, 122.0], [30.04, 122.08]]" in a and "[[30.0, 122.0], [30.04, 122.08]]" in b


def test_vendor_files_match_manifest():
    import importlib.util

    spec = importlib.util.spec_from_file_location("vendor_assets", Path(__file__).parents[2] / "tools/vendor_assets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.check(STATIC / "vendor") == []
    for folder in ("leaflet", "jquery", "bootstrap", "fontawesome", "awesome-markers", "markercluster",
                   "leaflet-draw", "leaflet-heat", "glyphicons"):
        assert any(p.name.upper().startswith(("LICENSE", "MIT-LICEN")) for p in (STATIC / "vendor" / folder).iterdir())
    total = sum(p.stat().st_size for p in (STATIC / "vendor").rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024


# ----------------------------------------------------------------------------- in Chromium

def _test_map_view():
    from flask import current_app, request

    args = request.args
    bbox = tuple(float(v) for v in args.get("bounds", "122.0,30.0,122.08,30.04").split(","))
    m = maps.make_map(bounds=bbox, basemap=args.get("basemap", "none"))
    for layer in args.get("layers", "cells,cases").split(","):
        if layer == "cells":
            maps.add_cells_layer(m, levels=maps.LEVELS_BY_ZOOM if args.get("levels") == "auto" else None)
        elif layer == "cases":
            maps.add_cases_layer(m, filter={"status": args["status"]} if "status" in args else None,
                                 case_url="/cases/{id}")
        elif layer == "choropleth":
            maps.add_choropleth_layer(m, property="open_cases", breaks=(1, 3, 6), legend="未结事件")
        elif layer == "heat":
            maps.add_heat_layer(m)
    current_app.logger.debug("test map page")
    return maps.render_page(m, title="测试地图")


@pytest.fixture
def live_app(live_app):
    live_app.add_url_rule("/_test/map", "test_map", _test_map_view)
    return live_app


@pytest.fixture
def map_data(live_app, sessionmaker):
    """An admin token, 40 open cases spread over the city and one titled with HTML, alone in its cell."""
    from gridmap.db import transaction
    from tests.casehelpers import CELL, OTHER_CELL, make_category, make_token, make_user
    from tests.test_geo_api import add_case

    with transaction(sessionmaker) as s:
        cat = make_category(s, "test.litter", name="暴露垃圾")
        make_user(s, "admin", "admin")
        token = make_token(s, "admin")
        for i in range(40):
            add_case(s, cat, lon=122.002 + (i % 8) * 0.0022, lat=30.031 + (i // 8) * 0.0016,
                     cell_code=CELL, urgent=i % 7 == 0,
                     deadline_at=dt.datetime.now(UTC) - dt.timedelta(hours=1) if i % 5 == 0 else None)
        add_case(s, cat, lon=122.05, lat=30.035, cell_code=OTHER_CELL, title=XSS)
    return {"token": token}


def _wait_layer(gm, name: str, loads: int = 1):
    gm.page.wait_for_function(
        "([n, k]) => { const el = document.querySelector('.leaflet-container');"
        " return el && Number(el.getAttribute('data-gm-' + n) || 0) >= k; }", arg=[name, loads], timeout=15000)


@pytest.mark.slow
def test_map_renders_offline(gm_page, map_data):
    gm = gm_page
    gm.login(map_data["token"])
    gm.goto("/_test/map")
    _wait_layer(gm, "cells")
    _wait_layer(gm, "cases")
    page = gm.page
    container = page.locator(".leaflet-container")
    assert container.count() == 1
    bg = page.evaluate("getComputedStyle(document.querySelector('.leaflet-container')).backgroundColor")
    assert bg == "rgb(243, 244, 241)"
    assert page.locator("img.leaflet-tile").count() == 0
    assert page.locator(".leaflet-overlay-pane svg path.leaflet-interactive").count() == 16
    assert page.locator(".marker-cluster").count() >= 1  # 40 cases in one cell at city zoom
    assert page.locator(".gm-message:visible").count() == 0
    assert gm.log.errors == [] and gm.log.dialogs == []
    # every request went to the app (the fixture checks it again at teardown)
    assert gm.log.urls and all(gm.log.is_server(u) for u in gm.log.urls)
    assert gm.log.blocked == []
    assert any("/static/vendor/leaflet/leaflet.js" in u for u in gm.log.urls)


@pytest.mark.slow
def test_moving_the_map_reloads_by_bbox(gm_page, map_data):
    gm = gm_page
    gm.login(map_data["token"])
    gm.goto("/_test/map")
    _wait_layer(gm, "cells")
    before = [u for u in gm.log.urls if "/api/v1/geo/cells" in u]
    assert len(before) == 1  # the first request is for the fitted view, not the one before it
    assert "level=cell" in before[0] and "z=14" in before[0]
    gm.page.evaluate("() => { const m = GridmapLayers.get('cells').loader.map; m.setView([30.035, 122.01], 16); }")
    _wait_layer(gm, "cells", 2)
    after = [u for u in gm.log.urls if "/api/v1/geo/cells" in u]
    assert len(after) == 2
    last = dict(p.split("=", 1) for p in urlsplit(after[-1]).query.split("&"))
    assert last["z"] == "16" and last["level"] == "cell"
    x0, y0, x1, y1 = (float(v) for v in last["bbox"].replace("%2C", ",").split(","))
    assert x0 < 122.01 < x1 and y0 < 30.035 < y1 and x1 - x0 < 0.05
    n = gm.page.locator(".leaflet-overlay-pane svg path.leaflet-interactive").count()
    assert 1 <= n < 16


@pytest.mark.slow
def test_level_follows_zoom(gm_page, map_data):
    gm = gm_page
    gm.login(map_data["token"])
    gm.goto("/_test/map?layers=cells&levels=auto")
    _wait_layer(gm, "cells")
    assert gm.page.evaluate("GridmapLayers.get('cells').lastData.level") == "cell"
    gm.page.evaluate("GridmapLayers.get('cells').loader.map.setZoom(11)")
    _wait_layer(gm, "cells", 2)
    assert gm.page.evaluate("GridmapLayers.get('cells').lastData.level") == "street"
    assert gm.page.locator(".leaflet-overlay-pane svg path.leaflet-interactive").count() == 2


@pytest.mark.slow
def test_popup_shows_html_as_text(gm_page, map_data):
    gm = gm_page
    gm.login(map_data["token"])
    gm.goto("/_test/map?bounds=122.049,30.034,122.051,30.036&layers=cases")
    _wait_layer(gm, "cases")
    marker = gm.page.locator(".gm-case")
    assert marker.count() == 1
    assert marker.get_attribute("title") == XSS
    marker.click()
    popup = gm.page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    assert XSS in popup.inner_text()
    assert popup.locator("img").count() == 0
    assert gm.page.locator("img[src='x']").count() == 0
    gm.page.wait_for_timeout(300)
    assert gm.log.dialogs == [] and gm.log.errors == []
    assert not any(urlsplit(u).path.endswith("/x") for u in gm.log.urls)


@pytest.mark.slow
def test_cases_filter_and_aggregates(gm_page, map_data):
    gm = gm_page
    gm.login(map_data["token"])
    gm.goto("/_test/map?layers=cases")
    _wait_layer(gm, "cases")
    n = gm.page.evaluate("GridmapLayers.get('cases').lastData.count")
    assert n == 41
    # past the cap the server sends one feature per cell; the layer draws them as counts
    gm.page.evaluate("GridmapLayers.get('cases').setFilter({limit: 10})")
    _wait_layer(gm, "cases", 2)
    assert gm.page.evaluate("GridmapLayers.get('cases').lastData.aggregated") is True
    agg = gm.page.locator(".gm-aggregate")
    assert agg.count() == 2
    assert sorted(agg.all_inner_texts()) == ["1", "40"]


@pytest.mark.slow
def test_choropleth_and_heat(gm_page, map_data):
    gm = gm_page
    gm.login(map_data["token"])
    gm.goto("/_test/map?layers=choropleth,heat")
    _wait_layer(gm, "choropleth")
    _wait_layer(gm, "heat")
    legend = gm.page.locator(".gm-legend:not(.gm-layer-legend)")  # the choropleth's classes
    assert legend.count() == 1 and "未结事件" in legend.inner_text() and "≥ 6" in legend.inner_text()
    assert "事件热力" in gm.page.locator(".gm-layer-legend").inner_text()  # the other layers' legend
    fills = gm.page.evaluate("Array.from(document.querySelectorAll('.leaflet-overlay-pane path'))"
                             ".map(p => p.getAttribute('fill'))")
    # breaks 1, 3, 6: CELL has 40 open cases, OTHER_CELL 1, the other 14 none
    assert len(fills) == 16
    assert (fills.count("#d94801"), fills.count("#fdd0a2"), fills.count("#fff5eb")) == (1, 1, 14)
    assert gm.page.locator("canvas.leaflet-heatmap-layer").count() == 1
    assert gm.log.errors == []


@pytest.mark.slow
def test_unauthenticated_layers_show_a_message(gm_page, map_data):
    gm = gm_page  # no login: the page itself is public in this test app, the API is not
    gm.goto("/_test/map")
    gm.page.locator(".gm-message").wait_for(state="visible", timeout=10000)
    assert "请先登录" in gm.page.locator(".gm-message").inner_text()
    assert gm.page.locator(".leaflet-overlay-pane path").count() == 0


@pytest.mark.slow
def test_tianditu_basemap_contacts_only_tianditu(gm_page, map_data, live_app):
    # a city that uses Tianditu configures it: the pages' CSP then allows its tile hosts
    live_app.config.update(GRIDMAP_BASEMAP="tianditu", GRIDMAP_TIANDITU_KEY="testkey")
    gm = gm_page
    gm.log.allow(*maps.basemap_hosts("tianditu"))
    gm.login(map_data["token"])
    gm.goto("/_test/map?basemap=tianditu")
    _wait_layer(gm, "cells")
    gm.page.wait_for_timeout(300)
    tiles = [u for u in gm.log.urls if not gm.log.is_server(u)]
    assert tiles, "no tile requests"
    assert {urlsplit(u).hostname for u in tiles} <= set(maps.TIANDITU_HOSTS)
    assert all("tk=testkey" in u for u in tiles)
    assert {"vec_w", "cva_w"} <= {urlsplit(u).path.strip("/").split("/")[0] for u in tiles}
    # the token for the app never goes to the basemap (blocked requests carry no Authorization)
    assert set(gm.log.blocked) == set(tiles)
    # the map still works with the network closed: cells drawn, no script errors
    assert gm.page.locator(".leaflet-overlay-pane svg path.leaflet-interactive").count() == 16
    assert gm.log.errors == []
