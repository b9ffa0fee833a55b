"""`gridmap boundaries import|check|export`, `gridmap locate` and `gridmap geocode`: thin commands
over the boundaries domain (import/export of boundary files, coverage checks, the lookup index).

Exports ``boundaries_group`` (other packages add their commands to it: redrawing adds split, merge,
publish …), ``locate_cmd`` and ``geocode_cmd``; ``gridmap/cli.py`` assembles them.
"""
from __future__ import annotations

import json
import os
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from gridmap.boundaries.models import LEVELS
from gridmap.cliutil import parse_date, print_problems, require_schema, sessionmaker


# ------------------------------------------------------------------------- boundaries
@click.group("boundaries", help="Import, check and export district/street/community/cell boundaries.")
def boundaries_group():
    pass




@boundaries_group.command("import", help="Import a boundary file (Shapefile, zipped Shapefile, GeoJSON, "
                                         "GeoPackage, KML) as one level. All features are written in one "
                                         "transaction, or none when any error is found.")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--level", required=True, type=click.Choice(LEVELS), help="Which level the file holds.")
@click.option("--code-field", help="Field with the code (default: auto-detected, e.g. code/编码).")
@click.option("--name-field", help="Field with the Chinese name (default: auto-detected, e.g. name/名称).")
@click.option("--parent-field", help="Field with the parent's code; without it parents are found by "
                                     "spatial containment in the level above.")
@click.option("--crs", help="Coordinate system of the file, overriding its .prj: wgs84, cgcs2000, gcj02, "
                            "bd09 or EPSG:<n>. Required when the file has none.")
@click.option("--encoding", help="DBF text encoding when there is no .cpg and no language-driver byte "
                                 "(e.g. GBK).")
@click.option("--layer", help="Layer name (GeoPackage).")
@click.option("--fix", is_flag=True, help="Repair invalid geometries (and report each repair).")
@click.option("--dry-run", is_flag=True, help="Check and report only; write nothing.")
@click.option("--tolerance-m", type=float, default=None, help="Tolerance in metres for overlap/gap/outside "
                                                             "checks (default GRIDMAP_TOLERANCE_M, 0.5).")
@with_appcontext
def boundaries_import(path, level, code_field, name_field, parent_field, crs, encoding, layer, fix, dry_run,
                      tolerance_m):
    from gridmap.boundaries.io import BoundaryFileError, read_boundary_file
    from gridmap.boundaries.service import import_layer
    from gridmap.db import transaction
    from gridmap.geo.coords import CRSError

    require_schema()
    try:
        bl = read_boundary_file(path, level, code_field=code_field, name_field=name_field,
                                parent_field=parent_field, crs=crs, encoding=encoding, fix=fix, layer=layer)
    except (BoundaryFileError, CRSError) as e:
        raise click.ClickException(str(e)) from None
    tol = current_app.config["GRIDMAP_TOLERANCE_M"] if tolerance_m is None else tolerance_m
    with transaction(sessionmaker()) as s:
        rep = import_layer(s, bl, dry_run=dry_run, tolerance_m=tol)
        if not rep.ok:
            s.rollback()
    if bl.encoding:
        click.echo(f"{path}: text encoding {bl.encoding} (from {bl.encoding_source}); CRS {bl.source_crs}", err=True)
    print_problems(rep.problems)
    click.echo(rep.summary())
    if not rep.ok:
        click.echo("nothing was written: fix the errors above (or use --fix for invalid geometries)", err=True)
        sys.exit(1)


@boundaries_group.command("check", help="Check the stored boundaries: validity, overlaps, gaps, children "
                                        "outside their parent. Exit status 1 when the coverage is broken.")
