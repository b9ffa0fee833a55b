"""The life of a draft apart from its geometry: loading, listing, scope, submit and reject.

Owns: who may edit or publish a draft (street, district, city and admin users within their scope;
district and above publish), :func:`load_draft`, :func:`visible_draft`, :func:`list_drafts`,
:func:`draft_summary`, :func:`save_state` (writes a :class:`DraftState` back to the draft rows),
:func:`submit_draft` and :func:`reject_draft` with optimistic locking on the draft's version.
"""
from __future__ import annotations

import json

from geoalchemy2.shape import from_shape
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from gridmap.accounts.actor import Actor
from gridmap.accounts.scope import area_ids_in_scope
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.redraw.checks import check_state
from gridmap.redraw.models import (
    DRAFT_ROLES,
    PUBLISH_ROLES,
    BoundaryDraft,
    BoundaryDraftArea,
)
from gridmap.redraw.problems import (
    ConflictError,
    DraftError,
    DraftNotFound,
    DraftPermissionError,
    DraftProblem,
    DraftProblemsError,
)
from gridmap.redraw.state import DraftState, vertices_only


def load_draft(session: Session, draft_id: int) -> BoundaryDraft:
    q = select(BoundaryDraft).where(BoundaryDraft.id == draft_id)
    d = session.scalar(q)
    if d is None:
        raise DraftNotFound(f"no draft #{draft_id}")
    return d


def editable_area_ids(session: Session, actor: Actor) -> set[int] | None:
    """Areas the actor may redraw: the subtree of their area (not its ancestors); None: all."""

    if actor.role in ("city", "admin", "system"):
        return None
    if actor.role not in DRAFT_ROLES or actor.area_id is None:
        return set()
    seen = area_ids_in_scope(session, actor)
    if seen is None:
        return None
    ids = {actor.area_id}
    frontier = {actor.area_id}
    while frontier:
        frontier = set(session.scalars(select(Area.id).where(Area.parent_id.in_(frontier)))) - ids
        ids |= frontier
    return ids & seen


def require_may_edit(session: Session, actor: Actor, state: DraftState, *, publish: bool = False) -> None:
    roles = PUBLISH_ROLES if publish else DRAFT_ROLES
    verb = "publish or reject boundary drafts" if publish else "draft boundary changes"
    if actor.role not in roles:
        raise DraftPermissionError(f"a {actor.role} may not {verb} (allowed: {', '.join(roles)})")
    allowed = editable_area_ids(session, actor)
    if allowed is None:
        return
    bad = []
    for code, rec in state.touched().items():
        if vertices_only(rec, state.base.get(code)):
            continue  # only vertices added where a neighbour's edge was cut: not a change of shape
        ids = [rec.id] if rec.id is not None else []
        if rec.id is None:  # created: its parent must be in scope
            p = state.recs.get(rec.parent_code)
            ids = [p.id] if p is not None and p.id is not None else [
                a.id for a in state.ancestors(rec) if a.id is not None][:1]
        if not ids or any(i not in allowed for i in ids):
            bad.append(code)
    if bad:
        raise DraftPermissionError(f"outside your area: {', '.join(sorted(bad)[:10])}"
                                   f"{' …' if len(bad) > 10 else ''}")


def draft_problems(draft: BoundaryDraft) -> list[DraftProblem]:
    return [DraftProblem.from_dict(d) for d in json.loads(draft.problems or "[]")]


def draft_areas(session: Session, draft_id: int) -> list[BoundaryDraftArea]:
    return list(session.scalars(select(BoundaryDraftArea).where(BoundaryDraftArea.draft_id == draft_id)
                                .order_by(BoundaryDraftArea.level, BoundaryDraftArea.code)))


def draft_summary(session: Session, draft: BoundaryDraft) -> dict:
    counts: dict[str, dict[str, int]] = {}
    for level, action, n in session.execute(
            select(BoundaryDraftArea.level, BoundaryDraftArea.action, func.count())
            .where(BoundaryDraftArea.draft_id == draft.id)
            .group_by(BoundaryDraftArea.level, BoundaryDraftArea.action)):
        counts.setdefault(level, {})[action] = n
    probs = draft_problems(draft)
    return {"id": draft.id, "title": draft.title, "status": draft.status, "version": draft.version,
            "created_by": draft.created_by, "created_at": _iso(draft.created_at),
            "updated_at": _iso(draft.updated_at), "submitted_by": draft.submitted_by,
            "submitted_at": _iso(draft.submitted_at), "published_by": draft.published_by,
            "published_at": _iso(draft.published_at), "rejected_by": draft.rejected_by,
            "rejected_at": _iso(draft.rejected_at), "reason": draft.reason,
            "scope": session.scalar(select(Area.code).where(Area.id == draft.scope_area_id))
            if draft.scope_area_id else None,
            "changes": counts, "errors": sum(p.severity == "error" for p in probs),
            "warnings": sum(p.severity == "warning" for p in probs),
            "operations": json.loads(draft.operations or "[]")}


def _iso(t):
    return t.isoformat() if t else None


def list_drafts(session: Session, actor: Actor, status: str | None = None) -> list[BoundaryDraft]:
    q = select(BoundaryDraft).order_by(BoundaryDraft.id.desc())
    if status:
        q = q.where(BoundaryDraft.status == status)
    allowed = editable_area_ids(session, actor)
    drafts = list(session.scalars(q))
    if allowed is None:
        return drafts
    return [d for d in drafts if (d.scope_area_id in allowed)
            or (actor.user_id is not None and d.created_by_user_id == actor.user_id)]


