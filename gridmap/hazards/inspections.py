"""Recurring inspections (定期巡检) of hazards and cells, and the tasks they put on workers' lists.

Owns: creating a schedule (every ``interval_days`` from ``start_date`` until ``end_date``; a
schedule that makes no sense, a zero or negative interval or an end before the start, is refused
with a message), turning every inspection that has fallen due into a task for the worker on duty
for the cell on that day (``generate_due``: idempotent, each schedule and due date at most once,
enforced by a unique key, so two runs at once cannot double a task), listing tasks within the
reader's scope, and recording a task as done with its result (ok / issue / absent).

The first run for a schedule starts at its most recent due date (a schedule entered today that
"started" a year ago does not flood a worker with a year of missed tasks); later runs fill in every
due date after the last generated one, so missed inspections stay visible as overdue tasks.
Schedules of closed hazards generate nothing more. Dates are Asia/Shanghai calendar dates.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.hazards.models import TASK_RESULTS, Hazard, HazardType, InspectionSchedule, InspectionTask
from gridmap.hazards.service import SUPERVISOR_ROLES, HazardError, hazard_filter
from gridmap.timebounds import OutOfRange, parse_day

TIMEZONE = ZoneInfo("Asia/Shanghai")
#: the time of day a due inspection is assigned for (who is on duty then gets it)
DUE_TIME = dt.time(9, 0)
MAX_INTERVAL_DAYS = 3660
#: at most this many occurrences of one schedule are generated in one run
MAX_PER_RUN = 400


class InspectionError(HazardError):
    """A refused schedule or task action (``field``, ``message``, HTTP ``status``)."""


def _local_today(now: dt.datetime) -> dt.date:
    return now.astimezone(TIMEZONE).date()


def _as_date(value, field_name: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(TIMEZONE).date()
    if isinstance(value, dt.date):
        return value
    try:
        return parse_day(value, field_name)
    except OutOfRange as e:
        raise InspectionError(field_name, str(e), 400) from None
    except ValueError:
        raise InspectionError(field_name, f"{field_name} must be a date YYYY-MM-DD, got {str(value)[:40]!r}",
                              400) from None


def validate_schedule(interval_days, start_date, end_date) -> tuple[int, dt.date, dt.date | None]:
    """The checked (interval, start, end); InspectionError saying what makes no sense otherwise."""
    if isinstance(interval_days, bool) or interval_days is None:
        raise InspectionError("interval_days", "an inspection schedule needs an interval in days (e.g. 30)", 400)
    try:
        as_float = float(interval_days)
    except (TypeError, ValueError):
        raise InspectionError("interval_days", f"interval_days must be a whole number of days, got "
                                               f"{str(interval_days)[:20]!r}", 400) from None
    if as_float != int(as_float):
        raise InspectionError("interval_days", f"interval_days must be a whole number of days, got {interval_days}",
                              400)
    interval = int(as_float)
    if interval <= 0:
        raise InspectionError("interval_days", f"an inspection every {interval} days makes no sense: the interval "
                                               "must be at least 1 day", 400)
    if interval > MAX_INTERVAL_DAYS:
        raise InspectionError("interval_days", f"interval_days must be at most {MAX_INTERVAL_DAYS}, got {interval}",
                              400)
    start = _as_date(start_date, "start_date")
    if start is None:
        raise InspectionError("start_date", "an inspection schedule needs a start date", 400)
    end = _as_date(end_date, "end_date")
    if end is not None and end < start:
        raise InspectionError("end_date", f"the schedule ends ({end.isoformat()}) before it starts "
                                          f"({start.isoformat()})", 400)
    return interval, start, end


def create_schedule(session: Session, actor: Actor, *, hazard_id: int | None = None, cell_code: str | None = None,
                    interval_days=None, start_date=None, end_date=None, title: str | None = None,
                    now: dt.datetime | None = None) -> InspectionSchedule:
    """A schedule for a hazard (default interval: its type's) or for a whole cell (a patrol)."""
    now = now or utcnow()
    if (hazard_id is None) == (cell_code is None):
        raise InspectionError("target", "a schedule inspects either a hazard or a cell: give exactly one", 400)
    cell_id = None
    if hazard_id is not None:
        h = session.scalar(select(Hazard).where(Hazard.id == hazard_id, hazard_filter(session, actor)))
        if h is None:
            raise InspectionError("hazard", f"no hazard {hazard_id}", 404)
        if h.status == "closed":
            raise InspectionError("hazard", f"hazard {h.number} is closed: it needs no more inspections", 409)
        if interval_days is None:
            interval_days = session.scalar(select(HazardType.inspection_interval_days)
                                           .where(HazardType.id == h.type_id))
        if start_date is None:
            start_date = _local_today(h.found_at)
        title = title or f"巡检 {h.number} {h.title}"
    else:
        from gridmap.accounts.scope import area_ids_in_scope

        cell = session.scalar(select(Area).where(Area.code == str(cell_code).strip(), Area.level == "cell"))
        scope = area_ids_in_scope(session, actor)
        if cell is None or (scope is not None and cell.id not in scope):
            raise InspectionError("cell", f"no cell {str(cell_code).strip()!r}", 404)
        cell_id = cell.id
        title = title or f"巡查 {cell.code} {cell.name}"
    if actor.role not in SUPERVISOR_ROLES:
        raise InspectionError("schedule", "only supervisors (head and up) set inspection schedules", 403)
    interval, start, end = validate_schedule(interval_days, start_date, end_date)
    s = InspectionSchedule(hazard_id=hazard_id, cell_id=cell_id, title=title[:200], interval_days=interval,
                           start_date=start, end_date=end, active=True, created_by=actor.name, created_at=now)
    session.add(s)
    session.flush()
    return s


@dataclass
class GenerateReport:
    today: dt.date
    schedules: int = 0
    created: int = 0
    unassigned: int = 0
    task_ids: list[int] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.created} inspection tasks due by {self.today.isoformat()} created from {self.schedules} "
                f"schedules ({self.unassigned} with nobody on duty: they wait at the community)")


