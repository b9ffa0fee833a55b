"""Commands for redrawing boundaries, to be added to the `gridmap boundaries` group.

Owns: parsing arguments and printing results for the draft operations (split, merge, move-edge,
reshape, create/retire cells and communities, transfer, replace-cells), the draft life-cycle
(`draft list|show|submit|reject`, `publish`), `diff` and `balance`. Thin: every rule lives in
:mod:`gridmap.redraw` (operations, workflow, publish, diff) and :mod:`gridmap.redraw.balance`. Commands act as the administrator (an operator at the server);
drawn geometry is WKT, GeoJSON text, or the path of a file holding either (WGS84 lon/lat).

``boundaries_redraw_commands`` is the list the `boundaries` group adds.
"""
from __future__ import annotations

import json
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from gridmap.accounts.actor import Actor
from gridmap.cliutil import (
    operator_name,
    parse_date,
    print_problems,
    require_schema,
    sessionmaker,
)
from gridmap.db import transaction, utcnow
from gridmap.redraw.balance import (
    balance_report,
    proposal_to_draft,
    propose_for_community,
)
from gridmap.redraw.checks import check_state
from gridmap.redraw.diff import diff
from gridmap.redraw.impact import draft_impact
from gridmap.redraw.operations import (
    create_cell,
    create_community,
    merge_cells,
    move_edge,
    replace_cells,
    reshape_cell,
    retire_cell,
    retire_community,
    split_cell,
    transfer_area,
)
from gridmap.redraw.problems import DraftError, problems_geojson
from gridmap.redraw.publish import publish_draft
from gridmap.redraw.state import DraftState
from gridmap.redraw.workflow import (
    draft_problems,
    draft_summary,
    list_drafts,
    reject_draft,
    submit_draft,
    visible_draft,
)


def _actor() -> Actor:
    return Actor(name=operator_name(), role="admin")


def _cfg(name: str, default):
    return current_app.config.get(name, default)


def _opts() -> dict:
    return {"tolerance_m": _cfg("GRIDMAP_TOLERANCE_M", 0.5), "code_format": _cfg("GRIDMAP_CELL_CODE_FORMAT", None)}


def _fail(e) -> None:
    probs = getattr(e, "problems", None)
    if probs:
        print_problems(probs, 40, place_in_message=True)
    for d in getattr(e, "differences", None) or []:
        click.echo(f"  changed meanwhile: {json.dumps(d, ensure_ascii=False)}", err=True)
    raise click.ClickException(str(e))


def _report_draft(s, d) -> None:

    summ = draft_summary(s, d)
    parts = []
    for level, acts in summ["changes"].items():
        parts.append(f"{level}: " + ", ".join(f"{n} {a}d" if a != "change" else f"{n} changed"
                                              for a, n in sorted(acts.items())))
    click.echo(f"draft #{d.id} ({d.status}, version {d.version}) {d.title}: {'; '.join(parts) or 'no changes'}")
    probs = draft_problems(d)
    print_problems(probs, 40, place_in_message=True)
    errs = sum(p.severity == "error" for p in probs)
    if errs:
        click.echo(f"{errs} errors: the draft cannot be published until they are fixed "
                   f"(`gridmap boundaries draft show {d.id}`)", err=True)


def _run_op(fn, *args, **kw):

    require_schema()
    try:
        with transaction(sessionmaker()) as s:
            d = fn(s, _actor(), *args, **kw, **_opts())
            _report_draft(s, d)
            errs = [p for p in json.loads(d.problems or "[]") if p["severity"] == "error"]
    except DraftError as e:
        _fail(e)
    if errs:
        sys.exit(1)


_draft_opt = click.option("--draft", "draft_id", type=int, help="Add to this draft (default: a new draft).")


# ---------------------------------------------------------------------------- operations
@click.command("split", help="Split CELL along a line that crosses it (a new draft, or --draft N). The largest "
                             "piece keeps the code; the others get new codes.")
@click.argument("cell")
@click.option("--line", required=True, help="The line: WKT, GeoJSON, or a file holding one (WGS84).")
@click.option("--name", "names", multiple=True, help="Names of the pieces, largest first (repeatable).")
@_draft_opt
@with_appcontext
def split_cmd(cell, line, names, draft_id):

    _run_op(split_cell, cell, line, draft_id=draft_id, names=list(names) or None)


@click.command("merge", help="Merge cells of one community that share edges; the first keeps its code.")
@click.argument("cells", nargs=-1, required=True)
@click.option("--name", help="Name of the merged cell (default: the first cell's).")
@_draft_opt
@with_appcontext
def merge_cmd(cells, name, draft_id):

    _run_op(merge_cells, list(cells), draft_id=draft_id, name=name)


@click.command("move-edge", help="Replace part of the edge shared by CELL_A and CELL_B by a line drawn from one "
                                 "point on that edge to another.")
