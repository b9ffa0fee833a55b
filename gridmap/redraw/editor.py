"""The editor that operations write a draft through.

Owns: :class:`Editor` (the draft state being changed: set, create and retire areas, allocate new
codes with ``GRIDMAP_CELL_CODE_FORMAT`` and the community ranges, never a code that ever existed;
re-node and re-check what changed, then save), :func:`new_draft`, :func:`editing` (open or extend
a draft with its version checked, log the operation, refuse results with errors) and the options
every operation shares.
"""
from __future__ import annotations

import copy
import json
from contextlib import contextmanager

import numpy as np
import shapely
import shapely.errors
import shapely.ops
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from gridmap.accounts.actor import Actor
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.geo import measure
from gridmap.geo.shapes import as_multi, metric_epsg
from gridmap.redraw.checks import check_state
from gridmap.redraw.models import (
    DEFAULT_TOLERANCE_M,
    DRAFT_ROLES,
    BoundaryDraft,
    BoundaryDraftArea,
)
from gridmap.redraw.noding import node_coverage, reallocate, same_shape
from gridmap.redraw.problems import (
    ConflictError,
    DraftPermissionError,
    DraftProblem,
    RedrawError,
)
from gridmap.redraw.state import AreaRec, DraftState
from gridmap.redraw.workflow import require_may_edit, save_state, visible_draft

DEFAULT_CODE_FORMAT = "{community}{seq:03d}"


#: community codes: residents' committees 001–199, village committees 200–399
COMMUNITY_SEQ = {"residents": (1, 199), "village": (200, 399)}