def _insert_ignore(session: Session, rows: list[dict]) -> None:
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(InspectionTask).on_conflict_do_nothing(index_elements=["schedule_id", "due_date"])
    session.execute(stmt, rows)


def generate_due(session: Session, now: dt.datetime | None = None, *, horizon_days: int = 0) -> GenerateReport:
    """Create a task for every inspection due by today (+ ``horizon_days``) that has none yet.

    Idempotent: running it again the same day creates nothing. Each task goes to the worker on
    duty for the cell at DUE_TIME on its due date (``assign.router.responsible_worker``);
    nobody on duty leaves ``worker_id`` empty with the reason.
    """
    from gridmap.assign.router import responsible_worker

    now = now or utcnow()
    if horizon_days < 0:
        raise InspectionError("horizon_days", "horizon_days must be >= 0", 400)
    until = _local_today(now) + dt.timedelta(days=horizon_days)
    rep = GenerateReport(today=until)
    last = (select(InspectionTask.schedule_id, func.max(InspectionTask.due_date).label("last_due"))
            .group_by(InspectionTask.schedule_id).subquery())
    rows = session.execute(
        select(InspectionSchedule, last.c.last_due, Hazard.cell_id.label("hazard_cell"), Hazard.status)
        .outerjoin(last, last.c.schedule_id == InspectionSchedule.id)
        .outerjoin(Hazard, Hazard.id == InspectionSchedule.hazard_id)
        .where(InspectionSchedule.active.is_(True), InspectionSchedule.start_date <= until,
               or_(InspectionSchedule.end_date.is_(None), InspectionSchedule.end_date >= InspectionSchedule.start_date),
               or_(Hazard.id.is_(None), Hazard.status != "closed"))
        .order_by(InspectionSchedule.id)).all()
    who_cache: dict[tuple[int, dt.date], tuple[int | None, str]] = {}
    out: list[dict] = []
    for s, last_due, hazard_cell, _status in rows:
        step = dt.timedelta(days=s.interval_days)
        stop = min(until, s.end_date) if s.end_date else until
        if last_due is not None:
            first = last_due + step
        else:  # first run: the most recent occurrence on or before today, or the start
            k = max(0, (min(_local_today(now), stop) - s.start_date).days // s.interval_days)
            first = s.start_date + k * step
        cell_id = s.cell_id or hazard_cell
        rep.schedules += 1
        d, n = first, 0
        while d <= stop and n < MAX_PER_RUN:
            key = (cell_id, d)
            if cell_id is None:
                who = (None, "the hazard has no cell")
            else:
                if key not in who_cache:
                    w, reason = responsible_worker(session, cell_id, dt.datetime.combine(d, DUE_TIME, TIMEZONE))
                    who_cache[key] = (w.id if w else None, reason[:300])
                who = who_cache[key]
            out.append({"schedule_id": s.id, "hazard_id": s.hazard_id, "cell_id": cell_id, "due_date": d,
                        "worker_id": who[0], "assign_reason": who[1], "created_at": now})
            d += step
            n += 1
    before = session.scalar(select(func.count(InspectionTask.id)))
    _insert_ignore(session, out)
    session.flush()
    after = session.scalar(select(func.count(InspectionTask.id)))
    rep.created = int(after - before)
    if rep.created:
        rep.task_ids = list(session.scalars(select(InspectionTask.id).where(InspectionTask.created_at == now)
                                            .order_by(InspectionTask.id)))
        rep.unassigned = int(session.scalar(select(func.count(InspectionTask.id)).where(
            InspectionTask.created_at == now, InspectionTask.worker_id.is_(None))) or 0)
    return rep


# ----------------------------------------------------------------------------- tasks

def task_filter(session: Session, actor: Actor):
    """Tasks the actor may see: their own and their cells' (a worker), their area's (staff), all (city)."""
    from gridmap.accounts.scope import area_ids_in_scope, worker_cell_ids

    if actor.role in ("city", "admin", "system"):
        return true()
    if actor.role == "worker":
        if actor.worker_id is None:
            return false()
        cells = worker_cell_ids(session, actor.worker_id)
        return or_(InspectionTask.worker_id == actor.worker_id,
                   InspectionTask.cell_id.in_(cells) if cells else false())
    ids = area_ids_in_scope(session, actor)
    return InspectionTask.cell_id.in_(ids) if ids else false()


def list_tasks(session: Session, actor: Actor, *, due_only: bool = False, area_code: str | None = None,
               on: dt.date | None = None, done: bool | None = None, limit: int = 500,
               now: dt.datetime | None = None) -> list[dict]:
    """Tasks in scope; ``due_only``: not done and due on or before ``on`` (default today)."""
    from gridmap.assign.models import Worker

    now = now or utcnow()
    on = on or _local_today(now)
    where = [task_filter(session, actor)]
    if due_only:
        where += [InspectionTask.done_at.is_(None), InspectionTask.due_date <= on]
    if done is not None:
        where.append(InspectionTask.done_at.isnot(None) if done else InspectionTask.done_at.is_(None))
    if area_code:
        a = session.scalar(select(Area).where(Area.code == area_code.strip()))
        if a is None:
            raise InspectionError("area", f"no area with code {area_code.strip()!r}", 400)
        if a.level == "cell":
            where.append(InspectionTask.cell_id == a.id)
        else:
            from gridmap.accounts.scope import area_ids_in_scope

            ids = area_ids_in_scope(session, Actor(name="area", role="street", area_id=a.id))
            where.append(InspectionTask.cell_id.in_(ids))
    cell = Area.__table__.alias("cell")
    rows = session.execute(
        select(InspectionTask, InspectionSchedule.title, cell.c.code.label("cell_code"),
               Worker.code.label("worker_code"), Worker.name.label("worker_name"), Hazard.number.label("hazard_number"))
        .join(InspectionSchedule, InspectionSchedule.id == InspectionTask.schedule_id)
        .outerjoin(cell, cell.c.id == InspectionTask.cell_id)
        .outerjoin(Worker, Worker.id == InspectionTask.worker_id)
        .outerjoin(Hazard, Hazard.id == InspectionTask.hazard_id)
        .where(*where).order_by(InspectionTask.due_date, InspectionTask.id).limit(limit)).all()
    out = []
    for t, title, cell_code, wcode, wname, hnum in rows:
        out.append({"id": t.id, "schedule_id": t.schedule_id, "title": title, "hazard_id": t.hazard_id,
                    "hazard_number": hnum, "cell": cell_code, "due_date": t.due_date.isoformat(),
                    "worker": {"code": wcode, "name": wname} if wcode else None, "assign_reason": t.assign_reason,
                    "overdue": t.done_at is None and t.due_date < on,
                    "done_at": t.done_at.isoformat() if t.done_at else None, "done_by": t.done_by,
                    "result": t.result, "note": t.note})
    return out


def complete_task(session: Session, task_id: int, actor: Actor, *, result: str, note: str | None = None,
                  now: dt.datetime | None = None) -> InspectionTask:
    """Record an inspection as done (by its worker or a supervisor); a task is done once."""
    from sqlalchemy import update

    now = now or utcnow()
    if result not in TASK_RESULTS:
        raise InspectionError("result", f"result must be one of {', '.join(TASK_RESULTS)}, got {str(result)[:20]!r}",
                              400)
    if result != "ok" and not (note or "").strip():
        raise InspectionError("note", f"result {result!r} needs a note saying what was found", 400)
    t = session.scalar(select(InspectionTask).where(InspectionTask.id == task_id, task_filter(session, actor)))
    if t is None:
        raise InspectionError("task", f"no inspection task {task_id}", 404)
    if actor.role not in SUPERVISOR_ROLES and not (actor.worker_id is not None and actor.worker_id == t.worker_id):
        raise InspectionError("task", "only the assigned worker or a supervisor records an inspection", 403)
    n = session.execute(update(InspectionTask).where(and_(InspectionTask.id == t.id, InspectionTask.done_at.is_(None)))
                        .values(done_at=now, done_by_worker_id=actor.worker_id, done_by=actor.name, result=result,
                                note=(note or "").strip() or None)
                        .execution_options(synchronize_session=False)).rowcount
    if n != 1:
        raise InspectionError("task", f"inspection task {task_id} was recorded already", 409)
    session.refresh(t)
    return t
