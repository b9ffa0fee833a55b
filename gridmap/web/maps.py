"""folium maps that work with no internet: every script, stylesheet and font from ``/static/vendor``.

Owns: the folium subclasses whose ``default_js``/``default_css`` point at the app's own copies
(``tools/vendor_assets.py`` fetches them), ``make_map`` with the configured basemap, ``map_parts``
to put a map into a Jinja page beside tables, and the helpers that attach the bbox-loaded layers of
``static/js/gridmap-layers.js`` (cells, cases, choropleth, heat) to a map.

Rules this module keeps:
- Links are changed by subclassing, at class level of the subclass. Never call
  ``add_css_link``/``add_js_link`` on an instance: they edit the class-level lists of
  ``folium.Map`` (and the plugins) and so every map in the process.
- A page references no host but the configured basemap's: ``map_parts`` refuses a map whose
  header loads a script or stylesheet from elsewhere (e.g. a stock folium plugin was added).
- Features are never written into the page: layers load per visible area from ``/api/v1/geo``.

Basemaps (``GRIDMAP_BASEMAP``):
  ``vector``             the default, offline: the app's own light vector layer (land from the district
                         outlines in the database, sea around it, district and street names), drawn
                         under the cells from ``/api/v1/geo/basemap``; works anywhere, no tiles
  ``none``               no basemap at all, a plain light background
  ``tianditu``           天地图 vector (vec_w) + annotation (cva_w), Web Mercator, t0–t7.tianditu.gov.cn,
                         key ``GRIDMAP_TIANDITU_KEY``; CGCS2000 ≈ WGS84, so no offset to correct
  ``xyz:<template>``     any {z}/{x}/{y} tile server in WGS84/Web Mercator (not Amap/Tencent tiles:
                         those are GCJ-02 and would sit ~500 m off the cells)
  ``local:<folder>``     tiles the app serves from <folder>/{z}/{x}/{y}.png at /tiles/local/…

Usage in a view::

    m = make_map(bounds=(122.0, 30.0, 122.1, 30.1))
    add_cells_layer(m, url_for("geo_api.cells"), level="cell")
    add_cases_layer(m, url_for("geo_api.cases"), case_url="/cases/{id}")
    return render_template("page.html", map=map_parts(m))

and in the template ``{{ map.header }}`` in <head>, ``{{ map.html }}`` inside a sized container,
``{{ map.script }}`` at the end of <body>.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import folium
from flask import has_request_context
from folium.elements import JSCSSMixin
from folium.map import FitBounds
from folium.plugins import Draw, HeatMap, MarkerCluster
from folium.template import Template
from markupsafe import Markup, escape

from gridmap.web.csp import add_nonce

log = logging.getLogger(__name__)

VENDOR = "/static/vendor"
LAYERS_JS = "/static/js/gridmap-layers.js"
LAYERS_CSS = "/static/css/gridmap-layers.css"
GEO_API = "/api/v1/geo"
LOCAL_TILES = "/tiles/local/{z}/{x}/{y}.png"
NO_TILES_BACKGROUND = "#f3f4f1"
SEA_BACKGROUND = "#dcebf5"  # under the vector basemap's land
BASEMAP_URL = f"{GEO_API}/basemap"
DEFAULT_CENTER = (30.0, 122.2)  # Zhoushan, (lat, lon)
#: (min zoom, level) for add_cells_layer(levels=...): districts when the whole city is in view,
#: cells from zoom 14 (a community fills the screen)
LEVELS_BY_ZOOM = ((0, "district"), (10, "street"), (12, "community"), (14, "cell"))

TIANDITU_HOSTS = tuple(f"t{i}.tianditu.gov.cn" for i in range(8))
TIANDITU_URL = ("https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}")

_MAP_JS = [
    ("leaflet", f"{VENDOR}/leaflet/leaflet.js"),
    ("jquery", f"{VENDOR}/jquery/jquery.min.js"),
    ("bootstrap", f"{VENDOR}/bootstrap/bootstrap.bundle.min.js"),
    ("awesome_markers", f"{VENDOR}/awesome-markers/leaflet.awesome-markers.min.js"),
]
_MAP_CSS = [
    ("leaflet_css", f"{VENDOR}/leaflet/leaflet.css"),
    ("bootstrap_css", f"{VENDOR}/bootstrap/bootstrap.min.css"),
    ("glyphicons_css", f"{VENDOR}/glyphicons/glyphicons.css"),
    ("awesome_markers_font_css", f"{VENDOR}/fontawesome/css/all.min.css"),
    ("awesome_markers_css", f"{VENDOR}/awesome-markers/leaflet.awesome-markers.css"),
    ("awesome_rotate_css", f"{VENDOR}/awesome-markers/leaflet.awesome.rotate.css"),
]
_CLUSTER_JS = [("markerclusterjs", f"{VENDOR}/markercluster/leaflet.markercluster.js")]
_CLUSTER_CSS = [("markerclustercss", f"{VENDOR}/markercluster/MarkerCluster.css"),
                ("markerclusterdefaultcss", f"{VENDOR}/markercluster/MarkerCluster.Default.css")]
_HEAT_JS = [("leaflet-heat.js", f"{VENDOR}/leaflet-heat/leaflet_heat.min.js")]


# ----------------------------------------------------------------------------- local-asset classes

class LocalMap(folium.Map):
    """folium.Map with local assets, and a header that styles only its own element.

    folium's own header also sets ``html, body {height: 100%; margin: 0}`` and ``#map {position:
    absolute…}``, which would reshape the page a map is embedded in; this one does not.
    """

    default_js = list(_MAP_JS)
    default_css = list(_MAP_CSS)

    _template = Template("""
        {% macro header(this, kwargs) %}
            <style>
                #{{ this.get_name() }} {
                    position: {{this.position}};
                    width: {{this.width[0]}}{{this.width[1]}};
                    height: {{this.height[0]}}{{this.height[1]}};
                    left: {{this.left[0]}}{{this.left[1]}};
                    top: {{this.top[0]}}{{this.top[1]}};
                }
                #{{ this.get_name() }}.leaflet-container { font-size: {{this.font_size}};
                    {%- if this.background %} background: {{ this.background }};{% endif %} }
            </style>
            <script>
                L_NO_TOUCH = {{ this.global_switches.no_touch |tojson}};
                L_DISABLE_3D = {{ this.global_switches.disable_3d|tojson }};
            </script>
        {% endmacro %}

        {% macro html(this, kwargs) %}
            <div class="folium-map gridmap-map" id={{ this.get_name()|tojson }} ></div>
        {% endmacro %}

        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.map(
                {{ this.get_name()|tojson }},
                {
                    center: {{ this.location|tojson }},
                    crs: L.CRS.{{ this.crs }},
                    ...{{this.options|tojavascript}}
                }
            );
            {%- if this.control_scale %}
            L.control.scale({metric: true, imperial: false}).addTo({{ this.get_name() }});
            {%- endif %}
            {%- if this.zoom_control_position %}
            L.control.zoom( { position: {{ this.zoom_control|tojson }} } ).addTo({{ this.get_name() }});
            {%- endif %}
            {%- if this.objects_to_stay_in_front %}
            function objects_in_front() {
                {%- for obj in this.objects_to_stay_in_front %}
                    {{ obj.get_name() }}.bringToFront();
                {%- endfor %}
            };
            {{ this.get_name() }}.on("overlayadd", objects_in_front);
            document.addEventListener("DOMContentLoaded", objects_in_front);
            {%- endif %}
        {% endmacro %}
    """)

    def __init__(self, *args, background: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.background = background


class LocalMarkerCluster(MarkerCluster):
    default_js = list(_CLUSTER_JS)
    default_css = list(_CLUSTER_CSS)


class LocalDraw(Draw):
    default_js = [("leaflet_draw_js", f"{VENDOR}/leaflet-draw/leaflet.draw.js")]
    default_css = [("leaflet_draw_css", f"{VENDOR}/leaflet-draw/leaflet.draw.css")]


class LocalHeatMap(HeatMap):
    default_js = list(_HEAT_JS)


# ----------------------------------------------------------------------------- basemaps

def _config(key: str, default=None):
    try:
        from flask import current_app

        return current_app.config.get(key, default)
    except RuntimeError:  # outside an app context
        return default


def parse_basemap(basemap: str | None) -> tuple[str, str]:
    """("vector" | "none" | "tianditu" | "xyz" | "local", argument)."""
    spec = (basemap if basemap is not None else _config("GRIDMAP_BASEMAP", "vector")) or "vector"
    spec = spec.strip()
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in ("vector", "none", "tianditu") and not arg:
        return kind, ""
    if kind in ("xyz", "local") and arg.strip():
        return kind, arg.strip()
    raise ValueError(f"GRIDMAP_BASEMAP {spec!r} is not one of: vector, none, tianditu, xyz:<url template>, "
                     f"local:<folder>")


def basemap_hosts(basemap: str | None = None) -> tuple[str, ...]:
    """Hosts a page with this basemap may contact besides the app itself."""
    kind, arg = parse_basemap(basemap)
    if kind == "tianditu":
        return TIANDITU_HOSTS
    if kind == "xyz":
        host = urlsplit(arg).hostname or ""
        if "{s}" in host:
            return tuple(host.replace("{s}", s) for s in "abc")
        return (host,) if host else ()
    return ()


def _tile_layers(kind: str, arg: str, tianditu_key: str | None) -> tuple[list[folium.TileLayer], int]:
    """The tile layers of a basemap and the map's max zoom."""
    if kind == "tianditu":
        key = tianditu_key if tianditu_key is not None else _config("GRIDMAP_TIANDITU_KEY", "")
        if not key:
            log.warning("GRIDMAP_BASEMAP=tianditu but GRIDMAP_TIANDITU_KEY is empty: drawing the map without tiles")
            return [], 19
        layers = [folium.TileLayer(tiles=TIANDITU_URL.format(layer=layer, key=key), attr="天地图", name=name,
                                   subdomains="01234567", max_zoom=18, overlay=overlay)
                  for layer, name, overlay in (("vec", "天地图矢量", False), ("cva", "天地图注记", True))]
        return layers, 18
    if kind == "xyz":
        host = urlsplit(arg).hostname or arg
        return [folium.TileLayer(tiles=arg, attr=host, name="basemap", max_zoom=19)], 19
    if kind == "local":
        return [folium.TileLayer(tiles=LOCAL_TILES, attr="本地底图", name="basemap", max_zoom=19)], 19
    return [], 19


