"""`gridmap registry …`: thin commands over the base registry (import, export, summary, re-place,
re-key, tags).

Exports ``registry_group`` (registered in gridmap/cli.py). An import runs in one transaction: bad
rows are printed by line and skipped, the rest commit together; a file that cannot be read at
all is refused whole (exit status 1). Exports of personal data name the user they are made for
(``--user``, a permitted role) and a purpose, and are written to the access log.
"""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from gridmap.cliutil import operator_name, require_schema, sessionmaker
from gridmap.registry.imports import KINDS


def app_keys():
    """The personal-data keys of the app the command runs in."""
    from gridmap.registry.pii import keys_from_config

    return keys_from_config(current_app.config, current_app.instance_path)


@click.group("registry", help="The base register (一标三实): standard addresses, buildings, households, residents, "
                              "organisations.")
def registry_group():
    pass


@registry_group.command("import", help="Import a register file (CSV in UTF-8 or GBK, or XLSX). Columns — "
                                       "addresses: code,address,lon,lat[,crs]; buildings: code,address_code,name,"
                                       "floors,kind; households: code,address_code,room,size[,use]; persons: "
                                       "id_number,name,phone,household_code,birth_date,gender,tags (;-separated)"
                                       "[,residence,moved_out_on]; organisations: credit_code,name,address_code,kind,"
                                       "contact,phone. Idempotent; bad rows are named by line, the rest import.")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--batch", type=click.IntRange(100, 1_000_000), default=20_000, show_default=True,
              help="Rows written per batch.")
@click.option("--show", type=click.IntRange(0, 100000), default=50, show_default=True, help="Bad rows to print.")
@with_appcontext
def import_cmd(kind, path, batch, show):
    from gridmap.db import transaction
    from gridmap.registry.files import RegistryFileError, read_table
    from gridmap.registry.imports import import_file

    require_schema()
    try:
        _h, _rows, _enc, estimate = read_table(path)
    except RegistryFileError as e:
        raise click.ClickException(str(e)) from None
    keys = app_keys() if kind in ("persons", "organisations") else None
    try:
        with click.progressbar(length=max(estimate, 1), label=f"importing {kind}", file=sys.stderr) as bar:
            seen = [0]

            def progress(done):
                bar.update(max(min(done, estimate) - seen[0], 0))
                seen[0] = max(seen[0], min(done, estimate))

            with transaction(sessionmaker()) as s:
                rep = import_file(s, kind, path, keys=keys, snap_m=float(current_app.config["GRIDMAP_SNAP_M"]),
                                  batch=batch, progress=progress)
    except RegistryFileError as e:
        raise click.ClickException(str(e)) from None
    for k, (line, reason) in enumerate(rep.bad):
        if k >= show:
            click.echo(f"  … and {len(rep.bad) - show} more bad rows", err=True)
            break
        click.echo(f"  line {line}: {reason}", err=True)
    click.echo(rep.summary())


@registry_group.command("export", help="Export one kind as CSV (the import's columns). Personal data is masked "
                                       "unless --whole; exports of persons and organisations need --user (a street, "
                                       "district, city or admin account) and --purpose, and are logged.")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.option("--user", "username", help="The account the export is made for (its role and scope apply).")
@click.option("--purpose", default="", help="What the data is needed for (kept in the access log).")
@click.option("--whole", is_flag=True, help="Identity numbers and phones whole (decrypted).")
@with_appcontext
def export_cmd(kind, path, username, purpose, whole):
    from gridmap.accounts.models import User
    from gridmap.db import transaction
    from gridmap.registry.service import PERSONAL_KINDS, RegistryError, area_scope, export_csv

    require_schema()
    from sqlalchemy import select

    with transaction(sessionmaker()) as s:
        role, uid, who, scope = "admin", None, operator_name(), None
        if username or kind in PERSONAL_KINDS:
            if not username:
                raise click.ClickException(f"exporting {kind} needs --user (the account it is made for)")
            user = s.scalar(select(User).where(User.username == username, User.active.is_(True)))
            if user is None:
                raise click.ClickException(f"no active user {username!r}")
            role, uid, who = user.role, user.id, f"{operator_name()} for {user.username}"
            scope = area_scope(s, None if user.role in ("city", "admin") else user.area_id)
        try:
            with open(path, "w", encoding="utf-8-sig", newline="") as fh:
                n = export_csv(s, kind, fh, app_keys() if whole else None, role=role, actor_name=who, user_id=uid,
                               purpose=purpose or ("export" if kind not in PERSONAL_KINDS else ""), scope=scope,
                               whole=whole)
        except RegistryError as e:
            raise click.ClickException(e.message) from None
    click.echo(f"{kind}: {n} rows written to {path}" + (" (whole personal data, logged)" if whole else ""))


@registry_group.command("summary", help="Counts per area: addresses, buildings, households, residents, "
                                        "organisations.")
@click.option("--level", type=click.Choice(["cell", "community", "street", "district"]), default="street",
              show_default=True)
@with_appcontext
def summary_cmd(level):
    from gridmap.registry.service import summary

    require_schema()
    with sessionmaker()() as s:
        res = summary(s, level)
    click.echo(f"{'code':<16} {'addr':>7} {'bldg':>6} {'hh':>7} {'persons':>8} {'orgs':>6}  name")
    for r in res["rows"]:
        click.echo(f"{r['code']:<16} {r['addresses']:>7} {r['buildings']:>6} {r['households']:>7} {r['persons']:>8} "
                   f"{r['organisations']:>6}  {r['name']}")
    t = res["totals"]
    click.echo(f"{'total':<16} {t['addresses']:>7} {t['buildings']:>6} {t['households']:>7} {t['persons']:>8} "
               f"{t['organisations']:>6}")


@registry_group.command("replace", help="Place every record again against the current boundaries (after a "
                                        "republish).")
@with_appcontext
def replace_cmd():
    from gridmap.db import transaction
    from gridmap.registry.placement import replace_records

    require_schema()
    with transaction(sessionmaker()) as s:
        rep = replace_records(s, snap_m=float(current_app.config["GRIDMAP_SNAP_M"]))
    click.echo(f"{rep['addresses']} addresses: {rep['moved']} changed cell, {rep['unplaced']} in no cell")


@registry_group.command("rekey", help="After a key rotation (new GRIDMAP_PII_KEY, the old one in "
                                      "GRIDMAP_PII_OLD_KEYS): re-encrypt and re-digest personal data. See docs/registry.md.")
@with_appcontext
def rekey_cmd():
    from gridmap.db import transaction
    from gridmap.registry.pii import PiiKeyError
    from gridmap.registry.service import rekey

    require_schema()
    try:
        with transaction(sessionmaker()) as s:
            done = rekey(s, app_keys())
    except PiiKeyError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"re-keyed {done['persons']} residents and {done['organisations']} organisations")
