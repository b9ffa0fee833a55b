"""Commands for assignment: ``workers import|list``, ``calendar import`` and ``escalate`` (for cron).

Owns: parsing arguments and printing results; the rules live in ``gridmap.assign.service`` and
``gridmap.assign.escalation``. The lead registers ``workers_group`` and ``calendar_group`` on the
``gridmap`` command and ``escalate_cmd`` in the ``cases`` group.
"""
from __future__ import annotations

import datetime as dt
import sys

import click
from flask.cli import with_appcontext

from gridmap.cliutil import require_schema, sessionmaker


def _print_bad(bad, limit: int = 200) -> None:
    for i, b in enumerate(bad):
        if i >= limit:
            click.echo(f"  … and {len(bad) - limit} more bad rows", err=True)
            break
        click.echo(f"  bad {b}", err=True)


def _import(path: str, importer, noun: str) -> None:
    from gridmap.assign.service import CsvFileError
    from gridmap.db import transaction

    require_schema()
    try:
        with transaction(sessionmaker()) as s:
            res = importer(s, path)
    except CsvFileError as e:
        raise click.ClickException(str(e)) from None
    _print_bad(res.bad)
    for label, keys in (("created", res.created), ("updated", res.updated)):
        if keys:
            shown = ", ".join(keys[:20]) + (f" … (+{len(keys) - 20})" if len(keys) > 20 else "")
            click.echo(f"  {label}: {shown}")
    click.echo(f"{path}: {res.summary()}")
    if res.imported == 0:
        click.echo(f"no {noun} could be imported", err=True)
        sys.exit(1)


# ------------------------------------------------------------------------------ workers
@click.group("workers", help="Grid workers (网格员), heads (网格长) and staff: import the roster, list it.")
def workers_group():
    pass


@workers_group.command("import", help="Import or update workers from a CSV (UTF-8 or GBK) with columns "
                                      "code,name,phone,role,employment,area_code and optionally "
                                      "responsibility (primary|backup), valid_from, department_code, active. "
                                      "Bad rows are listed with their line number; the others are imported. "
                                      "Exit status 1 only when no row could be imported.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def workers_import(path):
    from gridmap.assign.service import import_workers_csv

    _import(path, import_workers_csv, "worker")


@workers_group.command("list", help="List workers with their area and current cells; with --cell, who is "
                                    "responsible for that cell now.")
@click.option("--cell", "cell_code", help="Cell code: its workers and the one on duty now.")
@with_appcontext
def workers_list(cell_code):
    from gridmap.assign.router import responsible_worker
    from gridmap.assign.service import AssignError, list_workers
    from gridmap.boundaries.models import Area
    from gridmap.db import utcnow
    from sqlalchemy import select

    require_schema()
    now = utcnow()
    with sessionmaker()() as s:
        try:
            rows = list_workers(s, cell_code=cell_code, at=now)
        except AssignError as e:
            raise click.ClickException(str(e)) from None
        on_duty = None
        if cell_code:
            cell_id = s.scalar(select(Area.id).where(Area.code == cell_code))
            on_duty = responsible_worker(s, cell_id, now)[1]
    for r in rows:
        cells = " ".join(f"{c['code']}({c['role']})" for c in r["cells"])
        flags = "" if r["active"] else " [inactive]"
        click.echo(f"{r['code']}\t{r['name']}\t{r['role']}\t{r['employment'] or '-'}\t{r['area_code'] or '-'}"
                   f"\t{r['phone'] or '-'}\t{cells or '-'}{flags}")
    if on_duty:
        click.echo(f"on duty now: {on_duty}")
    click.echo(f"{len(rows)} workers", err=True)


# ----------------------------------------------------------------------------- calendar
@click.group("calendar", help="The working-day calendar: holidays and make-up working days (调休).")
def calendar_group():
    pass


@calendar_group.command("import", help="Load holidays and make-up working days from a CSV with columns "
                                       "date,kind,name (kind holiday|workday; '#' lines are comments), "
                                       "e.g. data/calendar/cn-2026.csv.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def calendar_import(path):
    from gridmap.assign.service import import_calendar_csv

    _import(path, import_calendar_csv, "calendar day")


# ---------------------------------------------------------------------------- escalation
def _parse_now(value: str | None) -> dt.datetime:
    from gridmap.assign.calendar import TIMEZONE
    from gridmap.db import utcnow

    if not value:
        return utcnow()
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO time (e.g. 2026-10-09T09:00+08:00)",
                                 param_hint="--now") from None
    return t.replace(tzinfo=TIMEZONE) if t.tzinfo is None else t


@click.command("escalate", help="Escalate overdue dispatched / in-progress cases one level (cell → community → "
                                "street → district) and print what changed. Safe to run from cron: a second "
                                "run at the same time changes nothing.")
@click.option("--now", "now", help="Treat this ISO time as now (local Asia/Shanghai when it has no zone).")
@with_appcontext
def escalate_cmd(now):
    from gridmap.assign.escalation import LEVEL_NAMES, escalate_overdue
    from gridmap.db import transaction

    require_schema()
    at = _parse_now(now)
    with transaction(sessionmaker()) as s:
        items = escalate_overdue(s, at)
    counts = {"escalated": 0, "overdue": 0, "conflict": 0}
    for it in items:
        counts[it["result"]] += 1
        label = it["number"] or f"#{it['case_id']}"
        if it["result"] == "escalated":
            click.echo(f"case {label}: {LEVEL_NAMES[it['from_level']]} → {LEVEL_NAMES[it['to_level']]}, "
                       f"{it['from_worker'] or '-'} → {it['to_worker'] or '-'}; next deadline "
                       f"{it['deadline_at'].isoformat()}; {it['reason']}")
        elif it["result"] == "overdue":
            click.echo(f"case {label}: overdue at the district (top level), stays with {it['to_worker'] or '-'}")
        else:
            click.echo(f"case {label}: skipped, {it['reason']}")
    click.echo(f"{counts['escalated']} escalated, {counts['overdue']} marked overdue at the top level, "
               f"{counts['conflict']} skipped (changed concurrently) at {at.isoformat()}")
