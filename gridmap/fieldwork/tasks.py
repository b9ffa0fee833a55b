"""Today's tasks of a grid worker: one list of what is hers to do, nearest deadline first.

Owns: :func:`tasks_for`. The list is read, never stored: every task is a row that already exists
(a case assigned to her, an inspection task due, a hazard awaiting her rectification or her
re-check), so a task disappears by itself when the work is done and nothing is typed twice.

Kinds (``kind``):
* ``case``: her open cases (dispatched: to accept; in progress: to handle);
* ``rework``: her cases sent back after a failed check (返工);
* ``mediation``: her dispute cases (矛盾纠纷) in progress;
* ``inspection``: inspection tasks due to her today or earlier and not done;
* ``hazard_rectify``: hazards she is responsible for, waiting for rectification (待整改);
* ``hazard_recheck``: hazards of her cells rectified by someone else, waiting for a re-check.

``overdue``: the deadline has passed; ``due_soon``: it falls within ``due_soon_hours`` (default
GRIDMAP_DUE_SOON_HOURS, 24).
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.accounts.scope import worker_cell_ids
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.hazards.models import Hazard, HazardEvent, HazardType, InspectionTask
from gridmap.incidents.models import Case, Category

KINDS = ("case", "rework", "mediation", "inspection", "hazard_rectify", "hazard_recheck")
OPEN_CASE_STATUSES = ("dispatched", "in_progress")
DEFAULT_DUE_SOON_HOURS = 24
#: the category codes whose cases are disputes (矛盾纠纷)
DISPUTE_PREFIX = "dispute"


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    if t is not None and t.tzinfo is None:
        return t.replace(tzinfo=dt.timezone.utc)
    return t


def _task(kind: str, ref_id: int, title: str, *, status: str, due_at: dt.datetime | None, now: dt.datetime,
          due_soon_hours: float, url: str, cell: str | None, number: str | None = None) -> dict:
    due_at = _aware(due_at)
    overdue = due_at is not None and due_at < now
    soon = due_at is not None and not overdue and due_at <= now + dt.timedelta(hours=due_soon_hours)
    return {"kind": kind, "id": ref_id, "number": number, "title": title, "status": status,
            "due_at": due_at.isoformat() if due_at else None, "overdue": overdue, "due_soon": soon,
            "url": url, "cell": cell}


def tasks_for(session: Session, actor: Actor, *, now: dt.datetime | None = None,
              due_soon_hours: float = DEFAULT_DUE_SOON_HOURS, tz: str = "Asia/Shanghai") -> list[dict]:
    """The actor's tasks (empty for an actor who is no worker), overdue first, then by deadline."""
    if actor.worker_id is None:
        return []
    now = now or utcnow()
    wid = actor.worker_id
    today = now.astimezone(ZoneInfo(tz)).date()
    cells = worker_cell_ids(session, wid, today)
    out: list[dict] = []
    kw = dict(now=now, due_soon_hours=due_soon_hours)

    rows = session.execute(
        select(Case, Category.code, Category.name, Area.code)
        .join(Category, Category.id == Case.category_id)
        .outerjoin(Area, Area.id == Case.cell_id)
        .where(Case.assignee_worker_id == wid, Case.status.in_(OPEN_CASE_STATUSES))).all()
    for case, cat_code, cat_name, cell_code in rows:
        if case.rework_count and case.status == "in_progress":
            kind = "rework"
        elif (cat_code or "").startswith(DISPUTE_PREFIX) and case.status == "in_progress":
            kind = "mediation"
        else:
            kind = "case"
        title = case.title or f"{cat_name}：{(case.description or '')[:40]}"
        out.append(_task(kind, case.id, title, status=case.status, due_at=case.deadline_at,
                         url=f"/cases/{case.id}", cell=cell_code, number=case.number, **kw))

    for task, hazard_title, cell_code in session.execute(
            select(InspectionTask, Hazard.title, Area.code)
            .outerjoin(Hazard, Hazard.id == InspectionTask.hazard_id)
            .outerjoin(Area, Area.id == InspectionTask.cell_id)
            .where(InspectionTask.worker_id == wid, InspectionTask.done_at.is_(None),
                   InspectionTask.due_date <= today)):
        due = dt.datetime.combine(task.due_date, dt.time(23, 59, 59), ZoneInfo(tz)).astimezone(dt.timezone.utc)
        title = hazard_title or (task.schedule.title if task.schedule is not None else None) or cell_code or ""
        out.append(_task("inspection", task.id, title, status="due", due_at=due, url="/worker#inspections",
                         cell=cell_code, **kw))

    hazard_rows = session.execute(
        select(Hazard, HazardType.name, Area.code)
        .join(HazardType, HazardType.id == Hazard.type_id)
        .outerjoin(Area, Area.id == Hazard.cell_id)
        .where(or_(and_(Hazard.responsible_worker_id == wid, Hazard.status == "open"),
                   and_(Hazard.cell_id.in_(cells), Hazard.status == "rectified")))).all()
    rectifiers = {}
    rectified_ids = [h.id for h, _, _ in hazard_rows if h.status == "rectified"]
    if rectified_ids:
        for hid, worker_id in session.execute(
                select(HazardEvent.hazard_id, HazardEvent.actor_worker_id)
                .where(HazardEvent.hazard_id.in_(rectified_ids), HazardEvent.action == "rectify")
                .order_by(HazardEvent.hazard_id, HazardEvent.seq)):
            rectifiers[hid] = worker_id  # the last rectify event wins
    for h, type_name, cell_code in hazard_rows:
        if h.status == "open":
            out.append(_task("hazard_rectify", h.id, f"{type_name}：{h.title}", status=h.status,
                             due_at=h.rectify_deadline, url=f"/hazards/{h.id}", cell=cell_code,
                             number=h.number, **kw))
        elif rectifiers.get(h.id) != wid:
            out.append(_task("hazard_recheck", h.id, f"{type_name}：{h.title}", status=h.status, due_at=None,
                             url=f"/hazards/{h.id}", cell=cell_code, number=h.number, **kw))

    # equal deadlines: the newest first, as in her case list
    out.sort(key=lambda t: (not t["overdue"], t["due_at"] is None, t["due_at"] or "", t["kind"], -t["id"]))
    return out


def counts(tasks: list[dict]) -> dict:
    """Per kind, plus overdue and due-soon totals."""
    out = {k: 0 for k in KINDS}
    for t in tasks:
        out[t["kind"]] += 1
    out["total"] = len(tasks)
    out["overdue"] = sum(t["overdue"] for t in tasks)
    out["due_soon"] = sum(t["due_soon"] for t in tasks)
    return out