def _bounds_latlon(bounds) -> list[list[float]]:
    """(minlon, minlat, maxlon, maxlat) or folium's [[south, west], [north, east]] → the latter."""
    if len(bounds) == 4 and all(isinstance(v, (int, float)) for v in bounds):
        x0, y0, x1, y1 = (float(v) for v in bounds)
        return [[y0, x0], [y1, x1]]
    (s, w), (n, e) = bounds
    return [[float(s), float(w)], [float(n), float(e)]]


def make_map(*, bounds: Sequence | None = None, center: Sequence[float] | None = None, zoom: int | None = None,
             basemap: str | None = None, tianditu_key: str | None = None, height: str = "100%",
             width: str = "100%", **options) -> LocalMap:
    """A folium map with local assets and the configured basemap.

    ``bounds``: (minlon, minlat, maxlon, maxlat) like the API's bbox, or [[s, w], [n, e]];
    ``center``: (lat, lon) with ``zoom``; neither: Zhoushan. ``basemap`` overrides
    GRIDMAP_BASEMAP; ``options`` go to folium.Map (e.g. control_scale=True).
    """
    kind, arg = parse_basemap(basemap)
    tiles, max_zoom = _tile_layers(kind, arg, tianditu_key)
    fit = _bounds_latlon(bounds) if bounds is not None else None
    if fit is not None and center is None:
        center = ((fit[0][0] + fit[1][0]) / 2, (fit[0][1] + fit[1][1]) / 2)
    background = None if tiles else (SEA_BACKGROUND if kind == "vector" else NO_TILES_BACKGROUND)
    m = LocalMap(location=list(center or DEFAULT_CENTER), zoom_start=zoom if zoom is not None else 10, tiles=None,
                 width=width, height=height, background=background, maxZoom=max_zoom, minZoom=0, **options)
    if fit is not None:
        # before the tile layers, without animation: the first tiles and layer requests are those
        # of the final view
        fb = FitBounds(fit)
        fb.options["animate"] = False
        m.add_child(fb)
    for t in tiles:
        t.add_to(m)
    if kind == "vector":
        GridmapLayer("basemap", BASEMAP_URL, {"name": "basemap"}).add_to(m)
    return m


