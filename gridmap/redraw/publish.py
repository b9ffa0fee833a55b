"""Publishing a draft: its geometry versions written and its open cases re-routed, in one transaction.

Owns: :func:`publish_draft`. It closes exactly the ``area_geometries`` rows the draft was based on
(``UPDATE … SET valid_to=:now WHERE id IN (…) AND valid_to IS NULL``); fewer rows than expected
means another draft or an import changed one of them since, and the whole transaction is rolled
back with a :class:`~gridmap.redraw.problems.ConflictError` naming the areas: the draft stays a
draft. New versions are inserted, areas created or retired, and every open case whose cell
changes is re-routed with a ``reroute`` history event (bulk insert; COPY on PostgreSQL). Closed
cases keep their cell. Every past state stays readable (``locate --at``, ``export --at``).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from geoalchemy2.shape import from_shape
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.assign.models import Responsibility
from gridmap.assign.router import route
from gridmap.boundaries.models import LEVELS, Area, AreaGeometry
from gridmap.db import utcnow
from gridmap.geo import measure
from gridmap.incidents.models import Case, CaseEvent, Category
from gridmap.redraw.checks import check_state
from gridmap.redraw.impact import (
    case_relocation,
    current_responsibilities,
    inherit_from,
    local_today,
)
from gridmap.redraw.models import (
    CLOSED_CASE_STATUSES,
    DEFAULT_TOLERANCE_M,
    PUBLISH_ROLES,
    BoundaryDraft,
    BoundaryDraftArea,
)
from gridmap.redraw.problems import (
    ConflictError,
    DraftError,
    DraftPermissionError,
    DraftProblemsError,
)
from gridmap.redraw.state import DraftState, chunks
from gridmap.redraw.workflow import require_may_edit, store_problems, visible_draft


@dataclass
class PublishReport:
    draft_id: int
    published_at: dt.datetime
    created: int = 0
    changed: int = 0
    retired: int = 0
    cases_rerouted: int = 0
    cases_updated: int = 0
    responsibilities_inherited: int = 0
    responsibilities_closed: int = 0
    warnings: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"draft": self.draft_id, "published_at": self.published_at.isoformat(), "created": self.created,
                "changed": self.changed, "retired": self.retired, "cases_rerouted": self.cases_rerouted,
                "cases_updated": self.cases_updated, "responsibilities_inherited": self.responsibilities_inherited,
                "responsibilities_closed": self.responsibilities_closed,
                "warnings": [p.as_dict() for p in self.warnings]}


def publish_draft(session: Session, draft_id: int, actor: Actor, *, reason: str | None = None,
                  expected_version: int | None = None, now: dt.datetime | None = None,
                  tolerance_m: float = DEFAULT_TOLERANCE_M, snap_m: float = 100.0,
                  inherit_workers: bool = True) -> PublishReport:
    """Publish ``draft_id`` in the caller's transaction (the caller commits; any error rolls all back).

    1. the draft row moves to 'published' only from the version read (atomic);
    2. the geometry versions it was based on are closed with one UPDATE that must hit exactly
       that many current rows, else :class:`ConflictError` (the caller rolls back; the draft
       stays a draft with all its work);
    3. the resulting state is checked: any error raises :class:`DraftProblemsError`;
    4. new areas, new geometry versions (valid_from = now), retired areas (retired_at = now);
       created cells inherit the workers of the cell most of their area came from; retired
       cells' responsibilities end today;
    5. every open case whose cell changes is moved to its new cell and re-routed
       (:func:`gridmap.assign.router.route`, one call per new cell and category kind), set-based:
       one UPDATE per (new cell, route), history rows by one bulk INSERT ("reroute", comment
       "boundary change draft #N"). Closed cases keep their cell.
    """

    now = now or utcnow()
    d = visible_draft(session, actor, draft_id)
    if d.status not in ("draft", "submitted"):
        raise DraftError(f"draft #{d.id} is {d.status}: only a draft or a submitted draft can be published")
    if actor.role not in PUBLISH_ROLES:
        raise DraftPermissionError(f"a {actor.role} may not publish boundary drafts "
                                   f"(allowed: {', '.join(PUBLISH_ROLES)})")
    state = DraftState(session, d)
    require_may_edit(session, actor, state, publish=True)  # before anything is written
    touched = state.touched()
    if not touched:
        raise DraftError(f"draft #{d.id} changes nothing")
    state.preload()
    v = d.version if expected_version is None else expected_version
    # (1) claim the draft: two publishers of the same draft cannot both pass
    n = session.execute(update(BoundaryDraft).where(BoundaryDraft.id == d.id, BoundaryDraft.version == v,
                                                    BoundaryDraft.status.in_(("draft", "submitted")))
                        .values(status="published", version=v + 1, published_by=actor.name,
                                published_by_user_id=actor.user_id, published_at=now, updated_at=now,
                                reason=(reason or "").strip() or None)
                        .execution_options(synchronize_session=False)).rowcount
    if n != 1:
        raise ConflictError(f"draft #{d.id} was changed or published meanwhile; reload it",
                            [{"draft": d.id, "expected_version": v}])

    # (2) close the versions the draft was based on, atomically
    expected = {r.geometry_id: c for c, r in touched.items() if r.geometry_id is not None}
    closed = 0
    for chunk in chunks(sorted(expected)):
        closed += session.execute(update(AreaGeometry).where(AreaGeometry.id.in_(chunk),
                                                             AreaGeometry.valid_to.is_(None))
                                  .values(valid_to=now).execution_options(synchronize_session=False)).rowcount
    if closed != len(expected):
        raise ConflictError(*_conflict(session, expected, now, d.id))

    # (3) the guarantees, on the state as it will be stored
    problems = [p for p in check_state(state, tolerance_m=tolerance_m) if p.kind != "stale"]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DraftProblemsError(f"draft #{d.id} cannot be published: {len(errors)} errors, first: "
                                 f"{errors[0].message}", errors)
    rep = PublishReport(d.id, now, warnings=[p for p in problems if p.severity == "warning"])
    moves = case_relocation(session, state, snap_m=snap_m)  # before ids change hands
    inherit_src = {c: inherit_from(state, r) for c, r in touched.items()
                   if r.level == "cell" and r.action == "create"}

    # (4) areas and geometry versions
    ids = {}
    for lvl in LEVELS:
        for c, r in sorted(touched.items()):
            if r.level == lvl and r.action == "create":
                pid = ids.get(r.parent_code) or state.recs[r.parent_code].id if r.parent_code else None
                a = Area(level=r.level, code=r.code, name=r.name, parent_id=pid, kind=r.kind,
                         households=r.households, population=r.population, created_at=now)
                session.add(a)
                session.flush()
                r.id = ids[c] = a.id
                rep.created += 1
    parent_ids = {c: (ids.get(c) or (state.recs[c].id if c in state.recs else None)) for c in
                  {r.parent_code for r in touched.values() if r.parent_code}}
    for c, r in touched.items():
        if r.action == "change":
            session.execute(update(Area).where(Area.id == r.id).values(
                name=r.name, kind=r.kind, households=r.households, population=r.population,
                parent_id=parent_ids.get(r.parent_code)).execution_options(synchronize_session=False))
            rep.changed += 1
        elif r.action == "retire":
            session.execute(update(Area).where(Area.id == r.id).values(retired_at=now)
                            .execution_options(synchronize_session=False))
            rep.retired += 1
    active = [r for r in touched.values() if r.active]
    if active:
        areas = measure.areas_m2(np.array([r.geom for r in active], dtype=object))
        session.execute(insert(AreaGeometry.__table__), [
            {"area_id": r.id, "version": (r.version or 0) + 1 if r.action == "change" else 1,
             "geom": from_shape(r.geom, srid=4326), "area_m2": float(a), "valid_from": now, "valid_to": None}
            for r, a in zip(active, areas)])

    # workers: created cells inherit, retired cells' responsibilities end
    today = local_today(now)
    if inherit_workers and inherit_src:
        src_ids = sorted({b.id for b in inherit_src.values() if b is not None})
        resp = current_responsibilities(session, src_ids, today)
        rows = []
        for c, b in inherit_src.items():
            if b is None:
                continue
            for rr, w in resp.get(b.id, []):
                rows.append({"worker_id": w.id, "cell_id": touched[c].id, "role": rr.role, "valid_from": today,
                             "valid_to": None})
        if rows:
            session.execute(insert(Responsibility.__table__), rows)
            rep.responsibilities_inherited = len(rows)
    retired_ids = [r.id for r in touched.values() if r.level == "cell" and r.action == "retire"]
    for chunk in chunks(retired_ids):
        rep.responsibilities_closed += session.execute(
            update(Responsibility).where(Responsibility.cell_id.in_(chunk),
                                         or_(Responsibility.valid_to.is_(None), Responsibility.valid_to > today))
            .values(valid_to=today).execution_options(synchronize_session=False)).rowcount
    session.flush()

    # (5) open cases follow their point
    if moves:
        _reroute(session, state, moves, actor, d, now, rep, route, Case, CaseEvent, Category)
    store_problems(d, problems)
    session.execute(update(BoundaryDraft).where(BoundaryDraft.id == d.id).values(problems=d.problems)
                    .execution_options(synchronize_session=False))
    session.expire(d)
    return rep


def _hierarchy_ids(state: DraftState, code: str) -> dict[str, int | None]:
    rec = state.recs[code]
    out = {"cell": rec.id, "community": None, "street": None, "district": None}
    for a in state.ancestors(rec):
        out[a.level] = a.id
    return out


def _reroute(session, state, moves, actor, d, now, rep, route, Case, CaseEvent, Category) -> None:
    cats = {c.id: c for c in session.scalars(select(Category).where(
        Category.id.in_({m["category_id"] for m in moves})))}
    comment = f"boundary change draft #{d.id}"
    groups: dict[tuple, list[dict]] = {}
    routes: dict[tuple, Any] = {}
    for m in moves:
        hier = _hierarchy_ids(state, m["new_cell"])
        if m["cell_changed"]:
            cat = cats.get(m["category_id"])
            dep = cat.id if cat is not None and cat.department_id is not None else None
            key = (hier["cell"], dep)
            if key not in routes:
                routes[key] = route(session, cell_id=hier["cell"], category=cat if dep else None, at=now)
            groups.setdefault(("reroute",) + key, []).append(m)
        else:
            groups.setdefault(("hierarchy", hier["cell"], None), []).append(m)
    open_ = Case.status.not_in(CLOSED_CASE_STATUSES)
    rerouted: dict[int, tuple] = {}
    for gkey, ms in groups.items():
        kind, cell_id, dep = gkey
        code = next(iter(ms))["new_cell"]
        hier = _hierarchy_ids(state, code)
        values = {"cell_id": hier["cell"], "community_id": hier["community"], "street_id": hier["street"],
                  "district_id": hier["district"], "updated_at": now, "version": Case.version + 1}
        if kind == "reroute":
            rt = routes[(cell_id, dep)]
            values.update(assignee_worker_id=rt.worker_id, assignee_department_id=rt.department_id,
                          assignee_level=rt.level, route_reason=rt.reason)
        for chunk in chunks([m["case_id"] for m in ms]):
            done = session.execute(update(Case).where(Case.id.in_(chunk), open_).values(**values)
                                   .returning(Case.id).execution_options(synchronize_session=False)).scalars().all()
            if kind == "reroute":
                rt = routes[(cell_id, dep)]
                for cid in done:
                    rerouted[cid] = (rt, code)
            else:
                rep.cases_updated += len(done)
    if not rerouted:
        return
    rep.cases_rerouted = len(rerouted)
    seqs: dict[int, int] = {}
    for chunk in chunks(sorted(rerouted)):
        seqs.update(dict(session.execute(select(CaseEvent.case_id, func.max(CaseEvent.seq))
                                         .where(CaseEvent.case_id.in_(chunk)).group_by(CaseEvent.case_id)).all()))
    by_case = {m["case_id"]: m for m in moves}
    rows = []
    for cid, (rt, code) in rerouted.items():
        m = by_case[cid]
        data = {"draft": d.id, "from_cell": m["old_cell"], "to_cell": code,
                "from_worker_id": m["old_worker_id"], "from_department_id": m["old_department_id"],
                "worker_id": rt.worker_id, "department_id": rt.department_id, "level": rt.level,
                "reason": rt.reason}
        rows.append({"case_id": cid, "seq": (seqs.get(cid) or 0) + 1, "action": "reroute",
                     "from_status": m["status"], "to_status": m["status"], "at": now,
                     "actor_user_id": actor.user_id, "actor_worker_id": actor.worker_id, "actor_name": actor.name,
                     "comment": comment, "lon": m["lon"], "lat": m["lat"],
                     "data": json.dumps(data, ensure_ascii=False)})
    _bulk_insert(session, CaseEvent.__table__, rows)


def _bulk_insert(session: Session, table, rows: list[dict]) -> None:
    """Insert many rows at once: COPY on PostgreSQL (10,000 history rows in ~0.1 s instead of
    ~0.8 s through executemany), a plain executemany elsewhere."""
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        cols = list(rows[0])
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row([r[c] for c in cols])
        return
    for chunk in chunks(rows, 5000):
        session.execute(insert(table), chunk)


def _conflict(session: Session, expected: dict[int, str], now: dt.datetime, draft_id: int) -> tuple[str, list[dict]]:
    """The message and differences for base versions that are no longer current."""
    stale = []
    for chunk in chunks(sorted(expected)):
        for gid, aid, ver, vto in session.execute(select(AreaGeometry.id, AreaGeometry.area_id, AreaGeometry.version,
                                                         AreaGeometry.valid_to).where(AreaGeometry.id.in_(chunk))):
            if vto is not None and vto != now:
                stale.append((gid, aid, ver, vto))
    missing = set(expected) - {s[0] for s in stale}
    diffs = []
    for gid, aid, ver, vto in stale:
        cur = session.execute(select(AreaGeometry.id, AreaGeometry.version, AreaGeometry.valid_from)
                              .where(AreaGeometry.area_id == aid, AreaGeometry.valid_to.is_(None))).first()
        by = session.execute(select(BoundaryDraft.id, BoundaryDraft.published_by)
                             .join(BoundaryDraftArea, BoundaryDraftArea.draft_id == BoundaryDraft.id)
                             .where(BoundaryDraftArea.area_id == aid, BoundaryDraft.status == "published",
                                    BoundaryDraft.id != draft_id)
                             .order_by(BoundaryDraft.published_at.desc())).first()
        diffs.append({"code": expected[gid], "expected_version": ver, "expected_geometry_id": gid,
                      "current_version": cur.version if cur else None,
                      "current_geometry_id": cur.id if cur else None,
                      "changed_at": vto.isoformat(), "retired": cur is None,
                      "by_draft": by.id if by else None, "by": by.published_by if by else None})
    for gid in missing:
        diffs.append({"code": expected[gid], "expected_geometry_id": gid, "current_geometry_id": None})
    diffs.sort(key=lambda x: x["code"])
    parts = []
    for x in diffs[:10]:
        what = f"{x['code']} v{x.get('expected_version')}→" + (
            "retired" if x.get("retired") else f"v{x.get('current_version')}")
        if x.get("by_draft"):
            what += f" (draft #{x['by_draft']} by {x['by']})"
        parts.append(what)
    msg = (f"draft #{draft_id} conflicts with changes published after it started: {', '.join(parts)}"
           f"{' …' if len(diffs) > 10 else ''}. Nothing was written; the draft is kept: redo the affected "
           f"part on the current boundaries")
    return msg, diffs
