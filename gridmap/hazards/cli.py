"""`gridmap hazards …`: thin commands over gridmap.hazards (types, import, list, schedules, inspections).

Exports ``hazards_group`` (registered by the app's CLI). Commands act as the system (the whole
city in scope); user errors end with a one-line message and exit status 1.
"""
from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext

from gridmap.cliutil import require_schema, sessionmaker

from gridmap.accounts.actor import SYSTEM


@click.group("hazards", help="The hazard register (隐患): types, import, list, inspection schedules and tasks.")
def hazards_group():
    pass


@hazards_group.command("types", help="Load (upsert) the hazard types from a JSON file (default data/hazard_types.json) "
                                     "and list them.")
@click.option("--file", "path", type=click.Path(dir_okay=False), help="Types file (default data/hazard_types.json).")
@with_appcontext
def types_cmd(path):
    from gridmap.db import transaction
    from gridmap.hazards.service import load_types, types_list

    require_schema()
    try:
        with transaction(sessionmaker()) as s:
            rep = load_types(s, path)
            rows = types_list(s)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{rep['path']}: {rep['created']} new, {rep['updated']} changed, {rep['unchanged']} unchanged")
    for t in rows:
        lim = t["rectify_limit"]
        click.echo(f"  {t['code']:<12} {t['name']:<6} rectify within {lim['value']:g} {lim['unit']}, "
                   f"inspect every {t['inspection_interval_days'] or '-'} days")


@hazards_group.command("import", help="Import hazards from a CSV (type,title,lon,lat[,crs,geometry,severity,"
                                      "responsible_unit,found_at,external_id…]; Chinese headers 隐患类型/经度/纬度 … "
                                      "work too) or a GeoJSON file (points or areas). All rows or none.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--encoding", help="CSV encoding (default: UTF-8, else GBK).")
@click.option("--source", default="import", show_default=True, type=click.Choice(["import", "patrol", "manual"]))
@click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
@with_appcontext
def import_cmd(path, encoding, source, dry_run):
    from gridmap.db import transaction
    from gridmap.hazards.service import import_file

    require_schema()
    with transaction(sessionmaker()) as s:
        rep = import_file(s, path, SYSTEM, source=source, encoding=encoding, dry_run=dry_run)
    for e in rep.errors[:50]:
        click.echo(f"  ERROR: {e}", err=True)
    if len(rep.errors) > 50:
        click.echo(f"  … and {len(rep.errors) - 50} more", err=True)
    click.echo(rep.summary())
    if not rep.ok:
        click.echo("nothing was written: fix the rows above", err=True)
        sys.exit(1)


@hazards_group.command("list", help="List hazards (newest first).")
@click.option("--area", help="Code of a district, street, community or cell.")
@click.option("--status", help="open, rectified, verified, closed (comma-separated).")
@click.option("--type", "type_", help="Hazard type code.")
@click.option("--overdue", is_flag=True, help="Only open hazards past their rectification deadline.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def list_cmd(area, status, type_, overdue, limit, as_json):
    from gridmap.hazards.service import HazardError, hazard_dicts, list_hazards

    require_schema()
    filters = {"area": area, "status": status, "type": type_, "overdue": "1" if overdue else None}
    with sessionmaker()() as s:
        try:
            rows, total = list_hazards(s, SYSTEM, filters=filters, per_page=limit)
        except HazardError as e:
            raise click.ClickException(e.message) from None
        items = hazard_dicts(s, rows)
    if as_json:
        click.echo(json.dumps({"total": total, "items": items}, ensure_ascii=False))
        return
    if not items:
        click.echo("no hazards match")
        return
    for h in items:
        cell = h["cell"]["code"] if h["cell"] else "-"
        late = " OVERDUE" if h["overdue"] else ""
        click.echo(f"{h['number']}  {h['type_name']:<4} {h['severity_name']:<4} {h['status_name']:<6} cell {cell}  "
                   f"due {(h['rectify_deadline'] or '-')[:16]}{late}  {h['title']}")
    click.echo(f"{len(items)} of {total}")


@hazards_group.command("schedule", help="Inspect a hazard (by number) or a cell (--cell) every N days.")
@click.argument("number", required=False)
@click.option("--cell", "cell_code", help="Schedule a patrol of this cell instead of a hazard.")
@click.option("--every", "interval", type=int, help="Interval in days (default: the hazard type's).")
@click.option("--start", help="First due date YYYY-MM-DD (default: the day the hazard was found).")
@click.option("--end", help="Last possible due date YYYY-MM-DD (default: open-ended).")
@with_appcontext
def schedule_cmd(number, cell_code, interval, start, end):
    from sqlalchemy import select

    from gridmap.db import transaction
    from gridmap.hazards.inspections import create_schedule
    from gridmap.hazards.models import Hazard
    from gridmap.hazards.service import HazardError

    require_schema()
    try:
        with transaction(sessionmaker()) as s:
            hid = None
            if number:
                hid = s.scalar(select(Hazard.id).where(Hazard.number == number.strip()))
                if hid is None:
                    raise click.ClickException(f"no hazard {number}")
            sch = create_schedule(s, SYSTEM, hazard_id=hid, cell_code=cell_code, interval_days=interval,
                                  start_date=start, end_date=end)
    except HazardError as e:
        raise click.ClickException(e.message) from None
    click.echo(f"schedule {sch.id}: {sch.title}: every {sch.interval_days} days from {sch.start_date}"
               f"{' to ' + sch.end_date.isoformat() if sch.end_date else ''}")


@hazards_group.command("inspections", help="List inspection tasks; --generate first creates the tasks that have "
                                           "fallen due (idempotent: safe to run from cron every day).")
@click.option("--due", is_flag=True, help="Only tasks not done and due today or earlier.")
@click.option("--generate", is_flag=True, help="Create the tasks due by today (+ --horizon days) first.")
@click.option("--horizon", type=click.IntRange(0, 366), default=0, show_default=True)
@click.option("--area", help="Only tasks in this area (code of any level).")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def inspections_cmd(due, generate, horizon, area, as_json):
    from gridmap.db import transaction
    from gridmap.hazards.inspections import generate_due, list_tasks
    from gridmap.hazards.service import HazardError

    require_schema()
    try:
        if generate:
            with transaction(sessionmaker()) as s:
                rep = generate_due(s, horizon_days=horizon)
            click.echo(rep.summary(), err=as_json)
        with sessionmaker()() as s:
            tasks = list_tasks(s, SYSTEM, due_only=due, area_code=area)
    except HazardError as e:
        raise click.ClickException(e.message) from None
    if as_json:
        click.echo(json.dumps({"count": len(tasks), "items": tasks}, ensure_ascii=False))
        return
    for t in tasks:
        who = f"{t['worker']['code']} {t['worker']['name']}" if t["worker"] else "(nobody on duty)"
        state = f"done {t['done_at'][:10]} {t['result']}" if t["done_at"] else ("OVERDUE" if t["overdue"] else "due")
        click.echo(f"#{t['id']:<6} {t['due_date']}  cell {t['cell'] or '-'}  {who}  {state}  {t['title']}")
    click.echo(f"{len(tasks)} tasks")


__all__ = ["hazards_group"]