# ----------------------------------------------------------------------------- embedding

_EXTERNAL = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.I)


def external_urls(html: str) -> list[str]:
    """Scripts and stylesheets the HTML loads from another host (absolute or protocol-relative URLs)."""
    return _EXTERNAL.findall(html)


def map_parts(m: folium.Map) -> dict[str, Markup]:
    """The rendered map as ``{"header", "html", "script"}`` for a Jinja page.

    ``header`` (links and styles) goes in <head>, ``html`` (the map's <div>) where the map should
    be, ``script`` (a <script> element) at the end of <body>, after ``html``.
    Raises ValueError when something in the map loads a script or stylesheet from another host.
    """
    fig = m.get_root()
    fig.render()
    header = fig.header.render()
    bad = external_urls(header)
    if bad:
        raise ValueError(f"this map loads {bad[0]} from another host; use the Local* classes of "
                         f"gridmap.web.maps (or add the asset to static/vendor)")
    return {"header": Markup(header), "html": Markup(fig.html.render()),
            "script": Markup("<script>\n" + fig.script.render() + "\n</script>")}


def render_page(m: folium.Map, title: str = "gridmap") -> str:
    """A whole HTML page holding only the map (full window)."""
    parts = map_parts(m)
    page = ("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(title)}</title>\n<style>html, body {{ height: 100%; margin: 0; }}</style>\n"
            f"{parts['header']}\n</head>\n<body>\n{parts['html']}\n{parts['script']}\n</body>\n</html>\n")
    # served in a request, its inline scripts and styles carry the policy's nonce (CSP on every answer)
    return str(add_nonce(page)) if has_request_context() else page


