"""The `gridmap` command, built on Flask's CLI, assembled here and only here.

Owns: the ``db`` and ``demo`` commands (they span every domain) and ``register_commands``, which
adds each domain's own click group to the app's CLI. Domains import their shared helpers from
:mod:`gridmap.cliutil`, never from this module, so no command module imports the assembler back.
User errors end with a one-line message and exit status 1 or 2, never a traceback (set
GRIDMAP_DEBUG=1 to see one).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from gridmap.cliutil import engine as _engine
from gridmap.cliutil import require_schema as _require_schema
from gridmap.cliutil import sessionmaker as _sessionmaker

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "data" / "shapefiles"


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
    """Add every domain's commands to the app's CLI: the one place the `gridmap` command is assembled."""
    from gridmap.accounts.cli import tokens_group, users_group
    from gridmap.analysis.cli import analysis_group, ledger_cmd
    from gridmap.assign.cli import calendar_group, escalate_cmd, workers_group
    from gridmap.boundaries.cli import boundaries_group, geocode_cmd, locate_cmd
    from gridmap.redraw.cli import boundaries_redraw_commands
    from gridmap.hazards.cli import hazards_group
    from gridmap.incidents.cli_cases import cases_group
    from gridmap.incidents.cli_categories import categories_group

    # Groups that gather commands of several packages: redrawing adds its commands to
    # `boundaries`, assignment adds `escalate` to `cases`.
    for group, commands in ((boundaries_group, boundaries_redraw_commands), (cases_group, [escalate_cmd])):
        for cmd in commands:
            if cmd.name not in group.commands:
                group.add_command(cmd)

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
