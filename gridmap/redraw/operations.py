"""The redrawing operations: each one turns a drawn line or polygon into a DRAFT change, never a
write to the boundaries themselves (publishing is :func:`gridmap.redraw.publish.publish_draft`).

* :func:`split_cell` — along a line that crosses the cell; the largest piece keeps the code;
* :func:`merge_cells` — cells of one community that share edges of positive length; the first
  named keeps its code, the others are retired;
* :func:`move_edge` — replace part of the edge shared by two cells by a drawn polyline between two
  points on that edge: the faces enclosed between the old edge and the new line change owner;
* :func:`reshape_cell` — a new outline for one cell: area it gains is taken from its siblings,
  each piece of area it gives up goes to the sibling sharing the longest border with the piece;
* :func:`create_cell` / :func:`retire_cell` — carve a new cell out of its siblings / give a cell's
  area to one sibling (the named one, else the one sharing the longest edge);
* :func:`transfer_area` — a drawn area goes from its communities to another community; its cells
  follow (a cell wholly inside moves as a new cell of the target community with a new code, the
  old one is retired; a cell cut by the area is split, its inner part becoming a new cell there);
  streets and districts follow when the communities are in different ones;
* :func:`create_community` / :func:`retire_community` — a transfer to a new community / of a whole
  community into a neighbour;
* :func:`replace_cells` — a community's cells from an uploaded file or from a balance proposal.

All geometry stays in EPSG:4326 (as stored): projecting to metres and back would move shared
vertices apart. Metres are used only to measure (areas, slivers, tolerances).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
import shapely.errors
import shapely.ops
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.geo import measure
from gridmap.geo.shapes import (
    as_multi,
    extend_line,
    fmt_at,
    metric_epsg,
    outside_pieces,
    shared_border_m,
    snap_drawn,
    thin,
    tol_degrees,
    where,
    wkt,
)
from gridmap.redraw.drawing import drawn_line, drawn_polygon, read_features
from gridmap.redraw.editor import (
    COMMUNITY_SEQ,
    Editor,
    common_options,
    editing,
    to_metric_array,
)
from gridmap.redraw.impact import overlaps
from gridmap.redraw.models import BoundaryDraft
from gridmap.redraw.problems import DraftProblem, RedrawError
from gridmap.redraw.state import AreaRec


def _refuse_outside(piece, what: str, container_rec: AreaRec, epsg: int) -> None:
    lon, lat = where(piece)
    area = float(measure.areas_m2(np.array([piece], dtype=object), epsg)[0])
    raise RedrawError(f"{what} sticks out of {container_rec.level} {container_rec.code} {container_rec.name} by "
                      f"{area:.1f} m² {fmt_at(lon, lat)}",
                      [DraftProblem("error", "outside_parent", f"{what} sticks out of {container_rec.code}",
                                    (container_rec.code,), lon, lat, piece)])


def split_cell(session: Session, actor: Actor, cell: str, line: Any, *, draft_id: int | None = None,
               names: list[str] | None = None, title: str | None = None, tolerance_m: float | None = None,
               code_format: str | None = None, expected_version: int | None = None) -> BoundaryDraft:
    """Split ``cell`` along ``line``, which must cross it (enter and leave). The largest piece
    keeps the code and the name; the others become new cells (new codes). Parts of a
    MultiPolygon the line does not cross stay with the largest piece."""
    line_g = drawn_line(line)
    with editing(session, actor, draft_id, "split", {"cell": cell, "line": wkt(line_g)},
                  **common_options(tolerance_m, code_format, draft_id, title or f"split {cell}", expected_version)) as ed:
        rec = ed.state.get(cell, "cell")
        epsg = metric_epsg([rec.geom])
        nbrs = ed.state.near("cell", rec.geom, exclude=[rec.code])
        snapped = snap_drawn(line_g, [rec.geom] + [n.geom for n in nbrs], ed.tol)
        long = extend_line(snapped, 2 * ed.tol + 0.01)
        pieces, kept = [], []
        for part in shapely.get_parts(rec.geom):
            got = list(shapely.get_parts(shapely.ops.split(part, long)))
            got = [g for g in got if shapely.get_type_id(g) == 3]
            if len(got) > 1:
                pieces.extend(got)
            else:
                kept.append(part)
        if pieces:
            slim = thin(to_metric_array(pieces, epsg), ed.tol)
            if slim.any():  # slivers cut off where the line grazes the edge: back to their neighbour piece
                fat = [p for p, s in zip(pieces, slim) if not s]
                for p in [p for p, s in zip(pieces, slim) if s]:
                    if fat:
                        k = max(range(len(fat)), key=lambda i: shared_border_m(p, fat[i], epsg))
                        fat[k] = shapely.union(fat[k], p)
                pieces = fat
        if len(pieces) < 2:
            xy = shapely.get_coordinates(line_g)
            a, b = xy[0], xy[-1]
            inside = [f"{x:.6f} {y:.6f}" for x, y in (a, b) if rec.geom.contains(shapely.Point(x, y))]
            why = (f"; it ends inside the cell at {', '.join(inside)}" if inside
                   else "; it must enter and leave the cell")
            raise RedrawError(f"the line does not cross cell {rec.code} {rec.name}{why} (line from {a[0]:.6f} "
                              f"{a[1]:.6f} to {b[0]:.6f} {b[1]:.6f})",
                              [DraftProblem("error", "no_crossing", f"line does not cross {rec.code}", (rec.code,),
                                            float(a[0]), float(a[1]), line_g)])
        areas = shapely.area(to_metric_array(pieces, epsg))
        order = np.argsort(-areas, kind="stable")
        first = shapely.union_all([pieces[order[0]]] + kept) if kept else pieces[order[0]]
        ed.change(rec, first)
        comm = ed.state.get(rec.parent_code, "community")
        for n, k in enumerate(order[1:]):
            name = names[n + 1] if names and len(names) > n + 1 else None
            ed.create("cell", comm, pieces[k], name=name, kind=rec.kind)
        if names:
            ed.state.recs[rec.code].name = names[0]
    return ed.draft


def merge_cells(session: Session, actor: Actor, cells: list[str], *, draft_id: int | None = None,
                name: str | None = None, title: str | None = None, tolerance_m: float | None = None,
                code_format: str | None = None, expected_version: int | None = None) -> BoundaryDraft:
    """Merge cells of one community that share edges of positive length (a corner is not
    enough). The first cell keeps its code; the others are retired."""
    cells = [str(c).strip() for c in cells]
    if len(cells) < 2 or len(set(cells)) != len(cells):
        raise RedrawError("merge needs at least two different cells")
    with editing(session, actor, draft_id, "merge", {"cells": cells},
                  **common_options(tolerance_m, code_format, draft_id, title or f"merge {' '.join(cells)}",
                            expected_version)) as ed:
        recs = [ed.state.get(c, "cell") for c in cells]
        comms = {r.parent_code for r in recs}
        if len(comms) > 1:
            listing = ", ".join(f"{r.code} in {r.parent_code}" for r in recs)
            raise RedrawError(f"cells of different communities cannot be merged ({listing}): transfer the area "
                              f"to one community first")
        epsg = metric_epsg([r.geom for r in recs])
        # connected through shared edges longer than the tolerance
        linked = {0}
        frontier = [0]
        while frontier:
            i = frontier.pop()
            for j in range(len(recs)):
                if j not in linked and shared_border_m(recs[i].geom, recs[j].geom, epsg) > ed.tol:
                    linked.add(j)
                    frontier.append(j)
        if len(linked) < len(recs):
            apart = [recs[j] for j in range(len(recs)) if j not in linked]
            lon, lat = where(apart[0].geom)
            corner = any(recs[i].geom.touches(a.geom) for i in linked for a in apart)
            how = "only touch at a corner" if corner else "do not touch"
            raise RedrawError(
                f"cells {', '.join(a.code for a in apart)} {how} {', '.join(recs[i].code for i in sorted(linked))}: "
                f"merged cells must share an edge of positive length ({apart[0].code} {fmt_at(lon, lat)})",
                [DraftProblem("error", "not_adjacent", f"{a.code} shares no edge with the others", (a.code,),
                              *where(a.geom), a.geom) for a in apart])
        geoms = np.array([r.geom for r in recs], dtype=object)
        merged = (shapely.coverage_union_all(geoms) if shapely.coverage_is_valid(geoms)
                  else shapely.union_all(geoms))
        ed.change(recs[0], merged, **({"name": name} if name else {}))
        for r in recs[1:]:
            ed.retire(r)
    return ed.draft


def _shared_edge(a, b):
    e = shapely.line_merge(shapely.intersection(shapely.boundary(a), shapely.boundary(b)))
    parts = [p for p in shapely.get_parts(e) if shapely.get_type_id(p) in (1, 2)]
    return parts


def move_edge(session: Session, actor: Actor, cell_a: str, cell_b: str, line: Any, *, draft_id: int | None = None,
              title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
              expected_version: int | None = None) -> BoundaryDraft:
    """Replace part of the edge shared by ``cell_a`` and ``cell_b`` by ``line``, drawn from one
    point on that edge to another (ends within the tolerance are snapped onto it) and staying
    inside the two cells. The faces enclosed between the old edge and the line change owner:
    both neighbours change together and nothing else moves."""
    line_g = drawn_line(line)
    with editing(session, actor, draft_id, "move_edge", {"cells": [cell_a, cell_b], "line": wkt(line_g)},
                  **common_options(tolerance_m, code_format, draft_id, title or f"move edge {cell_a}/{cell_b}",
                            expected_version)) as ed:
        a, b = ed.state.get(cell_a, "cell"), ed.state.get(cell_b, "cell")
        epsg = metric_epsg([a.geom, b.geom])
        edges = _shared_edge(a.geom, b.geom)
        if not edges or shared_border_m(a.geom, b.geom, epsg) <= ed.tol:
            raise RedrawError(f"cells {a.code} and {b.code} share no edge: pick two neighbours")
        xy = shapely.get_coordinates(line_g)
        p, q = shapely.Point(xy[0]), shapely.Point(xy[-1])
        tol_deg = tol_degrees(ed.tol) / max(math.cos(math.radians(p.y)), 0.2)
        edge = min(edges, key=lambda e: e.distance(p) + e.distance(q))
        for end, name in ((p, "start"), (q, "end")):
            if edge.distance(end) > tol_deg:
                raise RedrawError(f"the line's {name} ({end.x:.6f} {end.y:.6f}) is not on the edge between {a.code} "
                                  f"and {b.code}: start and end the new edge on the old one",
                                  [DraftProblem("error", "off_edge", f"{name} not on the shared edge",
                                                (a.code, b.code), end.x, end.y, edge)])
        dp, dq = edge.project(p), edge.project(q)
        if abs(dp - dq) <= tol_deg:
            raise RedrawError("the line starts and ends at the same point of the edge: nothing would change")
        lo_, hi_ = sorted((dp, dq))
        old_part = shapely.ops.substring(edge, lo_, hi_)
        ends = shapely.get_coordinates(old_part)
        mid = shapely.get_coordinates(snap_drawn(line_g, [a.geom, b.geom], ed.tol))[1:-1]
        start, end = (ends[0], ends[-1]) if dp <= dq else (ends[-1], ends[0])
        new_line = shapely.LineString(np.vstack([start, mid, end]) if len(mid) else np.vstack([start, end]))
        union = shapely.union(a.geom, b.geom)
        stray = shapely.difference(new_line, union)
        if not stray.is_empty and float(shapely.length(to_metric_array([stray], epsg))[0]) > ed.tol:
            lon, lat = where(stray)
            raise RedrawError(f"the new edge leaves cells {a.code} and {b.code} {fmt_at(lon, lat)}: keep it inside "
                              f"the two cells (use reshape or transfer for more)",
                              [DraftProblem("error", "outside", "new edge outside the two cells", (a.code, b.code),
                                            lon, lat, stray)])
        loops = as_multi(shapely.polygonize(shapely.get_parts(shapely.union_all([old_part, new_line]))))
        if loops is None:
            raise RedrawError("the new edge encloses no area with the old one: nothing would change")
        to_b = shapely.intersection(a.geom, loops)
        to_a = shapely.intersection(b.geom, loops)
        ed.change(a, shapely.union(shapely.difference(a.geom, loops), to_a))
        ed.change(b, shapely.union(shapely.difference(b.geom, loops), to_b))
    return ed.draft


def _give_away(ed: Editor, lost, siblings: list[AreaRec], epsg: int) -> None:
    """Each piece of ``lost`` goes to the sibling sharing the longest border with it."""
    if lost is None or lost.is_empty:
        return
    for piece in shapely.get_parts(as_multi(lost) or shapely.MultiPolygon()):
        if thin(to_metric_array([piece], epsg), ed.tol)[0]:
            cands = siblings
        else:
            cands = [s for s in siblings if shared_border_m(piece, ed.state.recs[s.code].geom, epsg) > ed.tol]
        if not cands:
            continue  # stays a gap: the check reports it with its place
        best = max(cands, key=lambda s: (shared_border_m(piece, ed.state.recs[s.code].geom, epsg), s.code))
        cur = ed.state.recs[best.code]
        ed.change(cur, shapely.union(cur.geom, piece))


def reshape_cell(session: Session, actor: Actor, cell: str, polygon: Any, *, draft_id: int | None = None,
                 title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
                 expected_version: int | None = None) -> BoundaryDraft:
    """Give ``cell`` a new outline (within its community). Its siblings change with it: area the
    cell gains is taken from them; each piece it gives up goes to the sibling sharing the longest
    border with that piece. A sibling left with nothing is retired."""
    poly = drawn_polygon(polygon)
    with editing(session, actor, draft_id, "reshape", {"cell": cell, "polygon": wkt(poly)},
                  **common_options(tolerance_m, code_format, draft_id, title or f"reshape {cell}", expected_version)) as ed:
        rec = ed.state.get(cell, "cell")
        comm = ed.state.get(rec.parent_code, "community")
        epsg = metric_epsg([comm.geom])
        sibs = [s for s in ed.state.children(comm.code) if s.code != rec.code]
        nbrs = ed.state.near("cell", poly, exclude=[rec.code])
        poly = snap_drawn(poly, [rec.geom, comm.geom] + [n.geom for n in nbrs], ed.tol)
        out = outside_pieces(poly, comm.geom, ed.tol, epsg)
        if out is not None:
            _refuse_outside(out, f"the new outline of {rec.code}", comm, epsg)
        new = as_multi(shapely.intersection(poly, comm.geom))
        if new is None:
            raise RedrawError(f"the new outline of {rec.code} is empty inside community {comm.code}")
        lost = shapely.difference(rec.geom, new)
        for s in sibs:
            cur = ed.state.recs[s.code]
            if cur.geom.intersects(new):
                ed.change(cur, shapely.difference(cur.geom, new))
        ed.change(rec, new)
        _give_away(ed, lost, [s for s in sibs if ed.state.recs.get(s.code) is not None
                              and ed.state.recs[s.code].active], epsg)
    return ed.draft


def create_cell(session: Session, actor: Actor, community: str, polygon: Any, *, name: str | None = None,
                code: str | None = None, draft_id: int | None = None, title: str | None = None,
                tolerance_m: float | None = None, code_format: str | None = None,
                expected_version: int | None = None) -> BoundaryDraft:
    """A new cell carved out of its community's cells (they lose what it takes; a cell left with
    nothing is retired). The polygon must lie inside the community (within the tolerance)."""
    poly = drawn_polygon(polygon)
    with editing(session, actor, draft_id, "create_cell", {"community": community, "polygon": wkt(poly)},
                  **common_options(tolerance_m, code_format, draft_id, title or f"new cell in {community}",
                            expected_version)) as ed:
        comm = ed.state.get(community, "community")
        epsg = metric_epsg([comm.geom])
        nbrs = ed.state.near("cell", poly)
        poly = snap_drawn(poly, [comm.geom] + [n.geom for n in nbrs], ed.tol)
        out = outside_pieces(poly, comm.geom, ed.tol, epsg)
        if out is not None:
            _refuse_outside(out, "the new cell", comm, epsg)
        new = as_multi(shapely.intersection(poly, comm.geom))
        if new is None or thin(to_metric_array([new], epsg), ed.tol)[0]:
            raise RedrawError(f"the new cell is empty or thinner than {ed.tol:g} m inside community {comm.code}")
        for s in ed.state.children(comm.code):
            if s.geom.intersects(new):
                rest = as_multi(shapely.difference(s.geom, new))
                if rest is None or thin(to_metric_array([rest], epsg), ed.tol).all():
                    ed.retire(s)
                else:
                    ed.change(s, rest)
        if code:
            ed.check_code(code)
        ed.create("cell", comm, new, name=name, code=code)
    return ed.draft


def retire_cell(session: Session, actor: Actor, cell: str, *, into: str | None = None, draft_id: int | None = None,
                title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
                expected_version: int | None = None) -> BoundaryDraft:
    """Retire ``cell``: its area goes to ``into`` (a sibling sharing an edge with it), else to
    the sibling sharing the longest edge. Its code is never used again."""
    with editing(session, actor, draft_id, "retire_cell", {"cell": cell, "into": into},
                  **common_options(tolerance_m, code_format, draft_id, title or f"retire {cell}", expected_version)) as ed:
        rec = ed.state.get(cell, "cell")
        epsg = metric_epsg([rec.geom])
        sibs = [s for s in ed.state.children(rec.parent_code) if s.code != rec.code]
        if into:
            target = ed.state.get(into, "cell")
            if target.parent_code != rec.parent_code:
                raise RedrawError(f"{into} is in community {target.parent_code}, {cell} in {rec.parent_code}: "
                                  f"its area must go to a cell of the same community")
            if shared_border_m(rec.geom, target.geom, epsg) <= ed.tol:
                raise RedrawError(f"cells {cell} and {into} share no edge")
        else:
            cands = [(s, shared_border_m(rec.geom, s.geom, epsg)) for s in sibs]
            cands = [c for c in cands if c[1] > ed.tol]
            if not cands:
                raise RedrawError(f"cell {cell} shares no edge with another cell of community {rec.parent_code}: "
                                  f"retire the community or transfer the area instead")
            target = max(cands, key=lambda c: (c[1], c[0].code))[0]
        geoms = np.array([target.geom, rec.geom], dtype=object)
        merged = (shapely.coverage_union_all(geoms) if shapely.coverage_is_valid(geoms)
                  else shapely.union_all(geoms))
        ed.change(target, merged)
        ed.retire(rec)
    return ed.draft


def _move_region(ed: Editor, region, target: AreaRec, *, retire_empty: bool = True) -> int:
    """Move ``region`` from the communities it covers to community ``target``; cells follow.
    Returns how many communities gave area."""
    state = ed.state
    epsg = metric_epsg([region, target.geom] if target.geom is not None else [region])
    givers = 0
    gained = []
    for src in state.near("community", region, exclude=[target.code]):
        src = state.recs[src.code]
        piece = as_multi(shapely.intersection(src.geom, region))
        if piece is None or thin(to_metric_array([piece], epsg), ed.tol).all():
            continue
        # cells decide what exactly moves
        moved = []
        for c in state.children(src.code):
            inside = as_multi(shapely.intersection(c.geom, piece))
            if inside is None or thin(to_metric_array([inside], epsg), ed.tol).all():
                continue
            outside = as_multi(shapely.difference(c.geom, piece))
            if outside is None or thin(to_metric_array([outside], epsg), ed.tol).all():
                moved.append(c.geom)
                ed.retire(c)
                gained.append(("whole", c, c.geom))
            else:
                moved.append(inside)
                ed.change(c, outside)
                gained.append(("part", c, inside))
        eff = as_multi(shapely.union_all(moved)) if moved else piece
        if eff is None:
            continue
        givers += 1
        rest = as_multi(shapely.difference(src.geom, eff))
        if rest is None or thin(to_metric_array([rest], epsg), ed.tol).all():
            if not retire_empty:
                raise RedrawError(f"the area takes all of community {src.code} {src.name}: use retire-community")
            ed.retire(src)
        else:
            ed.change(src, rest)
        # streets and districts follow when they differ
        s_anc = {a.level: a for a in state.ancestors(src)}
        t_anc = {a.level: a for a in state.ancestors(target)}
        for lvl in ("street", "district"):
            sa, ta = s_anc.get(lvl), t_anc.get(lvl)
            if sa is None or ta is None or sa.code == ta.code:
                continue
            sa, ta = state.recs[sa.code], state.recs[ta.code]
            rest = as_multi(shapely.difference(sa.geom, eff))
            if rest is None or thin(to_metric_array([rest], epsg), ed.tol).all():
                ed.retire(sa)
            else:
                ed.change(sa, rest)
            ed.change(ta, shapely.union(ta.geom, eff))
        cur = state.recs.get(target.code, target)
        target = ed.change(cur, shapely.union(cur.geom, eff) if cur.geom is not None else eff)
    # the cells that follow: new cells of the target community (codes carry the community)
    for how, c, g in gained:
        ed.create("cell", state.recs[target.code], g, kind=c.kind,
                  name=c.name if how == "whole" and c.name else None)
    return givers


def transfer_area(session: Session, actor: Actor, polygon: Any, to_community: str, *, draft_id: int | None = None,
                  title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
                  expected_version: int | None = None) -> BoundaryDraft:
    """Move the drawn area from the communities it covers to ``to_community``. Its cells follow:
    a cell wholly inside becomes a new cell of the target (new code; the old one is retired, so
    its history stays exact), a cell cut by the area keeps the rest and the part inside becomes
    a new cell of the target. Streets and districts follow when they differ."""
    poly = drawn_polygon(polygon)
    with editing(session, actor, draft_id, "transfer", {"to": to_community, "polygon": wkt(poly)},
                  **common_options(tolerance_m, code_format, draft_id, title or f"transfer to {to_community}",
                            expected_version)) as ed:
        target = ed.state.get(to_community, "community")
        nbrs = ed.state.near("community", poly)
        refs = [n.geom for n in nbrs] + [c.geom for c in ed.state.near("cell", poly)]
        region = snap_drawn(poly, refs, ed.tol)
        if not _move_region(ed, region, target, retire_empty=False):
            raise RedrawError(f"the area takes nothing from any other community: draw it over the area that "
                              f"should go to {to_community}")
    return ed.draft


def create_community(session: Session, actor: Actor, street: str, name: str, polygon: Any, *,
                     code: str | None = None, kind: str = "residents", draft_id: int | None = None,
                     title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
                     expected_version: int | None = None) -> BoundaryDraft:
    """A new community of ``street`` made of the drawn area (taken from the street's communities;
    their cells inside follow as in :func:`transfer_area`). Code: given, else the street's next
    free one (001–199 residents, 200–399 village)."""
    if kind not in COMMUNITY_SEQ:
        raise RedrawError(f"a community's kind is residents or village, not {kind!r}")
    if not (name or "").strip():
        raise RedrawError("a new community needs a name")
    poly = drawn_polygon(polygon)
    with editing(session, actor, draft_id, "create_community",
                  {"street": street, "name": name, "code": code, "polygon": wkt(poly)},
                  **common_options(tolerance_m, code_format, draft_id, title or f"new community {name}",
                            expected_version)) as ed:
        st = ed.state.get(street, "street")
        epsg = metric_epsg([st.geom])
        refs = [st.geom] + [c.geom for c in ed.state.children(st.code)] + [
            c.geom for c in ed.state.near("cell", poly)]
        region = snap_drawn(poly, refs, ed.tol)
        out = outside_pieces(region, st.geom, ed.tol, epsg)
        if out is not None:
            _refuse_outside(out, f"the new community {name}", st, epsg)
        region = as_multi(shapely.intersection(region, st.geom))
        if code:
            ed.check_code(code)
        new = AreaRec("community", code or ed.new_code(st, "community", kind), name.strip(), st.code, kind,
                      None, None, None)
        ed.state.recs[new.code] = new  # placeholder, given its geometry by the move
        new.action = "create"
        if not _move_region(ed, region, new, retire_empty=True):
            raise RedrawError(f"the new community takes no area from {street}'s communities")
    return ed.draft


def retire_community(session: Session, actor: Actor, community: str, into: str, *, draft_id: int | None = None,
                     title: str | None = None, tolerance_m: float | None = None, code_format: str | None = None,
                     expected_version: int | None = None) -> BoundaryDraft:
    """Retire ``community``: all its area goes to the neighbouring community ``into``; its cells
    become new cells of ``into`` (streets and districts follow when they differ)."""
    with editing(session, actor, draft_id, "retire_community", {"community": community, "into": into},
                  **common_options(tolerance_m, code_format, draft_id, title or f"retire {community}",
                            expected_version)) as ed:
        src = ed.state.get(community, "community")
        tgt = ed.state.get(into, "community")
        epsg = metric_epsg([src.geom, tgt.geom])
        if shared_border_m(src.geom, tgt.geom, epsg) <= ed.tol:
            raise RedrawError(f"communities {community} and {into} share no edge: its area must go to a neighbour")
        _move_region(ed, src.geom, tgt, retire_empty=True)
        if ed.state.recs.get(community) is not None and ed.state.recs[community].active:
            ed.retire(ed.state.recs[community])
    return ed.draft


def replace_cells(session: Session, actor: Actor, community: str, source: Any, *, draft_id: int | None = None,
                  match_by_overlap: bool = False, title: str | None = None, tolerance_m: float | None = None,
                  code_format: str | None = None, expected_version: int | None = None, crs: str | None = None,
                  code_field: str | None = None, name_field: str | None = None) -> BoundaryDraft:
    """Replace all cells of ``community`` by the features of ``source``: a boundary file (read with
    :func:`gridmap.boundaries.io.read_boundary_file`), a BoundaryLayer, or a list of dicts
    (code, name, geometry, households, population).

    A feature whose code is a cell of this community changes that cell (identity kept); a
    feature with a full cell code of this community that never existed creates that cell; a
    feature without a code, or with a placeholder (1, 2, 3 …: the file reader wants a number),
    gets a new one (or, with ``match_by_overlap``, the code of the old cell
    it overlaps most, each at most once); a code of any other area, ever, is refused. Old cells
    not in the source are retired. Figures given in the file are kept; missing ones are
    re-allocated by area.
    """
    feats = read_features(source, crs=crs, code_field=code_field, name_field=name_field)
    with editing(session, actor, draft_id, "replace_cells", {"community": community, "features": len(feats)},
                  **common_options(tolerance_m, code_format, draft_id, title or f"replace cells of {community}",
                            expected_version)) as ed:
        comm = ed.state.get(community, "community")
        epsg = metric_epsg([comm.geom])
        olds = {c.code: c for c in ed.state.children(comm.code)}
        outside_cells = [c for c in ed.state.near("cell", comm.geom) if c.parent_code != comm.code]
        refs = [comm.geom] + [c.geom for c in outside_cells] + [c.geom for c in olds.values()]
        geoms = []
        for k, f in enumerate(feats):
            g = f["geometry"]
            if g is None or shapely.get_type_id(g) not in (3, 6) or not g.is_valid:
                reason = shapely.is_valid_reason(g) if g is not None else "no geometry"
                lon, lat = where(g) if g is not None else (None, None)
                raise RedrawError(f"feature {k + 1} ({f.get('code') or 'no code'}): not a valid polygon ({reason})",
                                  [DraftProblem("error", "invalid_drawing", reason, (f.get("code") or "",), lon, lat,
                                                g)])
            geoms.append(snap_drawn(as_multi(g), refs, ed.tol))
        # identities
        codes: list[str | None] = []
        full_len = len(ed.code_format.format(community=comm.code, seq=1))
        for f in feats:
            c = (str(f.get("code")).strip() if f.get("code") not in (None, "") else None)
            if c is not None and c not in olds:
                if c.startswith(comm.code) and len(c) == full_len:
                    ed.check_code(c)  # an explicit new code: must never have existed
                else:
                    c = None  # a placeholder (1, 2, 3 …): gridmap numbers the new cell
            codes.append(c)
        if len([c for c in codes if c]) != len({c for c in codes if c}):
            raise RedrawError("the source names the same cell code twice")
        if match_by_overlap:
            free_old = [o for o in olds.values() if o.code not in codes]
            if free_old:
                pairs = overlaps(free_old, [AreaRec("cell", str(k), "", None, None, None, None, g)
                                            for k, g in enumerate(geoms)], epsg)
                taken_old, taken_new = set(), set()
                for i, j, a in sorted(pairs, key=lambda p: -p[2]):
                    if codes[j] is None and i not in taken_old and j not in taken_new:
                        codes[j] = free_old[i].code
                        taken_old.add(i)
                        taken_new.add(j)
        keep = {c for c in codes if c in olds}
        for code, o in olds.items():
            if code not in keep:
                ed.retire(o)
        for f, g, c in zip(feats, geoms, codes):
            fixed = f.get("households") is not None or f.get("population") is not None
            attrs = {}
            if f.get("name"):
                attrs["name"] = str(f["name"])
            if fixed:
                attrs.update(households=f.get("households"), population=f.get("population"), fixed_figures=True)
            if c in olds:
                ed.change(ed.state.recs[c], g, **attrs)
            else:
                ed.create("cell", comm, g, name=attrs.get("name"), code=c, kind=f.get("kind") or "base",
                          households=attrs.get("households"), population=attrs.get("population"),
                          fixed_figures=fixed)
        # the community is the frame: its old cells' outline
        ed._frames.setdefault("cell", []).append(comm.geom)
    return ed.draft
