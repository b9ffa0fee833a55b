"""The ``gridmap cases`` commands: bulk import from CSV and a quick list.

Owns: the click group ``cases_group`` ("cases") with ``import`` (a progress bar on a terminal;
prints imported / skipped / bad counts and the first bad line numbers with their reasons) and
``list`` (a few filters, as the system: everything). Other modules add commands to this group.
"""
from __future__ import annotations

import json
import os
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from gridmap.incidents.models import SOURCES, STATUSES


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal columns (a Chinese character takes two)."""
    import unicodedata

    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - cols, 0)


@click.group("cases", help="Cases (事件): import from CSV, list.")
def cases_group():
    pass


@cases_group.command("import", help="Import cases from a CSV (UTF-8 or GBK) with columns external_id, category, "
                                    "description, lon, lat and optionally crs, address, reported_at, "
                                    "reporter_name, reporter_phone, urgent, title (or the Chinese column names of "
                                    "12345 exports: 工单编号, 问题分类, 诉求内容, 经度, 纬度, 事发地址, 受理时间 …). "
                                    "The category may be its code, its standard code (事件0102, 部件0101) or its "
                                    "exact Chinese name. Re-running skips rows "
                                    "imported before (same source and external_id); bad rows are listed by "
                                    "line number and the others imported.")
@click.argument("csv_path", metavar="CSV", type=click.Path(dir_okay=False))
@click.option("--source", default="import", show_default=True, type=click.Choice(SOURCES),
              help="Source recorded on the cases (part of the idempotence key with external_id).")
@click.option("--dispatch", is_flag=True, help="File and dispatch routed cases at once (slower).")
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1, 100_000),
              help="Rows per transaction.")
@click.option("--show-bad", default=20, show_default=True, type=click.IntRange(0, 10_000),
              help="How many bad rows to list.")
@with_appcontext
def import_cmd(csv_path, source, dispatch, batch, show_bad):
    from gridmap.incidents.bulk import ImportFileError, import_cases_csv

    sm = current_app.extensions["gridmap.sessionmaker"]
    try:
        size = os.path.getsize(csv_path)
    except OSError as e:
        raise click.ClickException(f"{csv_path}: {e.strerror or e}") from None
    try:
        if sys.stderr.isatty():
            with click.progressbar(length=size, label="importing", file=sys.stderr) as bar:
                rep = import_cases_csv(sm, csv_path, source=source, batch=batch, dispatch=dispatch,
                                       progress=bar.update)
        else:
            rep = import_cases_csv(sm, csv_path, source=source, batch=batch, dispatch=dispatch)
    except ImportFileError as e:
        raise click.ClickException(str(e)) from None
    extra = []
    if rep["queued"]:
        extra.append(f"{rep['queued']} waiting for manual placement")
    if rep["dispatched"]:
        extra.append(f"{rep['dispatched']} dispatched")
    click.echo(f"{csv_path}: {rep['rows']} rows: imported {rep['imported']}, skipped {rep['skipped']} "
               f"(imported before), bad {rep['bad']}" + (f"; {', '.join(extra)}" if extra else ""))
    if rep["bad"]:
        lines = [str(line) for line, _ in rep["bad_rows"][:show_bad]]
        more = " …" if rep["bad"] > len(lines) else ""
        click.echo(f"bad lines: {', '.join(lines)}{more}", err=True)
        for line, reason in rep["bad_rows"][:show_bad]:
            click.echo(f"  line {line}: {reason}", err=True)


@cases_group.command("list", help="List cases (newest first).")
@click.option("--status", help=f"Comma list of statuses: {', '.join(STATUSES)}.")
@click.option("--cell", help="Cell code.")
@click.option("--community", help="Community code.")
@click.option("--street", help="Street code.")
@click.option("--category", help="Category code (with its subcategories).")
@click.option("--from", "from_", help="Reported on or after (YYYY-MM-DD, local time).")
@click.option("--to", help="Reported on or before (YYYY-MM-DD, local time).")
@click.option("--overdue", is_flag=True, help="Only overdue cases.")
@click.option("--source", type=click.Choice(SOURCES))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@with_appcontext
def list_cmd(status, cell, community, street, category, from_, to, overdue, source, limit, as_json):
    from gridmap.accounts.actor import SYSTEM
    from gridmap.incidents.queries import Lookups, QueryError, case_dict, list_cases

    filters = {"status": status, "cell": cell, "community": community, "street": street, "category": category,
               "from": from_, "to": to, "overdue": "true" if overdue else None, "source": source}
    with current_app.extensions["gridmap.sessionmaker"]() as s:
        try:
            items, total = list_cases(s, SYSTEM, filters=filters, page=1, per_page=limit)
        except QueryError as e:
            raise click.BadParameter(e.message, param_hint=f"--{e.field}") from None
        lk = Lookups.for_cases(s, items)
        for c in items:
            if as_json:
                click.echo(json.dumps(case_dict(c, lookups=lk, show_personal=False), ensure_ascii=False))
                continue
            cat = lk.categories.get(c.category_id, ("?", "?"))
            cell_code = lk.areas.get(c.cell_id, ("-", ""))[0] if c.cell_id else "(queue)"
            who = lk.workers.get(c.assignee_worker_id, (None, None))[1] if c.assignee_worker_id else None
            who = who or (lk.departments.get(c.assignee_department_id, (None, None))[1]
                          if c.assignee_department_id else None) or "-"
            click.echo(f"{c.number}  {c.status:<11} {_pad(cat[1], 16)} {cell_code:<16} {_pad(who, 12)} "
                       f"{c.description[:40]}")
        if not as_json:
            click.echo(f"{len(items)} of {total} case(s)", err=True)