@click.argument("cell_a")
@click.argument("cell_b")
@click.option("--line", required=True, help="WKT, GeoJSON, or a file.")
@_draft_opt
@with_appcontext
def move_edge_cmd(cell_a, cell_b, line, draft_id):

    _run_op(move_edge, cell_a, cell_b, line, draft_id=draft_id)


@click.command("reshape", help="Give CELL a new outline inside its community; its neighbours change with it.")
@click.argument("cell")
@click.option("--polygon", required=True, help="WKT, GeoJSON, or a file.")
@_draft_opt
@with_appcontext
def reshape_cmd(cell, polygon, draft_id):

    _run_op(reshape_cell, cell, polygon, draft_id=draft_id)


@click.command("create-cell", help="A new cell of COMMUNITY carved out of its cells.")
@click.argument("community")
@click.option("--polygon", required=True, help="WKT, GeoJSON, or a file.")
@click.option("--name")
@click.option("--code", help="Default: the community's next code that never existed.")
@_draft_opt
@with_appcontext
def create_cell_cmd(community, polygon, name, code, draft_id):

    _run_op(create_cell, community, polygon, name=name, code=code, draft_id=draft_id)


@click.command("retire-cell", help="Retire CELL; its area goes to --into (a neighbour) or the neighbour sharing the "
                                   "longest edge.")
@click.argument("cell")
@click.option("--into")
@_draft_opt
@with_appcontext
def retire_cell_cmd(cell, into, draft_id):

    _run_op(retire_cell, cell, into=into, draft_id=draft_id)


@click.command("transfer", help="Move a drawn area to community --to; its cells follow.")
@click.option("--polygon", required=True, help="WKT, GeoJSON, or a file.")
@click.option("--to", "to_community", required=True, help="Code of the community that gets the area.")
@_draft_opt
@with_appcontext
def transfer_cmd(polygon, to_community, draft_id):

    _run_op(transfer_area, polygon, to_community, draft_id=draft_id)


@click.command("create-community", help="A new community of STREET made of a drawn area.")
@click.argument("street")
@click.option("--name", required=True)
@click.option("--polygon", required=True, help="WKT, GeoJSON, or a file.")
@click.option("--code", help="Default: the street's next free code.")
@click.option("--kind", type=click.Choice(["residents", "village"]), default="residents", show_default=True)
@_draft_opt
@with_appcontext
def create_community_cmd(street, name, polygon, code, kind, draft_id):

    _run_op(create_community, street, name, polygon, code=code, kind=kind, draft_id=draft_id)


@click.command("retire-community", help="Retire COMMUNITY; all its area (and cells) go to --into.")
@click.argument("community")
@click.option("--into", required=True)
@_draft_opt
@with_appcontext
def retire_community_cmd(community, into, draft_id):

    _run_op(retire_community, community, into, draft_id=draft_id)


@click.command("replace-cells", help="Replace all cells of COMMUNITY by the cells of a boundary file.")
@click.argument("community")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--crs", help="Coordinate system of the file when it has none (wgs84, cgcs2000, gcj02, EPSG:<n>).")
@click.option("--match-by-overlap", is_flag=True, help="Cells without a known code take the code of the old cell "
                                                       "they overlap most.")
@_draft_opt
@with_appcontext
def replace_cells_cmd(community, path, crs, match_by_overlap, draft_id):

    _run_op(replace_cells, community, path, crs=crs, match_by_overlap=match_by_overlap, draft_id=draft_id)


# ---------------------------------------------------------------------------- drafts
@click.group("draft", help="Boundary drafts: list, show, submit, reject.")
def draft_group():
    pass


@draft_group.command("list", help="Drafts, newest first.")
@click.option("--status", type=click.Choice(["draft", "submitted", "published", "rejected"]))
@with_appcontext
def draft_list(status):

    require_schema()
    with sessionmaker()() as s:
        rows = [draft_summary(s, d) for d in list_drafts(s, _actor(), status)]
    if not rows:
        click.echo("no drafts")
    for r in rows:
        ch = ", ".join(f"{lvl} " + "/".join(f"{n} {a}" for a, n in sorted(acts.items()))
                       for lvl, acts in r["changes"].items())
        click.echo(f"#{r['id']:<5} {r['status']:<10} {r['created_at'][:16]} {r['created_by']:<16} {r['title']} "
                   f"[{ch}] {r['errors']} errors")


