"""`gridmap boundaries import|check|export`: thin commands over the boundaries domain (import/export
of boundary files, coverage checks).

Exports ``boundaries_group`` (other packages add their commands to it: redrawing adds split, merge,
publish …); ``gridmap/cli.py`` assembles it. ``gridmap locate`` and ``gridmap geocode`` name the
responsible worker too, so they live above this domain, in ``gridmap/assign/cli_locate.py``.
"""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from gridmap.boundaries.models import LEVELS
from gridmap.cliutil import ToleranceM, parse_date, print_problems, require_schema, sessionmaker


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
@click.option("--tolerance-m", type=ToleranceM(), default=None,
              help="Tolerance in metres for overlap/gap/outside checks, 0 to 1000 (default GRIDMAP_TOLERANCE_M, 0.5).")
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
@click.option("--tolerance-m", type=ToleranceM(), default=None, help="Tolerance in metres, 0 to 1000 "
                                                                   "(default GRIDMAP_TOLERANCE_M, 0.5).")
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
