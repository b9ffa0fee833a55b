"""Static area maps for printed ledgers: the area's cells with cases and hazards, as inline SVG.

Owns: drawing lon/lat geometries into an SVG (an equirectangular projection scaled by cos(latitude)
at the map's centre, which is true to within a fraction of a percent at cell scale), with cell
outlines, their short labels, case points, hazard points and areas, and a legend. Pure shapely and
text: no network, no basemap tiles, no plotting library, so it prints the same everywhere.
"""
from __future__ import annotations

import math
from html import escape

import numpy as np
import shapely

PALETTE = {"cell": "#4a6fa5", "case": "#d9480f", "case_open": "#d9480f", "case_closed": "#2b8a3e",
           "hazard": "#c92a2a", "hazard_area": "#f59f00"}


class _Proj:
    def __init__(self, bounds, width: int, height: int, margin: int = 12):
        x0, y0, x1, y1 = bounds
        if not all(math.isfinite(v) for v in bounds) or x1 <= x0 or y1 <= y0:
            x0, y0, x1, y1 = x0 - 0.001, y0 - 0.001, x0 + 0.001, y0 + 0.001
        self.k = math.cos(math.radians((y0 + y1) / 2))
        w_units, h_units = (x1 - x0) * self.k, (y1 - y0)
        self.s = min((width - 2 * margin) / w_units, (height - 2 * margin) / h_units)
        self.ox = margin + ((width - 2 * margin) - w_units * self.s) / 2
        self.oy = margin + ((height - 2 * margin) - h_units * self.s) / 2
        self.x0, self.y1 = x0, y1

    def xy(self, coords: np.ndarray) -> np.ndarray:
        x = self.ox + (coords[:, 0] - self.x0) * self.k * self.s
        y = self.oy + (self.y1 - coords[:, 1]) * self.s
        return np.column_stack([x, y])


def _path(geom, proj: _Proj) -> str:
    """SVG path data of a (Multi)Polygon: every ring a closed sub-path (holes via even-odd fill)."""
    parts = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.geom_type != "Polygon":
            continue
        for ring in [poly.exterior, *poly.interiors]:
            pts = proj.xy(np.asarray(ring.coords))
            parts.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + "Z")
    return "".join(parts)


def area_map_svg(cells, *, labels=None, case_points=None, case_closed=None, hazards=None, title: str | None = None,
                 width: int = 900, height: int = 520) -> str:
    """An SVG (text) of ``cells`` (lon/lat polygons) with ``labels``, case points ((lon, lat) arrays,
    ``case_closed`` a boolean per point) and hazards (lon/lat geometries: points or areas)."""
    cells = [g for g in (cells if cells is not None else []) if g is not None and not g.is_empty]
    hazards = [g for g in (hazards if hazards is not None else []) if g is not None and not g.is_empty]
    pts = np.asarray(case_points if case_points is not None else np.empty((0, 2)), dtype="float64").reshape(-1, 2)
    everything = cells + hazards + ([shapely.multipoints(pts)] if len(pts) else [])
    if not everything:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="80" viewBox="0 0 {width} 80">'
                f'<text x="10" y="40" font-size="14">（无可绘制的区域）</text></svg>')
    bounds = shapely.total_bounds(cells if cells else everything)
    legend_h = 26
    proj = _Proj(bounds, width, height - legend_h)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Noto Sans CJK SC, sans-serif" role="img">']
    if title:
        out.append(f"<title>{escape(title)}</title>")
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>')
    out.append(f'<g fill="#eef3fa" stroke="{PALETTE["cell"]}" stroke-width="0.8" fill-rule="evenodd">')
    for g in cells:
        out.append(f'<path d="{_path(g, proj)}"/>')
    out.append("</g>")
    if labels is not None and len(cells) <= 80:
        out.append('<g font-size="10" fill="#364fc7" text-anchor="middle">')
        for g, lab in zip(cells, labels):
            p = proj.xy(np.asarray(g.point_on_surface().coords))[0]
            out.append(f'<text x="{p[0]:.1f}" y="{p[1]:.1f}">{escape(str(lab))}</text>')
        out.append("</g>")
    areas = [g for g in hazards if g.geom_type != "Point"]
    points = [g for g in hazards if g.geom_type == "Point"]
    if areas:
        out.append(f'<g fill="{PALETTE["hazard_area"]}" fill-opacity="0.35" stroke="{PALETTE["hazard_area"]}" '
                   'stroke-width="1.2" fill-rule="evenodd">')
        for g in areas:
            out.append(f'<path d="{_path(g, proj)}"/>')
        out.append("</g>")
    if len(pts):
        closed = np.asarray(case_closed if case_closed is not None else np.zeros(len(pts), bool), dtype=bool)
        xy = proj.xy(pts)
        out.append('<g stroke="#ffffff" stroke-width="0.6">')
        for (x, y), c in zip(xy, closed):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.2" '
                       f'fill="{PALETTE["case_closed"] if c else PALETTE["case_open"]}"/>')
        out.append("</g>")
    if points:
        xy = proj.xy(np.array([[g.x, g.y] for g in points]))
        out.append(f'<g fill="{PALETTE["hazard"]}" stroke="#ffffff" stroke-width="0.6">')
        for x, y in xy:
            out.append(f'<path d="M{x:.1f},{y - 5:.1f}L{x + 4.5:.1f},{y + 3.5:.1f}L{x - 4.5:.1f},{y + 3.5:.1f}Z"/>')
        out.append("</g>")
    ly = height - legend_h + 16
    items = [("rect", "#eef3fa", "网格"), ("circle", PALETTE["case_open"], "未办结事件"),
             ("circle", PALETTE["case_closed"], "已办结事件"), ("tri", PALETTE["hazard"], "隐患点"),
             ("rect", PALETTE["hazard_area"], "隐患区域")]
    x = 12
    out.append('<g font-size="12" fill="#222">')
    for shape, color, text in items:
        if shape == "rect":
            out.append(f'<rect x="{x}" y="{ly - 9}" width="14" height="10" fill="{color}" stroke="#888" '
                       'stroke-width="0.5"/>')
        elif shape == "circle":
            out.append(f'<circle cx="{x + 7}" cy="{ly - 4}" r="4" fill="{color}"/>')
        else:
            out.append(f'<path d="M{x + 7},{ly - 10}L{x + 12},{ly}L{x + 2},{ly}Z" fill="{color}"/>')
        out.append(f'<text x="{x + 18}" y="{ly}">{escape(text)}</text>')
        x += 30 + 13 * len(text)
    out.append("</g></svg>")
    return "".join(out)