class Editor:
    """One operation on a draft: the state, code allocation, and finishing (node, re-allocate,
    save, check, log)."""

    def __init__(self, session: Session, actor: Actor, draft: BoundaryDraft, state: DraftState,
                 tolerance_m: float, code_format: str, expected_version: int):
        self.session, self.actor, self.draft, self.state = session, actor, draft, state
        self.tol = float(tolerance_m)
        self.code_format = code_format or DEFAULT_CODE_FORMAT
        self.expected_version = expected_version
        self.problems: list[DraftProblem] = []
        self._allocated: set[str] = set()
        self._changed_levels: set[str] = set()
        self._frames: dict[str, list] = {}

    # -- area records -------------------------------------------------------------------
    def change(self, rec: AreaRec, geom, **attrs) -> AreaRec:
        """Record a new geometry (and attributes) for an existing or created area."""
        new = copy.copy(rec)
        new.geom = as_multi(geom)
        for k, v in attrs.items():
            setattr(new, k, v)
        self._note_frame(rec)
        if new.geom is None:
            self.state.retire(rec)
        else:
            self.state.put(new)
        self._changed_levels.add(rec.level)
        return new

    def retire(self, rec: AreaRec) -> None:
        self._note_frame(rec)
        self.state.retire(rec)
        self._changed_levels.add(rec.level)

    def create(self, level: str, parent: AreaRec, geom, *, name: str | None = None, kind: str | None = None,
               code: str | None = None, households=None, population=None, fixed_figures=False) -> AreaRec:
        code = code or self.new_code(parent, level, kind)
        if name is None:
            seq = code[len(parent.code):].lstrip("0") or "0"
            name = f"{parent.name}第{seq}网格" if level == "cell" else f"{parent.name}{seq}"
        rec = AreaRec(level, code, name, parent.code, kind or ("base" if level == "cell" else "residents"),
                      households, population, as_multi(geom), fixed_figures=fixed_figures)
        self.state.put(rec)
        self._changed_levels.add(level)
        return rec

    def _note_frame(self, rec: AreaRec) -> None:
        base = self.state.base_rec(rec.code) or rec
        if base.geom is not None:
            self._frames.setdefault(rec.level, []).append(base.geom)

    # -- codes ------------------------------------------------------------------------------
    def new_code(self, parent: AreaRec, level: str, kind: str | None = None) -> str:
        """The next code under ``parent`` that never existed (stored areas, retired ones, and
        codes any draft ever proposed)."""
        prefix = parent.code
        used = set(self.session.scalars(select(Area.code).where(Area.code.like(f"{prefix}%"))))
        used |= set(self.session.scalars(select(BoundaryDraftArea.code)
                                         .where(BoundaryDraftArea.code.like(f"{prefix}%"))))
        used |= {c for c in self.state.recs if c.startswith(prefix)} | self._allocated
        if level == "cell":
            seqs = [int(c[len(prefix):]) for c in used if c[len(prefix):].isdigit()]
            k = max(seqs, default=0) + 1
            while True:
                try:
                    code = self.code_format.format(community=prefix, seq=k)
                except (KeyError, IndexError, ValueError) as e:
                    raise RedrawError(f"GRIDMAP_CELL_CODE_FORMAT {self.code_format!r} is not usable: {e}; it "
                                      f"may use {{community}} and {{seq}}") from None
                if code not in used:
                    break
                k += 1
        else:
            lo, hi = COMMUNITY_SEQ.get(kind or "residents", (1, 199)) if level == "community" else (1, 999)
            seqs = [int(c[len(prefix):]) for c in used if c[len(prefix):].isdigit()
                    and lo <= int(c[len(prefix):]) <= hi and len(c) == len(prefix) + 3]
            k = max(seqs, default=lo - 1) + 1
            while f"{prefix}{k:03d}" in used:
                k += 1
            if k > hi:
                raise RedrawError(f"no free {level} code left under {prefix} in {lo:03d}–{hi:03d}")
            code = f"{prefix}{k:03d}"
        self._allocated.add(code)
        return code

    def check_code(self, code: str) -> None:
        row = self.session.execute(select(Area.level, Area.retired_at).where(Area.code == code)).first()
        if row is not None:
            what = f"retired {row.retired_at.date().isoformat()}" if row.retired_at else "in use"
            raise RedrawError(f"code {code} already belongs to a {row.level} ({what}); codes are never reused")
        if code in self.state.recs or code in self._allocated:
            raise RedrawError(f"code {code} is already used in this draft")
        self._allocated.add(code)

    # -- finishing ---------------------------------------------------------------------------
    def finish(self, op: str, args: dict) -> None:
        state = self.state
        for level in ("district", "street", "community", "cell"):
            if level not in self._changed_levels:
                continue
            touched = [r for r in state.touched().values() if r.level == level]
            active = [r for r in touched if r.active]
            region = [r.geom for r in active] + self._frames.get(level, [])
            if not region:
                continue
            zone = shapely.union_all(np.array(region, dtype=object))
            nbrs = [r for r in state.near(level, zone) if r.action == "current"]
            frame = shapely.union_all(np.array(self._frames.get(level, []) + [r.geom for r in nbrs], dtype=object))
            targets = [copy.copy(r) for r in active] + [copy.copy(r) for r in nbrs]
            self.problems.extend(node_coverage(targets, frame, self.tol, fixed=[r.code for r in nbrs]))
            for t in targets:
                orig = state.recs.get(t.code)
                base = state.base_rec(t.code)
                if base is not None and same_shape(t.geom, base.geom) and orig is not None and \
                        orig.parent_code == base.parent_code and orig.name == base.name and \
                        orig.kind == base.kind and (not orig.fixed_figures or (
                            orig.households == base.households and orig.population == base.population)):
                    self._revert(t.code)
                    continue
                if orig is not None and same_shape(t.geom, orig.geom):
                    continue
                if t.geom is None:
                    state.retire(orig)
                else:
                    state.put(t)
        for level in ("district", "street", "community", "cell"):
            if level in self._changed_levels:
                recs = [r.geom for r in state.touched().values() if r.level == level and r.geom is not None]
                if recs:
                    reallocate(state, level, metric_epsg(recs))
        require_may_edit(self.session, self.actor, state)
        save_state(self.session, self.draft, state)
        problems = check_state(state, tolerance_m=self.tol)
        seen = {(p.kind, p.codes) for p in problems}
        problems += [p for p in self.problems if (p.kind, p.codes) not in seen]
        problems.sort(key=lambda p: 0 if p.severity == "error" else 1)
        self.problems = problems
        ops = json.loads(self.draft.operations or "[]")
        ops.append({"op": op, "args": args, "by": self.actor.name, "at": utcnow().isoformat()})
        values = {"operations": json.dumps(ops, ensure_ascii=False),
                  "problems": json.dumps([p.as_dict() for p in problems], ensure_ascii=False),
                  "scope_area_id": self.draft.scope_area_id, "updated_at": utcnow(),
                  "version": self.expected_version + 1}
        n = self.session.execute(update(BoundaryDraft).where(BoundaryDraft.id == self.draft.id,
                                                             BoundaryDraft.version == self.expected_version,
                                                             BoundaryDraft.status == "draft")
                                 .values(**values).execution_options(synchronize_session=False)).rowcount
        if n != 1:
            raise ConflictError(f"draft #{self.draft.id} was changed by someone else meanwhile; reload it and "
                                f"redo this operation", [{"draft": self.draft.id,
                                                          "expected_version": self.expected_version}])

        for k, v in values.items():
            set_committed_value(self.draft, k, v)

    def _revert(self, code: str) -> None:
        state = self.state
        base = state.base.pop(code, None)
        if base is None:
            return
        cur = state.recs.get(code)
        if cur is not None and cur.level == "cell" and cur.parent_code != base.parent_code:
            lst = state._cells_of.get(cur.parent_code, [])
            if code in lst:
                lst.remove(code)
        state.recs[code] = base
        if base.level == "cell":
            state._cells_of.setdefault(base.parent_code, [])
            if code not in state._cells_of[base.parent_code]:
                state._cells_of[base.parent_code].append(code)
        state._upper_tree.pop(base.level, None)