@draft_group.command("show", help="A draft: its changes, impact (cases, workers, households) and problems.")
@click.argument("draft_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--geojson", type=click.Path(dir_okay=False), help="Write the touched areas and problems as GeoJSON.")
@with_appcontext
def draft_show(draft_id, as_json, geojson):

    require_schema()
    try:
        with sessionmaker()() as s:
            d = visible_draft(s, _actor(), draft_id)
            state = DraftState(s, d)
            problems = check_state(state, tolerance_m=_cfg("GRIDMAP_TOLERANCE_M", 0.5)) \
                if d.status in ("draft", "submitted") else []
            imp = draft_impact(s, d, state=state, snap_m=_cfg("GRIDMAP_SNAP_M", 100.0))
            summ = draft_summary(s, d)
    except DraftError as e:
        _fail(e)
    if geojson:
        fc = imp["geojson"]
        fc = {"type": "FeatureCollection", "features": fc["features"] + problems_geojson(problems)["features"]}
        with open(geojson, "w", encoding="utf-8") as fh:
            json.dump(fc, fh, ensure_ascii=False)
    if as_json:
        out = {**summ, "impact": {k: v for k, v in imp.items() if k != "geojson"},
               "problems": [p.as_dict() for p in problems]}
        click.echo(json.dumps(out, ensure_ascii=False, default=str))
        return
    click.echo(f"draft #{d.id} {d.title} — {d.status}, version {d.version}, by {d.created_by}"
               + (f", published by {d.published_by} ({d.reason or 'no reason'})" if d.published_by else "")
               + (f", rejected by {d.rejected_by}: {d.reason}" if d.rejected_by else ""))
    for level, e in imp["areas"].items():
        for what in ("created", "changed", "retired"):
            for a in e[what]:
                if a.get("vertices_only"):
                    continue
                before = a["area_m2_before"]
                after = a["area_m2_after"]
                area = (f"{before or 0:,.0f} → {after or 0:,.0f} m²" if what == "changed"
                        else f"{(after if after is not None else before) or 0:,.0f} m²")
                hh = f"households {a['households_before']} → {a['households_after']}"
                click.echo(f"  {what:<8} {level:<9} {a['code']} {a['name']}: {area}, {hh}")
    s_ = imp["summary"]
    click.echo(f"  households moved: {s_['households_moved']}, population moved: {s_['population_moved']}, "
               f"open cases re-routed: {s_['cases_rerouted']}")
    for w in imp["workers"]:
        click.echo(f"  worker {w['worker']} {w['name']}: {w['delta_m2']:+,.0f} m²"
                   + (f", gains {', '.join(w['cells_gained'])}" if w["cells_gained"] else "")
                   + (f", loses {', '.join(w['cells_lost'])}" if w["cells_lost"] else ""))
    for c in imp["cases"][:50]:
        na = c.get("new_assignee") or {}
        click.echo(f"  case {c['number'] or c['case_id']} ({c['status']}): {c['old_cell']} → {c['new_cell']}"
                   + (f", to {na.get('worker') or na.get('level')} ({na.get('reason')})" if na else ""))
    if len(imp["cases"]) > 50:
        click.echo(f"  … and {len(imp['cases']) - 50} more cases")
    print_problems(problems, 40, place_in_message=True)
    if not problems:
        click.echo("  no problems")


@draft_group.command("submit", help="Submit a draft for publishing (a district, the city or an admin publishes).")
@click.argument("draft_id", type=int)
@with_appcontext
def draft_submit(draft_id):

    require_schema()
    try:
        with transaction(sessionmaker()) as s:
            d = submit_draft(s, draft_id, _actor())
            click.echo(f"draft #{d.id} submitted")
    except DraftError as e:
        _fail(e)


@draft_group.command("reject", help="Reject a draft, with the reason. The boundaries do not change.")
@click.argument("draft_id", type=int)
@click.option("--reason", required=True)
@with_appcontext
def draft_reject(draft_id, reason):

    require_schema()
    try:
        with transaction(sessionmaker()) as s:
            reject_draft(s, draft_id, _actor(), reason)
    except DraftError as e:
        _fail(e)
    click.echo(f"draft #{draft_id} rejected")


@click.command("publish", help="Publish a draft in one transaction: new geometry versions, retired areas, and "
                               "every open case whose cell changes re-routed with a history entry.")
@click.argument("draft_id", type=int)
@click.option("--reason", required=True, help="Why (kept with the draft and in the diff).")
@with_appcontext
def publish_cmd(draft_id, reason):

    require_schema()
    try:
        with transaction(sessionmaker()) as s:
            rep = publish_draft(s, draft_id, _actor(), reason=reason,
                                tolerance_m=_cfg("GRIDMAP_TOLERANCE_M", 0.5), snap_m=_cfg("GRIDMAP_SNAP_M", 100.0))
    except DraftError as e:
        _fail(e)
    click.echo(f"published draft #{draft_id} at {rep.published_at.isoformat()}: {rep.created} created, "
               f"{rep.changed} changed, {rep.retired} retired; {rep.cases_rerouted} open cases re-routed"
               + (f", {rep.responsibilities_inherited} responsibilities inherited" if rep.responsibilities_inherited
                  else ""))
    print_problems(rep.warnings, 40, place_in_message=True)