@click.option("--level", type=click.Choice(LEVELS), help="Only this level (default: all).")
@click.option("--tolerance-m", type=float, default=None)
@with_appcontext
def boundaries_check(level, tolerance_m):
    from gridmap.boundaries.service import check_stored, counts

    require_schema()
    tol = current_app.config["GRIDMAP_TOLERANCE_M"] if tolerance_m is None else tolerance_m
    with sessionmaker()() as s:
        problems = check_stored(s, level, tol)
        n = counts(s)
    print_problems(problems, limit=200)
    errors = [p for p in problems if p.severity == "error"]
    scope = level or ", ".join(f"{n[lvl]} {lvl}" for lvl in LEVELS)
    if errors:
        click.echo(f"coverage broken: {len(errors)} errors ({scope})")
        sys.exit(1)
    click.echo(f"coverage ok ({scope})")


@boundaries_group.command("export", help="Export one level to a file; the format follows the extension "
                                         "(.shp written UTF-8 with .cpg, .zip, .geojson, .gpkg, .kml).")
@click.option("--level", required=True, type=click.Choice(LEVELS))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--at", "at", help="Boundaries as they were at this date (YYYY-MM-DD) instead of now.")
@with_appcontext
def boundaries_export(level, output, at):
    from gridmap.boundaries.export import write_boundary_file
    from gridmap.boundaries.service import load_level

    require_schema()
    when = parse_date(at)
    with sessionmaker()() as s:
        gdf = load_level(s, level, when)
    if gdf.empty:
        raise click.ClickException(f"no {level} boundaries stored{' at ' + at if at else ''}")
    try:
        write_boundary_file(gdf[["code", "name", "parent_code", "kind", "households", "population", "geometry"]],
                            output)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {len(gdf)} {level} features to {output}")


# --------------------------------------------------------------------------- locate
@click.command("locate", help="Which cell holds a point. LON LAT in --crs (default wgs84).")
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@click.option("--crs", default="wgs84", show_default=True, help="wgs84, cgcs2000, gcj02 (Amap, Tencent), "
                                                                "bd09 (Baidu) or EPSG:<n>.")
@click.option("--snap-m", type=float, default=None, help="Snap distance in metres for points outside every "
                                                         "cell (default GRIDMAP_SNAP_M, 100).")
@click.option("--at", "at", help="Look up in the boundaries valid at this date (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the same as GET /api/v1/locate).")
@with_appcontext
def locate_cmd(lon, lat, crs, snap_m, at, as_json):
    from gridmap.boundaries.lookup import locate_one
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


# --------------------------------------------------------------------------- geocode
@click.command("geocode", help="Add cell_code, community_code, street_code, snapped, distance_m (and error) "
                               "to every row of a CSV. Bad rows get an error and the rest go on.")
@click.argument("input", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--lon-col", default="lon", show_default=True)
@click.option("--lat-col", default="lat", show_default=True)
@click.option("--crs", default="wgs84", show_default=True)
@click.option("--snap-m", type=float, default=None)
@click.option("--encoding", default=None, help="Input encoding (default: UTF-8, else GBK).")
@click.option("--chunk-rows", type=int, default=200_000, show_default=True, hidden=True)
@with_appcontext
def geocode_cmd(input, output, lon_col, lat_col, crs, snap_m, encoding, chunk_rows):
    from gridmap.boundaries.geocode import GeocodeError, geocode_csv
    from gridmap.boundaries.lookup import get_index
    from gridmap.geo.coords import CRSError, parse_crs

    require_schema()
    try:
        c = parse_crs(crs)
    except CRSError as e:
        raise click.BadParameter(str(e), param_hint="--crs") from None
    snap = current_app.config["GRIDMAP_SNAP_M"] if snap_m is None else snap_m
    with sessionmaker()() as s:
        index = get_index(s)
    show = sys.stderr.isatty()
    try:
        with click.progressbar(length=os.path.getsize(input), label="geocoding", file=sys.stderr,
                               hidden=not show) as bar:
            stats = geocode_csv(index, input, output, lon_col=lon_col, lat_col=lat_col, crs=c, snap_m=snap,
                                encoding=encoding, chunk_rows=chunk_rows, progress=bar.update)
    except GeocodeError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{stats['rows']} rows: {stats['located']} in a cell ({stats['snapped']} snapped), "
               f"{stats['outside']} outside every cell, {stats['errors']} bad rows → {output}")
