"""What every domain's commands share: the database of the app being run, the schema check, date
parsing, the operator identity and the printing of problems.

Owns: nothing of any domain. Each domain's ``cli`` module imports these helpers and exposes its own
click group; ``gridmap/cli.py`` assembles the groups into the ``gridmap`` command. This module
imports no domain, so a domain's commands never import the assembler.
"""
from __future__ import annotations

import datetime as dt
import getpass
from zoneinfo import ZoneInfo

import click
from flask import current_app

from gridmap.timebounds import parse_instant


def sessionmaker():
    """The session factory of the app the command runs in."""
    return current_app.extensions["gridmap.sessionmaker"]


def engine():
    return current_app.extensions["gridmap.engine"]


def require_schema() -> None:
    """Stop with a one-line message unless the database is at the newest migration."""
    from gridmap import migrate

    cur = migrate.current_revision(engine())
    if cur is None:
        raise click.ClickException("the database has no schema yet: run `gridmap db upgrade` first")
    if cur != migrate.head_revision():
        raise click.ClickException(f"the database schema is at {cur}, not {migrate.head_revision()}: "
                                   "run `gridmap db upgrade`")


def local_time(value, *, seconds: bool = True) -> str:
    """An instant (datetime or ISO text) as the command prints it: GRIDMAP_TIMEZONE local time,
    no microseconds, no offset (``2026-03-02 09:00:00``); "-" for None."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    tz = ZoneInfo(current_app.config.get("GRIDMAP_TIMEZONE", "Asia/Shanghai"))
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def parse_date(value: str | None) -> dt.datetime | None:
    """YYYY-MM-DD (midnight in GRIDMAP_TIMEZONE: the state at that instant) or an ISO time, as UTC."""
    if not value:
        return None
    try:
        d = parse_instant(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or ISO time") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=ZoneInfo(current_app.config["GRIDMAP_TIMEZONE"]))
    return d.astimezone(dt.timezone.utc)


def operator_name() -> str:
    """The login name of whoever runs the command at the server (``cli:<name>`` in histories)."""
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        who = "operator"
    return f"cli:{who}"


_TAGS = {"error": "ERROR", "warning": "warning", "repair": "repaired"}


def print_problems(problems, limit: int = 50, *, place_in_message: bool = False) -> None:
    """Print problems (anything with severity, message, lon, lat) to stderr, ``limit`` at most.

    ``place_in_message``: the message may already name its place ("… at 122.1,30.0"); then the
    coordinates are not repeated.
    """
    for k, p in enumerate(problems):
        if k >= limit:
            click.echo(f"  … and {len(problems) - limit} more", err=True)
            break
        tag = _TAGS.get(p.severity, p.severity)
        located = p.lon is not None and p.lat is not None
        if place_in_message and "at " in p.message:
            located = False
        where = f" [at {p.lon:.6f},{p.lat:.6f}]" if located else ""
        click.echo(f"  {tag}: {p.message}{where}", err=True)


class ToleranceM(click.ParamType):
    """``--tolerance-m``: metres, finite, 0 … 1000 (``nan`` would switch every check off, ``1e308``
    ended in a GEOS exception)."""

    name = "metres"

    def convert(self, value, param, ctx):
        from gridmap.config import check_tolerance_m

        if isinstance(value, float):
            raw = value
        else:
            try:
                raw = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number of metres", param, ctx)
        try:
            return check_tolerance_m(raw, "--tolerance-m")
        except ValueError as e:
            self.fail(str(e), param, ctx)

