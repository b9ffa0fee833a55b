"""`gridmap analysis …` and `gridmap ledger …`: thin commands over gridmap.analysis.

Exports ``analysis_group`` ("analysis": hotspots, rates, repeats, trend, density, scorecards, export)
and ``ledger_cmd`` ("ledger"), registered by the app's CLI. Commands act as the system (the whole
city in scope). Results print as short tables, or as JSON with --json / -o FILE.
"""
from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import with_appcontext

from gridmap.cliutil import require_schema, sessionmaker

from gridmap.accounts.actor import SYSTEM


def _call(fn, **kw):
    from gridmap.analysis.common import AnalysisError

    require_schema()
    with sessionmaker()() as s:
        try:
            return fn(s, SYSTEM, **kw)
        except AnalysisError as e:
            raise click.ClickException(f"{e.field}: {e.message}") from None


def _emit(out: dict, as_json: bool, output: str | None) -> bool:
    """Write JSON to a file or stdout; True when done (nothing else to print)."""
    if output:
        Path(output).write_text(json.dumps(out, ensure_ascii=False, default=str), encoding="utf-8")
        click.echo(f"wrote {output}")
        return True
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, default=str))
        return True
    if out.get("message"):
        click.echo(out["message"])
    return False


def _period_options(f):
    for opt in reversed([
        click.option("--from", "date_from", help="First day YYYY-MM-DD (local); default 30 days before --to."),
        click.option("--to", "date_to", help="Last day YYYY-MM-DD (local, included); default today."),
        click.option("--category", help="Category code (with its subcategories)."),
        click.option("--area", help="Only inside this area (code of any level)."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON (the API's answer)."),
        click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write JSON (GeoJSON) to this file."),
    ]):
        f = opt(f)
    return f


@click.group("analysis", help="Counts and rates, hot spots (Gi*), repeat places, trends, heat grid, scorecards, "
                              "exports.")
def analysis_group():
    pass


@analysis_group.command("hotspots", help="Getis-Ord Gi* hot and cold spots of case counts per area.")
@click.option("--level", type=click.Choice(["cell", "community", "street"]), default="cell", show_default=True)
@click.option("--permutations", type=click.IntRange(0, 9999), default=999, show_default=True)
@_period_options
@with_appcontext
def hotspots_cmd(level, permutations, date_from, date_to, category, area, as_json, output):
    from gridmap.analysis.hotspots import hotspots

    out = _call(hotspots, level=level, permutations=permutations, date_from=date_from, date_to=date_to,
                category=category, area=area)
    if _emit(out, as_json, output):
        return
    feats = [f["properties"] for f in out["features"]]
    sig = sorted((p for p in feats if p["class"] != "not_significant"), key=lambda p: -(p["gi_z"] or 0))
    click.echo(f"{out['total']} cases in {len(feats)} {level} areas; weights: {out['weights']}")
    for p in sig:
        click.echo(f"  {p['code']} {p['name']}: {p['class_name']}  count {p['count']}  z {p['gi_z']}  p {p['p_value']}")
    click.echo(f"{len(sig)} significant areas")


@analysis_group.command("rates", help="Cases per area and per 1,000 households.")
@click.option("--level", type=click.Choice(["cell", "community", "street", "district"]), default="community",
              show_default=True)
@_period_options
@with_appcontext
def rates_cmd(level, date_from, date_to, category, area, as_json, output):
    from gridmap.analysis.rates import rates

    out = _call(rates, level=level, date_from=date_from, date_to=date_to, category=category, area=area)
    if _emit(out, as_json, output):
        return
    for r in out["rows"]:
        rate = "-" if r["per_1000_households"] is None else f"{r['per_1000_households']:.2f}"
        click.echo(f"  {r['code']} {r['name']}: {r['count']} cases, {rate} per 1,000 households")
    click.echo(f"{out['total']} cases ({out['unplaced']} without a {level})")


@analysis_group.command("repeats", help="Places where cases of the same category keep coming back.")
@click.option("--radius-m", type=float, default=50.0, show_default=True)
@click.option("--min-count", type=int, default=3, show_default=True)
@click.option("--window-days", type=int, default=None)
@_period_options
@with_appcontext
def repeats_cmd(radius_m, min_count, window_days, date_from, date_to, category, area, as_json, output):
    from gridmap.analysis.repeats import repeats

    out = _call(repeats, radius_m=radius_m, min_count=min_count, window_days=window_days, date_from=date_from,
                date_to=date_to, category=category, area=area)
    if _emit(out, as_json, output):
        return
    for p in out["places"]:
        cell = p["cell"]["code"] if p["cell"] else "-"
        click.echo(f"  {p['count']}× {p['category_name']} at {p['lon']:.6f},{p['lat']:.6f} (±{p['radius_m']} m, "
                   f"cell {cell}) {p['first'][:10]} … {p['last'][:10]}")
    click.echo(f"{out['count']} places ({out['rule']})")


@analysis_group.command("trend", help="Cases per day, week or month.")
@click.option("--period", "unit", type=click.Choice(["day", "week", "month"]), default="month", show_default=True)
@click.option("--by", type=click.Choice(["none", "category", "cell", "community", "street"]), default="none",
              show_default=True)
@_period_options
@with_appcontext
def trend_cmd(unit, by, date_from, date_to, category, area, as_json, output):
    from gridmap.analysis.rates import trend

    out = _call(trend, unit=unit, by=by, date_from=date_from, date_to=date_to, category=category, area=area)
    if _emit(out, as_json, output):
        return
    click.echo("period      " + "  ".join(f"{s['name'][:10]:>10}" for s in out["series"]))
    for i, p in enumerate(out["periods"]):
        click.echo(f"{p}  " + "  ".join(f"{s['counts'][i]:>10}" for s in out["series"]))


@analysis_group.command("density", help="Kernel-density grid of case locations (the heat view), cases per km².")
@click.option("--cell-m", type=float, default=100.0, show_default=True)
@click.option("--bandwidth-m", type=float, default=300.0, show_default=True)
@_period_options
@with_appcontext
def density_cmd(cell_m, bandwidth_m, date_from, date_to, category, area, as_json, output):
    from gridmap.analysis.hotspots import density

    out = _call(density, cell_m=cell_m, bandwidth_m=bandwidth_m, date_from=date_from, date_to=date_to,
                category=category, area=area)
    if _emit(out, as_json, output):
        return
    click.echo(f"{out['total']} cases; grid {out['grid']}; peak {out.get('max')} per km²; "
               f"{len(out['points'])} grid points above 1 % of the peak")


@analysis_group.command("scorecards", help="Ranking and red/black lists (红黑榜) by on-time closure and satisfaction.")
@click.option("--level", type=click.Choice(["worker", "cell", "community", "street"]), default="worker",
              show_default=True)
@click.option("--from", "date_from")
@click.option("--to", "date_to")
@click.option("--top-n", type=int)
@click.option("--min-due", type=int)
@click.option("--red-min", type=float)
@click.option("--black-max", type=float)
@click.option("--weight-on-time", type=float)
@click.option("--weight-satisfaction", type=float)
@click.option("--json", "as_json", is_flag=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False))
@with_appcontext
def scorecards_cmd(level, date_from, date_to, top_n, min_due, red_min, black_max, weight_on_time,
                   weight_satisfaction, as_json, output):
    from gridmap.analysis.common import AnalysisError
    from gridmap.analysis.scorecards import ScorecardConfig, scorecards

    try:
        cfg = ScorecardConfig().with_overrides(top_n=top_n, min_due=min_due, red_min=red_min, black_max=black_max,
                                               weight_on_time=weight_on_time,
                                               weight_satisfaction=weight_satisfaction)
    except AnalysisError as e:
        raise click.ClickException(e.message) from None
    out = _call(scorecards, level=level, date_from=date_from, date_to=date_to, config=cfg)
    if _emit(out, as_json, output):
        return

    def pct(v):
        return "-" if v is None else f"{v * 100:.1f}%"

    for r in out["rows"]:
        rank = r["rank"] if r["rank"] is not None else "-"
        click.echo(f"  {rank!s:>3} {r['code']} {r['name']}: score {r['composite']}  on time {pct(r['on_time_rate'])} "
                   f"of {r['due']}  satisfaction {r['satisfaction_mean'] or '-'}{'  ' + r['note'] if r['note'] else ''}")
    click.echo("红榜: " + ("、".join(f"{u['name']}" for u in out["red_list"]) or "（无）"))
    click.echo("黑榜: " + ("、".join(f"{u['name']}" for u in out["black_list"]) or "（无）"))


@analysis_group.command("export", help="Export cases or hazards (scoped, no personal data) as CSV, GeoJSON or "
                                       "GeoPackage; the format follows -o's extension.")
@click.option("--kind", type=click.Choice(["cases", "hazards"]), required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="e.g. --filter street=330999001 --filter from=2026-03-01 --filter status=closed")
@with_appcontext
def export_cmd(kind, output, filters):
    from gridmap.analysis.export import export

    fmt = {".csv": "csv", ".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg"}.get(Path(output).suffix.lower())
    if fmt is None:
        raise click.BadParameter("the output must end in .csv, .geojson or .gpkg", param_hint="-o")
    f = {}
    for item in filters:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--filter")
        k, v = item.split("=", 1)
        f[k.strip()] = v.strip()
    data, _mime, _name, n = _call(export, kind=kind, fmt=fmt, filters=f)
    Path(output).write_bytes(data)
    click.echo(f"wrote {n} {kind} to {output}")


@click.command("ledger", help="Generate ledgers (台账) of an area for a period. KIND: cases (事件台账), hazards "
                              "(隐患台账), disputes (矛盾纠纷调解台账), visits (走访巡查台账), a comma list, or all. "
                              "The format follows -o: .xlsx (one sheet per ledger), .html (printable) or .pdf "
                              "(printed by headless Chromium).")
@click.argument("kind")
@click.option("--area", required=True, help="Code of a district, street, community or cell.")
@click.option("--from", "date_from", required=True, help="First day YYYY-MM-DD.")
@click.option("--to", "date_to", required=True, help="Last day YYYY-MM-DD (included).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@with_appcontext
def ledger_cmd(kind, area, date_from, date_to, output):
    from gridmap.analysis.common import AnalysisError
    from gridmap.analysis.ledgers import build_ledgers, write_ledgers

    require_schema()
    with sessionmaker()() as s:
        try:
            ledgers = build_ledgers(s, kind, area=area, date_from=date_from, date_to=date_to, actor=SYSTEM)
            fmt = write_ledgers(s, ledgers, output)
        except AnalysisError as e:
            raise click.ClickException(f"{e.field}: {e.message}") from None
    for led in ledgers:
        click.echo(f"{led.title}: {len(led.rows)} rows")
    click.echo(f"wrote {fmt} to {output}")


__all__ = ["analysis_group", "ledger_cmd"]