@click.command("diff", help="Areas created, changed and retired between two moments, with area deltas.")
@click.option("--from", "date_from", required=True, help="YYYY-MM-DD (midnight Asia/Shanghai) or an ISO time.")
@click.option("--to", "date_to", default=None, help="Default: now.")
@click.option("--level", type=click.Choice(["district", "street", "community", "cell"]))
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def diff_cmd(date_from, date_to, level, as_json):

    require_schema()
    a = parse_date(date_from)
    b = parse_date(date_to) if date_to else utcnow()
    try:
        with sessionmaker()() as s:
            out = diff(s, a, b, level=level)
    except DraftError as e:
        _fail(e)
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    for x in out["created"]:
        click.echo(f"  created  {x['level']:<9} {x['code']} {x['name']}: {x['area_m2']:,.0f} m²")
    for x in out["changed"]:
        click.echo(f"  changed  {x['level']:<9} {x['code']} {x['name']}: v{x['version_from']} → v{x['version_to']}, "
                   f"{x['area_m2_delta']:+,.0f} m²")
    for x in out["retired"]:
        click.echo(f"  retired  {x['level']:<9} {x['code']} {x['name']}: {x['area_m2']:,.0f} m²")
    for x in out["drafts"]:
        click.echo(f"  draft #{x['id']} {x['title']} published {x['published_at'][:16]} by {x['published_by']}"
                   + (f": {x['reason']}" if x["reason"] else ""))
    n = out["summary"]
    click.echo(f"{n['created']} created, {n['changed']} changed, {n['retired']} retired "
               f"between {out['from']} and {out['to']}")


@click.command("balance", help="Households per cell of COMMUNITY against a target band; with --propose N, a "
                               "re-partition into N balanced, compact cells saved as a draft to review.")
@click.argument("community")
@click.option("--target-min", type=int, default=None, help="Default GRIDMAP_BALANCE_MIN or 300.")
@click.option("--target-max", type=int, default=None, help="Default GRIDMAP_BALANCE_MAX or 500.")
@click.option("--propose", "n", type=int, default=None, help="Propose N cells (0: households / middle of the band).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dry-run", is_flag=True, help="With --propose: show the proposal, make no draft.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def balance_cmd(community, target_min, target_max, n, seed, dry_run, as_json):

    require_schema()
    band = (target_min if target_min is not None else _cfg("GRIDMAP_BALANCE_MIN", 300),
            target_max if target_max is not None else _cfg("GRIDMAP_BALANCE_MAX", 500))
    out = {}
    try:
        with transaction(sessionmaker()) as s:
            rep = balance_report(s, community=community, target=band)
            out["report"] = rep
            if n is not None:
                prop = propose_for_community(s, community, n or None, seed=seed, target=band)
                out["proposal"] = prop.as_dict()
                if not dry_run:
                    d = proposal_to_draft(s, _actor(), community, prop, **_opts())
                    out["draft"] = d.id
    except DraftError as e:
        _fail(e)
    if as_json:
        if "proposal" in out:
            out["proposal"].pop("geojson", None)
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    sm = rep["summary"]
    click.echo(f"{community}: {sm['cells']} cells, {sm['households']} households (min {sm['min']}, mean {sm['mean']}, "
               f"max {sm['max']}); target {band[0]}–{band[1]}: {sm['ok']} ok, {sm['low']} low, {sm['high']} high")
    for c in rep["outliers"]:
        click.echo(f"  {c['status']:<4} {c['code']} {c['name']}: {c['households']} households "
                   f"({c['outside_band_pct']:+.1f} % outside the band)")
    if "proposal" in out:
        p = out["proposal"]
        click.echo(f"proposal: {p['n']} cells from {p['points']} household points ({p['points_origin']}); largest "
                   f"deviation {p['largest_deviation_pct']} %, mean Polsby-Popper {p['mean_polsby_popper']}")
        for c in p["cells"]:
            click.echo(f"  cell {c['seq']}: {c['households']} households ({c['deviation_pct']:+.1f} %), "
                       f"{c['area_m2']:,.0f} m², Polsby-Popper {c['polsby_popper']}")
        if "draft" in out:
            click.echo(f"saved as draft #{out['draft']}: review with `gridmap boundaries draft show {out['draft']}`")


#: the commands gridmap/cli.py adds to the `boundaries` group
boundaries_redraw_commands = [split_cmd, merge_cmd, move_edge_cmd, reshape_cmd, create_cell_cmd, retire_cell_cmd,
                              transfer_cmd, create_community_cmd, retire_community_cmd, replace_cells_cmd,
                              draft_group, publish_cmd, diff_cmd, balance_cmd]