def new_draft(session: Session, actor: Actor, title: str) -> BoundaryDraft:
    if actor.role not in DRAFT_ROLES:
        raise DraftPermissionError(f"a {actor.role} may not draft boundary changes "
                                   f"(allowed: {', '.join(DRAFT_ROLES)})")
    now = utcnow()
    d = BoundaryDraft(title=(title or "boundary change")[:200], status="draft", created_by=actor.name,
                      created_by_user_id=actor.user_id, created_at=now, updated_at=now, version=1,
                      operations="[]", problems="[]")
    session.add(d)
    session.flush()
    return d


@contextmanager
def editing(session: Session, actor: Actor, draft_id: int | None, op: str, args: dict, *, title: str | None,
             tolerance_m: float, code_format: str | None, expected_version: int | None = None):
    if actor.role not in DRAFT_ROLES:
        raise DraftPermissionError(f"a {actor.role} may not draft boundary changes "
                                   f"(allowed: {', '.join(DRAFT_ROLES)})")
    if draft_id is None:
        draft = new_draft(session, actor, title or op)
    else:
        draft = visible_draft(session, actor, draft_id)
        if draft.status != "draft":
            raise RedrawError(f"draft #{draft.id} is {draft.status}: only a draft can be edited")
    v = draft.version if expected_version is None else expected_version
    ed = Editor(session, actor, draft, DraftState(session, draft), tolerance_m, code_format or DEFAULT_CODE_FORMAT, v)
    yield ed
    ed.finish(op, args)


def common_options(tolerance_m, code_format, draft_id, title, expected_version):
    return dict(title=title, tolerance_m=DEFAULT_TOLERANCE_M if tolerance_m is None else tolerance_m,
                code_format=code_format, expected_version=expected_version)


def to_metric_array(geoms, epsg):
    return measure.to_metric(np.array(geoms, dtype=object), epsg)