# ----------------------------------------------------------------------------- bbox-loaded layers

class GridmapLayer(JSCSSMixin, folium.MacroElement):
    """Emits ``GridmapLayers.<kind>(map, url, options)``; the handle is ``GridmapLayers.get(name)``."""

    default_js = [("gridmap_layers", LAYERS_JS)]
    default_css = [("gridmap_layers_css", LAYERS_CSS)]

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = GridmapLayers.{{ this.kind }}(
                {{ this._parent.get_name() }}, {{ this.url|tojson }}, {{ this.layer_options|tojson }});
        {% endmacro %}
    """)

    def __init__(self, kind: str, url: str, options: dict):
        super().__init__()
        self._name = "GridmapLayer"
        if kind not in ("cells", "cases", "choropleth", "heat", "basemap"):
            raise ValueError(f"unknown layer kind {kind!r}")
        self.kind = kind
        self.url = url
        self.layer_options = {k: v for k, v in options.items() if v is not None}


class GridmapCasesLayer(GridmapLayer):
    default_js = list(_CLUSTER_JS) + [("gridmap_layers", LAYERS_JS)]
    default_css = list(_CLUSTER_CSS) + [("gridmap_layers_css", LAYERS_CSS)]


class GridmapHeatLayer(GridmapLayer):
    default_js = list(_HEAT_JS) + [("gridmap_layers", LAYERS_JS)]


def add_cells_layer(m: folium.Map, url: str = f"{GEO_API}/cells", *, level: str = "cell", name: str = "cells",
                    levels: Sequence[tuple[int, str]] | None = None,
                    property: str | None = None, breaks: Sequence[float] | None = None,
                    colors: Sequence[str] | None = None, filter: dict | None = None,
                    tooltip: Sequence[Sequence[str]] | None = None, **opts) -> GridmapLayer:
    """Area outlines of ``level`` in view, optionally filled by ``property`` (classes by ``breaks``).

    ``levels`` (e.g. LEVELS_BY_ZOOM) picks the level by zoom instead; ``tooltip`` is a list of
    (property, label) pairs; ``area_url`` like "/areas/{code}" makes areas clickable. Areas are
    labelled by zoom (``labels=False`` turns it off): districts and streets from the zoom they
    are drawn at, communities from 12, cells from 15 with their name and the last digits of
    their code; a legend entry names the layer.
    """
    if "area_url" in opts:
        opts["areaUrl"] = opts.pop("area_url")
    layer = GridmapLayer("cells", url, {"name": name, "level": level, "property": property,
                                        "levels": [list(p) for p in levels] if levels else None,
                                        "breaks": list(breaks) if breaks else None,
                                        "colors": list(colors) if colors else None, "filter": filter,
                                        "tooltip": [list(t) for t in tooltip] if tooltip else None, **opts})
    layer.add_to(m)
    return layer


def add_cases_layer(m: folium.Map, url: str = f"{GEO_API}/cases", *, name: str = "cases",
                    filter: dict | None = None, case_url: str | None = None, **opts) -> GridmapLayer:
    """Clustered case markers in view (red overdue, orange urgent); ``case_url`` like "/cases/{id}"."""
    layer = GridmapCasesLayer("cases", url, {"name": name, "filter": filter, "caseUrl": case_url, **opts})
    layer.add_to(m)
    return layer


def add_choropleth_layer(m: folium.Map, url: str = f"{GEO_API}/cells", *, property: str = "per_1000_households",
                         breaks: Sequence[float] = (1, 2, 5, 10), colors: Sequence[str] | None = None,
                         legend: str | bool = True, level: str = "cell", name: str = "choropleth",
                         filter: dict | None = None, **opts) -> GridmapLayer:
    """Areas filled by classes of ``property`` with a legend (``len(colors) == len(breaks) + 1``)."""
    colors = list(colors) if colors else ["#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704"][:len(breaks) + 1]
    if len(colors) != len(breaks) + 1:
        raise ValueError("choropleth needs one colour more than breaks")
    layer = GridmapLayer("choropleth", url, {"name": name, "property": property, "breaks": list(breaks),
                                             "colors": colors, "legend": legend, "level": level,
                                             "filter": filter, **opts})
    layer.add_to(m)
    return layer


def add_heat_layer(m: folium.Map, url: str = f"{GEO_API}/heat", *, name: str = "heat",
                   filter: dict | None = None, **opts) -> GridmapLayer:
    """A heat map of cases in view (aggregated on the server)."""
    layer = GridmapHeatLayer("heat", url, {"name": name, "filter": filter, **opts})
    layer.add_to(m)
    return layer


__all__ = ["LocalMap", "LocalMarkerCluster", "LocalDraw", "LocalHeatMap", "make_map", "map_parts", "render_page",
           "external_urls", "basemap_hosts", "parse_basemap", "add_cells_layer", "add_cases_layer",
           "add_choropleth_layer", "add_heat_layer", "GridmapLayer", "TIANDITU_HOSTS", "LEVELS_BY_ZOOM"]
