"""The `gridmap` command, built on Flask's CLI: thin commands that parse input, call a service
and format output. User errors end with a one-line message and exit status 1 or 2, never a
traceback (set GRIDMAP_DEBUG=1 to see one)."""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from gridmap.boundaries.models import LEVELS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "data" / "shapefiles"


def _sessionmaker():
    return current_app.extensions["gridmap.sessionmaker"]


def _engine():
    return current_app.extensions["gridmap.engine"]


def parse_date(value: str | None) -> dt.datetime | None:
    """YYYY-MM-DD (midnight Asia/Shanghai, end of nothing: the state at that instant) or ISO time."""
    if not value:
        return None
    from zoneinfo import ZoneInfo

    try:
        d = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or ISO time") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=ZoneInfo(current_app.config["GRIDMAP_TIMEZONE"]))
    return d.astimezone(dt.timezone.utc)


# ---------------------------------------------------------------------------------- db
@click.group("db", help="Database schema (Alembic migrations).")
def db_group():
    pass


@db_group.command("upgrade", help="Create or upgrade the schema to the newest migration.")
@with_appcontext
def db_upgrade():
    from gridmap import migrate

    engine = _engine()
    migrate.upgrade(engine)
    click.echo(f"database at revision {migrate.current_revision(engine)} ({engine.url.render_as_string(hide_password=True)})")


@db_group.command("current", help="Print the schema revision of the database.")
@with_appcontext
def db_current():
    from gridmap import migrate

    click.echo(migrate.current_revision(_engine()) or "empty (run `gridmap db upgrade`)")


def _require_schema():
    from gridmap import migrate

    cur = migrate.current_revision(_engine())
    if cur is None:
        raise click.ClickException("the database has no schema yet: run `gridmap db upgrade` first")
    if cur != migrate.head_revision():
        raise click.ClickException(f"the database schema is at {cur}, not {migrate.head_revision()}: "
                                   "run `gridmap db upgrade`")


# ------------------------------------------------------------------------- boundaries
@click.group("boundaries", help="Import, check and export district/street/community/cell boundaries.")
def boundaries_group():
    pass


def _print_problems(problems, limit: int = 50) -> None:
    shown = 0
    for p in problems:
        if shown >= limit:
            click.echo(f"  … and {len(problems) - limit} more", err=True)
            break
        tag = {"error": "ERROR", "warning": "warning", "repair": "repaired"}.get(p.severity, p.severity)
        where = f" [at {p.lon:.6f},{p.lat:.6f}]" if p.lon is not None and p.lat is not None else ""
        click.echo(f"  {tag}: {p.message}{where}", err=True)
        shown += 1


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

    _require_schema()
    try:
        bl = read_boundary_file(path, level, code_field=code_field, name_field=name_field,
                                parent_field=parent_field, crs=crs, encoding=encoding, fix=fix, layer=layer)
    except (BoundaryFileError, CRSError) as e:
        raise click.ClickException(str(e)) from None
    tol = current_app.config["GRIDMAP_TOLERANCE_M"] if tolerance_m is None else tolerance_m
    with transaction(_sessionmaker()) as s:
        rep = import_layer(s, bl, dry_run=dry_run, tolerance_m=tol)
        if not rep.ok:
            s.rollback()
    if bl.encoding:
        click.echo(f"{path}: text encoding {bl.encoding} (from {bl.encoding_source}); CRS {bl.source_crs}", err=True)
    _print_problems(rep.problems)
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

    _require_schema()
    tol = current_app.config["GRIDMAP_TOLERANCE_M"] if tolerance_m is None else tolerance_m
    with _sessionmaker()() as s:
        problems = check_stored(s, level, tol)
        n = counts(s)
    _print_problems(problems, limit=200)
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
    from gridmap.boundaries.io import write_boundary_file
    from gridmap.boundaries.service import load_level

    _require_schema()
    when = parse_date(at)
    with _sessionmaker()() as s:
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

    _require_schema()
    try:
        c = parse_crs(crs)
    except CRSError as e:
        raise click.BadParameter(str(e), param_hint="--crs") from None
    if c.kind != "epsg" and not (-180 <= lon <= 180 and -90 <= lat <= 90):
        hint = " (LON and LAT look swapped)" if -180 <= lat <= 180 and -90 <= lon <= 90 else ""
        raise click.BadParameter(f"lon {lon} / lat {lat} out of range{hint}")
    snap = current_app.config["GRIDMAP_SNAP_M"] if snap_m is None else snap_m
    with _sessionmaker()() as s:
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

    _require_schema()
    try:
        c = parse_crs(crs)
    except CRSError as e:
        raise click.BadParameter(str(e), param_hint="--crs") from None
    snap = current_app.config["GRIDMAP_SNAP_M"] if snap_m is None else snap_m
    with _sessionmaker()() as s:
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


# ----------------------------------------------------------------------------- demo
@click.command("demo", help="Load the demo city (Zhoushan 舟山: real county outlines, synthetic streets, "
                            "communities, cells) from data/shapefiles.")
@click.option("--if-empty", is_flag=True, help="Do nothing when boundaries are already loaded.")
@click.option("--cases", type=int, default=300, show_default=True, help="Synthetic cases to report.")
@with_appcontext
def demo_cmd(if_empty, cases):
    from gridmap.demo import load_demo

    from gridmap import migrate

    if migrate.current_revision(_engine()) is None:
        migrate.upgrade(_engine())
    _require_schema()
    msgs = load_demo(_sessionmaker(), DEMO_DIR, if_empty=if_empty, instance_path=current_app.instance_path,
                     cases=cases, echo=lambda m: click.echo(m, err=True))
    for m in msgs:
        click.echo(m)


def register_commands(app) -> None:
    from gridmap.accounts.cli import tokens_group, users_group
    from gridmap.assign.cli import calendar_group, workers_group
    from gridmap.analysis.cli import analysis_group, ledger_cmd
    from gridmap.assign.cli import escalate_cmd
    from gridmap.boundaries.cli_redraw import register as register_redraw
    from gridmap.hazards.cli import hazards_group
    from gridmap.incidents.cli_cases import cases_group
    from gridmap.incidents.cli_categories import categories_group

    if "escalate" not in cases_group.commands:
        cases_group.add_command(escalate_cmd)
    if "publish" not in boundaries_group.commands:
        register_redraw(boundaries_group)

    for cmd in (db_group, boundaries_group, locate_cmd, geocode_cmd, demo_cmd, users_group, tokens_group,
                workers_group, calendar_group, categories_group, cases_group, hazards_group, analysis_group,
                ledger_cmd):
        app.cli.add_command(cmd)


def _create_app():
    from gridmap import create_app

    return create_app()


cli = FlaskGroup(create_app=_create_app, add_version_option=True, load_dotenv=False,
                 help="gridmap: boundaries, cell lookup and case routing for grid-based governance "
                      "(网格化管理). Settings come from GRIDMAP_* environment variables.")


def main() -> None:
    os.environ.setdefault("FLASK_RUN_FROM_CLI", "true")
    try:
        cli.main(prog_name="gridmap")
    except SystemExit:
        raise
    except Exception as e:  # last line of defence: no traceback for users
        if os.environ.get("GRIDMAP_DEBUG"):
            raise
        click.echo(f"error: {type(e).__name__}: {e}", err=True)
        sys.exit(1)
