"""`gridmap categories …`: thin commands over gridmap.incidents.categories (load the taxonomy file, list it)."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.group("categories", help="The case taxonomy (事件分类): categories, time limits, routing departments.")
def categories_group():
    pass


@categories_group.command("load", help="Load (upsert by code) departments and categories from a JSON file "
                                       "(default: data/categories.json). A file with any problem changes nothing.")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@with_appcontext
def categories_load(path):
    from gridmap.db import transaction
    from gridmap.incidents.categories import CategoryFileError, load_categories

    try:
        with transaction(current_app.extensions["gridmap.sessionmaker"]) as s:
            rep = load_categories(s, path)
    except CategoryFileError as e:
        raise click.ClickException(str(e)) from None
    d, c = rep["departments"], rep["categories"]
    click.echo(f"{rep['path']}: departments {d['created']} created, {d['updated']} updated, "
               f"{d['unchanged']} unchanged; categories {c['created']} created, {c['updated']} updated, "
               f"{c['unchanged']} unchanged")
    if rep["not_in_file"]:
        click.echo(f"stored but not in the file (left as they are): {', '.join(rep['not_in_file'])}", err=True)


@categories_group.command("route", help="Edit this city's 权责清单: route a category (code, standard code or "
                                        "Chinese name) and its subcategories that shared its routing to a "
                                        "department, or to the cell's grid worker with 'grid'.")
@click.argument("category")
@click.argument("department")
@with_appcontext
def categories_route(category, department):
    from gridmap.db import transaction
    from gridmap.incidents.categories import AmbiguousCategory, UnknownCategory, set_route

    try:
        with transaction(current_app.extensions["gridmap.sessionmaker"]) as s:
            changed = set_route(s, category, department)
    except (UnknownCategory, AmbiguousCategory, ValueError) as e:
        raise click.ClickException(str(e)) from None
    target = "the cell's grid worker" if department == "grid" else department
    click.echo(f"{len(changed)} categor{'y' if len(changed) == 1 else 'ies'} now routed to {target}"
               + (f": {', '.join(changed)}" if changed else ""))


@categories_group.command("list", help="List the stored categories with their effective time limits.")
@with_appcontext
def categories_list():
    from gridmap.incidents.categories import KIND_ZH, list_categories

    with current_app.extensions["gridmap.sessionmaker"]() as s:
        rows = list_categories(s)
    if not rows:
        click.echo("no categories stored: run `gridmap categories load`", err=True)
        return
    for r in rows:
        limit = f"{r['limit_value']:g} {r['limit_unit']}" if r["limit_unit"] else "no limit"
        if r["limit_inherited_from"]:
            limit += f" (from {r['limit_inherited_from']})"
        extra = f"\t→ {r['department']}" if r["department"] else "\t→ grid worker"
        if r["std_code"]:
            extra = f"\t{KIND_ZH.get(r['kind'], r['kind'])} {r['std_code']} ({r['std_source']})" + extra
        if r["confirm_first"]:
            extra += "\t(on-site verification before filing)"
        off = "" if r["active"] else "\t(inactive)"
        click.echo(f"{r['code']}\t{r['name']}\t{r['kind']}\t{limit}{extra}{off}")