def visible_draft(session: Session, actor: Actor, draft_id: int) -> BoundaryDraft:
    d = load_draft(session, draft_id)
    allowed = editable_area_ids(session, actor)
    if allowed is not None and d.scope_area_id not in allowed and not (
            actor.user_id is not None and d.created_by_user_id == actor.user_id):
        raise DraftNotFound(f"no draft #{draft_id}")
    return d


def save_state(session: Session, draft: BoundaryDraft, state: DraftState) -> None:
    """Write the draft's rows to match ``state`` (rows for areas back to their stored form go)."""
    existing = {r.code: r for r in session.scalars(select(BoundaryDraftArea)
                                                   .where(BoundaryDraftArea.draft_id == draft.id))}
    touched = state.touched()
    for code, row in existing.items():
        if code not in touched:
            session.delete(row)
    for code, rec in touched.items():
        row = existing.get(code)
        if row is None:
            row = BoundaryDraftArea(draft_id=draft.id, code=code)
            session.add(row)
            b = state.base.get(code)
            row.base_geometry_id = b.geometry_id if b is not None else None
            row.base_version = b.version if b is not None else None
        row.area_id = rec.id
        row.action = rec.action
        row.level = rec.level
        row.name = rec.name
        row.parent_code = rec.parent_code
        row.kind = rec.kind
        row.households = rec.households
        row.population = rec.population
        row.geom = from_shape(rec.geom, srid=4326) if rec.geom is not None else None
        row.sources = json.dumps([[c, round(float(s), 6)] for c, s in rec.sources]) if rec.sources else None
        row.fixed_figures = 1 if rec.fixed_figures else 0
    session.flush()
    # the smallest area holding everything touched
    chains = []
    for rec in touched.values():
        if vertices_only(rec, state.base.get(rec.code)):
            continue
        chain = [rec.code] if rec.id is not None else []
        chain += [a.code for a in state.ancestors(rec)]
        b = state.base.get(rec.code)
        if b is not None and b.parent_code != rec.parent_code:
            chain_b = [b.code] + [a.code for a in state.ancestors(b)]
            chains.append(list(reversed(chain_b)))
        chains.append(list(reversed(chain)))
    common = None
    if chains:
        common_path = chains[0]
        for ch in chains[1:]:
            k = 0
            while k < min(len(common_path), len(ch)) and common_path[k] == ch[k]:
                k += 1
            common_path = common_path[:k]
        # a draft never 'owns' a single cell's scope: use its community at least
        while common_path and state.recs.get(common_path[-1]) is not None and \
                state.recs[common_path[-1]].level == "cell":
            common_path = common_path[:-1]
        common = common_path[-1] if common_path else None
    draft.scope_area_id = state.recs[common].id if common and common in state.recs else None


def submit_draft(session: Session, draft_id: int, actor: Actor, *, expected_version: int | None = None) -> BoundaryDraft:
    """draft → submitted (for a district/city to publish). Blocked while the draft has errors."""
    d = visible_draft(session, actor, draft_id)
    state = DraftState(session, d)
    require_may_edit(session, actor, state)
    if d.status != "draft":
        raise DraftError(f"draft #{d.id} is {d.status}, not draft: only a draft can be submitted")
    if not state.touched():
        raise DraftError(f"draft #{d.id} changes nothing")
    problems = check_state(state)
    errors = [p for p in problems if p.severity == "error"]
    store_problems(d, problems)
    if errors:
        raise DraftProblemsError(f"draft #{d.id} has {len(errors)} errors: {errors[0].message}", errors)
    _bump(session, d, expected_version, status="submitted", submitted_by=actor.name, submitted_at=utcnow())
    return d


def reject_draft(session: Session, draft_id: int, actor: Actor, reason: str, *,
                 expected_version: int | None = None) -> BoundaryDraft:
    """draft/submitted → rejected, with the reason. Nothing is written to the boundaries."""
    if not (reason or "").strip():
        raise DraftError("a rejection needs a reason")
    d = visible_draft(session, actor, draft_id)
    state = DraftState(session, d)
    require_may_edit(session, actor, state, publish=True)
    if d.status not in ("draft", "submitted"):
        raise DraftError(f"draft #{d.id} is {d.status}: it cannot be rejected")
    _bump(session, d, expected_version, status="rejected", rejected_by=actor.name, rejected_at=utcnow(),
          reason=reason.strip())
    return d


def store_problems(d: BoundaryDraft, problems: list[DraftProblem]) -> None:
    d.problems = json.dumps([p.as_dict() for p in problems], ensure_ascii=False)


def _bump(session: Session, d: BoundaryDraft, expected_version: int | None, **values) -> None:
    """Atomically move the draft on: the update hits only the version we read."""
    v = d.version if expected_version is None else expected_version
    values = {**values, "version": v + 1, "updated_at": utcnow()}
    if d.problems is not None:
        values["problems"] = d.problems
    n = session.execute(update(BoundaryDraft).where(BoundaryDraft.id == d.id, BoundaryDraft.version == v,
                                                    BoundaryDraft.status.in_(("draft", "submitted")))
                        .values(**values).execution_options(synchronize_session=False)).rowcount
    if n != 1:
        session.expire(d)
        raise ConflictError(f"draft #{d.id} was changed meanwhile (now version {d.version}, {d.status}); "
                            f"reload it", [{"draft": d.id, "expected_version": v, "version": d.version,
                                            "status": d.status}])
    for k, val in values.items():
        set_committed_value(d, k, val)
