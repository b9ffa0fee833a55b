"""Charts drawn by the app itself as inline SVG (no script, no CDN): the centre's trend of cases.

Owns: ``stacked_bars``: one bar per period (day, week or month), stacked by series (categories),
with a y axis of round ticks, period labels thinned to fit, and a ``<title>`` on every bar segment
(a tooltip that needs no script). Every text is escaped; the result is ``Markup`` for Jinja.
"""
from __future__ import annotations

import math

from markupsafe import Markup, escape

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#718096")


def _nice_max(v: int) -> tuple[int, int]:
    """(axis maximum, tick step): a round step giving 2–5 ticks."""
    if v <= 0:
        return 1, 1
    mag = 10 ** int(math.floor(math.log10(v)))
    for step in (mag / 5, mag / 2, mag, 2 * mag, 5 * mag, 10 * mag):
        step = max(1, int(step))
        if math.ceil(v / step) <= 5:
            return int(math.ceil(v / step) * step), step
    return v, v


def stacked_bars(periods: list[str], series: list[dict], *, width: int = 640, height: int = 220,
                 label: str = "", unit_label: str = "") -> Markup:
    """An SVG of ``series`` ([{"name", "counts"}]) stacked per period; colours follow ``PALETTE``."""
    left, right, top, bottom = 36, 8, 10, 34
    n = max(1, len(periods))
    totals = [sum(s["counts"][i] for s in series) for i in range(len(periods))]
    ymax, step = _nice_max(max(totals) if totals else 0)
    plot_w, plot_h = width - left - right, height - top - bottom
    bw = plot_w / n
    out = [f'<svg class="chart chart-trend" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">']
    for t in range(0, ymax + 1, step):
        y = top + plot_h - plot_h * t / ymax
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">{t}</text>')
    every = max(1, math.ceil(n / 10))
    for i, p in enumerate(periods):
        x = left + i * bw
        base = 0
        for k, s in enumerate(series):
            v = s["counts"][i]
            if not v:
                continue
            h = plot_h * v / ymax
            y = top + plot_h - plot_h * (base + v) / ymax
            colour = PALETTE[k % len(PALETTE)]
            out.append(f'<rect x="{x + bw * 0.1:.1f}" y="{y:.1f}" width="{max(1.0, bw * 0.8):.1f}" '
                       f'height="{h:.1f}" fill="{colour}"><title>{escape(p)} {escape(s["name"])}: {v}</title></rect>')
            base += v
        if i % every == 0:
            out.append(f'<text x="{x + bw / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
                       f'class="tick">{escape(p[5:] if len(p) >= 10 else p)}</text>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" class="axis"/>')
    if unit_label:
        out.append(f'<text x="{left}" y="{height - 4}" class="tick">{escape(unit_label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def legend_items(series: list[dict]) -> list[tuple[str, str, int]]:
    """(colour, name, total) per series, for the chart's HTML legend."""
    return [(PALETTE[k % len(PALETTE)], s["name"], int(sum(s["counts"]))) for k, s in enumerate(series)]
