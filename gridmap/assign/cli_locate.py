"""`gridmap locate` and `gridmap geocode`: thin commands over ``gridmap.assign.locate`` (the cell of a
point, or of every row of a CSV, with the worker who answers for it now).

Exports ``locate_cmd`` and ``geocode_cmd``; ``gridmap/cli.py`` assembles them. Coordinates may be
negative (``gridmap locate -73.95 40.65``): they are read as arguments, never as options.
"""
from __future__ import annotations

import json
import os
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from gridmap.cliutil import parse_date, require_schema, sessionmaker

#: a negative number such as -73.95 is an argument here, not an unknown option
_NUMBERS_AS_ARGS = {"ignore_unknown_options": True}


@click.command("locate", context_settings=_NUMBERS_AS_ARGS,
               help="Which cell holds a point, and who answers for it now. LON LAT in --crs (default wgs84); "
                    "negative values are fine (gridmap locate -73.95 40.65 --crs EPSG:4326).")
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@click.option("--crs", default="wgs84", show_default=True, help="wgs84, cgcs2000, gcj02 (Amap, Tencent), "
                                                                "bd09 (Baidu) or EPSG:<n>.")
@click.option("--snap-m", type=float, default=None, help="Snap distance in metres for points outside every "
                                                         "cell (default GRIDMAP_SNAP_M, 100).")
@click.option("--at", "at", help="Look up in the boundaries (and the duty roster) of this date (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the same as GET /api/v1/locate).")
@with_appcontext
def locate_cmd(lon, lat, crs, snap_m, at, as_json):
    from gridmap.assign.locate import locate_one
    from gridmap.geo.coords import CRSError, parse_crs

    require_schema()
    try:
        c = parse_crs(crs)
    except CRSError as e:
        raise click.BadParameter(str(e), param_hint="--crs") from None
    if c.kind != "epsg" and not (-180 <= lon <= 180 and -90 <= lat <= 90):
        hint = " (LON and LAT look swapped)" if -180 <= lat <= 180 and -90 <= lon <= 90 else ""
        raise click.BadParameter(f"lon {lon} / lat {lat} out of range{hint}")
    snap = current_app.config["GRIDMAP_SNAP_M"] if snap_m is None else snap_m
    with sessionmaker()() as s:
        out = locate_one(s, lon, lat, c, snap, parse_date(at))
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    if out["cell"] is None:
        click.echo("no cell" + (f" within {snap:g} m" if snap else ""))
        sys.exit(1)
    parts = [f"{out[k]['name']} {out[k]['code']}" for k in ("district", "street", "community") if out[k]]
    click.echo(f"cell {out['cell']['code']} {out['cell']['name']}")
    if parts:
        click.echo("  in " + " / ".join(parts))
    if out["snapped"]:
        click.echo(f"  snapped {out['distance_m']:.1f} m")
    r = out["responsible"]
    if r and r["worker"]:
        w = r["worker"]
        click.echo(f"  responsible: {w['name']} {w['code']} {w['phone'] or ''} ({r['level']})".replace("  (", " ("))
    else:
        click.echo(f"  responsible: nobody on duty ({r['reason'] if r else 'no cell'})")


@click.command("geocode", help="Add cell_code, community_code, street_code, snapped, distance_m (and error) "
                               "and the responsible worker (worker_code, worker_name, worker_phone masked, "
                               "responsible_level: primary, substitute, fallback) to every row of a CSV. Bad rows "
                               "get an error and the rest go on. Written as UTF-8 with BOM (opens in Excel on "
                               "Chinese Windows) unless --output-encoding says otherwise.")
@click.argument("input", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--lon-col", default="lon", show_default=True)
@click.option("--lat-col", default="lat", show_default=True)
@click.option("--crs", default="wgs84", show_default=True)
@click.option("--snap-m", type=float, default=None)
@click.option("--encoding", default=None, help="Input encoding (default: UTF-8, else GBK).")
@click.option("--output-encoding", type=click.Choice(["utf-8-sig", "utf-8", "gbk"]), default="utf-8-sig",
              show_default=True, help="Output encoding: UTF-8 with BOM, plain UTF-8 or GBK.")
@click.option("--no-workers", is_flag=True, help="Leave out the responsible-worker columns.")
@click.option("--chunk-rows", type=int, default=200_000, show_default=True, hidden=True)
@with_appcontext
def geocode_cmd(input, output, lon_col, lat_col, crs, snap_m, encoding, output_encoding, no_workers, chunk_rows):
    from gridmap.assign.locate import WORKER_COLS, ResponsibleColumns
    from gridmap.boundaries.geocode import GeocodeError, geocode_csv
    from gridmap.boundaries.lookup import get_index
    from gridmap.geo.coords import CRSError, parse_crs

    require_schema()
    try:
        c = parse_crs(crs)
    except CRSError as e:
        raise click.BadParameter(str(e), param_hint="--crs") from None
    snap = current_app.config["GRIDMAP_SNAP_M"] if snap_m is None else snap_m
    show = sys.stderr.isatty()
    with sessionmaker()() as s:
        index = get_index(s)
        extra = None if no_workers else ResponsibleColumns(s)
        try:
            with click.progressbar(length=os.path.getsize(input), label="geocoding", file=sys.stderr,
                                   hidden=not show) as bar:
                stats = geocode_csv(index, input, output, lon_col=lon_col, lat_col=lat_col, crs=c, snap_m=snap,
                                    encoding=encoding, chunk_rows=chunk_rows, progress=bar.update, extra=extra,
                                    extra_cols=() if no_workers else WORKER_COLS, output_encoding=output_encoding)
        except GeocodeError as e:
            raise click.ClickException(str(e)) from None
    click.echo(f"{stats['rows']} rows: {stats['located']} in a cell ({stats['snapped']} snapped), "
               f"{stats['outside']} outside every cell, {stats['errors']} bad rows → {output}")
