"""Reading cases: filtered, paginated lists and single cases, always within the reader's scope.

Owns: ``list_cases`` (filters by cell/community/street code, status list, category with its
subcategories, bbox, reported_at range, overdue; every query AND-ed with
``accounts.scope.case_filter``), ``get_case`` (None when the case is outside the scope, so a
view answers 404 and ids cannot be probed) and the JSON shape of a case (``case_dict``), in which
the reporter's name and phone are shown only to the assignee, the reporter and supervisors and
masked for everyone else (张*, 138****1234).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.assign.models import Department, Worker
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.incidents.categories import KIND_ZH
from gridmap.incidents.category_lookup import AmbiguousCategory, CategoryResolver, UnknownCategory
from gridmap.incidents.models import STATUSES, Case, Category
from gridmap.timebounds import OutOfRange, parse_day, parse_instant

TIMEZONE = ZoneInfo("Asia/Shanghai")
MAX_PER_PAGE = 200
#: roles that see reporters' personal data of every case in their scope
SUPERVISOR_ROLES = ("head", "community", "street", "district", "city", "admin", "system")
#: statuses in which the deadline clock runs (a case past its deadline in one of them is overdue)
RUNNING_STATUSES = ("dispatched", "in_progress")
FILTER_KEYS = ("cell", "community", "street", "status", "category", "bbox", "from", "to", "overdue", "source",
               "assignee")


class QueryError(ValueError):
    """A bad filter; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# ----------------------------------------------------------------------------- filters

def _area_id(session: Session, level: str, code: str) -> int:
    aid = session.scalar(select(Area.id).where(Area.code == code.strip(), Area.level == level))
    if aid is None:
        raise QueryError(level, f"no {level} with code {code.strip()!r}")
    return aid


def category_ids_with_children(session: Session, code: str) -> list[int]:
    """The category named by ``code`` (internal code, standard code or exact name) and all below it."""
    try:
        root = CategoryResolver.load(session).resolve(code).id
    except (UnknownCategory, AmbiguousCategory) as e:
        raise QueryError("category", str(e)) from None
    rows = session.execute(select(Category.id, Category.code, Category.parent_id)).all()
    children: dict[int, list[int]] = {}
    for r in rows:
        if r.parent_id is not None:
            children.setdefault(r.parent_id, []).append(r.id)
    out, stack = [], [root]
    while stack:
        i = stack.pop()
        if i in out:
            continue
        out.append(i)
        stack.extend(children.get(i, ()))
    return out


def parse_time(value: str, field: str, *, end: bool = False) -> dt.datetime:
    """YYYY-MM-DD (a local Asia/Shanghai day: its start, or with ``end`` the next day's start) or ISO 8601."""
    v = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            d = dt.datetime.combine(parse_day(v, field), dt.time(), TIMEZONE)
            return (d + dt.timedelta(days=1) if end else d).astimezone(dt.timezone.utc)
        t = parse_instant(v, field)
    except OutOfRange as e:
        raise QueryError(field, str(e)) from None
    except ValueError:
        raise QueryError(field, f"{field} must be a date (YYYY-MM-DD) or an ISO 8601 time, got {v[:40]!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=TIMEZONE)
    return t.astimezone(dt.timezone.utc)


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    parts = str(value).split(",")
    try:
        if len(parts) != 4:
            raise ValueError
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise QueryError("bbox", f"bbox must be minlon,minlat,maxlon,maxlat (WGS84), got {str(value)[:60]!r}") from None
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise QueryError("bbox", "bbox must be minlon,minlat,maxlon,maxlat with min ≤ max, lon within -180..180 "
                                 "and lat within -90..90")
    return x0, y0, x1, y1


def parse_bool(value, field: str) -> bool:
    v = str(value).strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise QueryError(field, f"{field} must be true or false, got {str(value)[:20]!r}")


def filter_clauses(session: Session, actor: Actor, filters: dict, *, now: dt.datetime | None = None) -> list:
    """WHERE clauses for ``filters`` (unknown keys refused); the scope clause comes first."""
    from gridmap.accounts.scope import case_filter

    now = now or utcnow()
    where = [case_filter(session, actor)]
    f = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    unknown = sorted(set(f) - set(FILTER_KEYS))
    if unknown:
        raise QueryError(unknown[0], f"unknown filter {unknown[0]!r}; filters are {', '.join(FILTER_KEYS)}")
    for level, col in (("cell", Case.cell_id), ("community", Case.community_id), ("street", Case.street_id)):
        if level in f:
            where.append(col == _area_id(session, level, str(f[level])))
    if "status" in f:
        wanted = [s.strip() for s in str(f["status"]).split(",") if s.strip()]
        bad = [s for s in wanted if s not in STATUSES]
        if bad or not wanted:
            raise QueryError("status", f"unknown status {', '.join(bad) or '(empty)'}; statuses are "
                                       f"{', '.join(STATUSES)}")
        where.append(Case.status.in_(wanted))
    if "category" in f:
        where.append(Case.category_id.in_(category_ids_with_children(session, str(f["category"]))))
    if "bbox" in f:
        x0, y0, x1, y1 = parse_bbox(f["bbox"])
        where += [Case.lon.between(x0, x1), Case.lat.between(y0, y1)]
    if "from" in f:
        where.append(Case.reported_at >= parse_time(f["from"], "from"))
    if "to" in f:
        where.append(Case.reported_at < parse_time(f["to"], "to", end=True))
    if "overdue" in f:
        due = or_(Case.overdue.is_(True), and_(Case.deadline_at < now, Case.status.in_(RUNNING_STATUSES)))
        where.append(due if parse_bool(f["overdue"], "overdue") else ~due)
    if "source" in f:
        where.append(Case.source == str(f["source"]))
    if "assignee" in f:
        v = str(f["assignee"]).strip()
        if v == "me":
            if actor.worker_id is None:
                raise QueryError("assignee", "assignee=me needs a user who is a worker")
            where.append(Case.assignee_worker_id == actor.worker_id)
        else:
            wid = session.scalar(select(Worker.id).where(Worker.code == v))
            if wid is None:
                raise QueryError("assignee", f"no worker with code {v!r} (or use assignee=me)")
            where.append(Case.assignee_worker_id == wid)
    return where


def list_cases(session: Session, actor: Actor, *, filters: dict | None = None, page: int = 1,
               per_page: int = 50) -> tuple[list[Case], int]:
    """(cases on this page, total matching), newest report first, within ``actor``'s scope."""
    if not isinstance(page, int) or page < 1:
        raise QueryError("page", "page must be a whole number ≥ 1")
    if not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
        raise QueryError("per_page", f"per_page must be a whole number from 1 to {MAX_PER_PAGE}")
    where = filter_clauses(session, actor, filters or {})
    total = session.scalar(select(func.count(Case.id)).where(*where)) or 0
    items = list(session.scalars(select(Case).where(*where).order_by(Case.reported_at.desc(), Case.id.desc())
                                 .offset((page - 1) * per_page).limit(per_page)))
    return items, total


def get_case(session: Session, actor: Actor, case_id: int) -> Case | None:
    """The case if ``actor`` may see it, else None (as if it did not exist)."""
    from gridmap.accounts.scope import case_filter

    return session.scalar(select(Case).where(Case.id == case_id, case_filter(session, actor)))


# ----------------------------------------------------------------------------- presentation

def may_see_personal(actor: Actor, case: Case) -> bool:
    """Reporter data: for the assignee (worker or department), the reporter, supervisors."""
    if actor.role in SUPERVISOR_ROLES:
        return True
    if actor.worker_id is not None and actor.worker_id in (case.assignee_worker_id, case.handled_by_worker_id):
        return True
    if actor.role == "department" and actor.department_id and actor.department_id == case.assignee_department_id:
        return True
    return actor.user_id is not None and actor.user_id == case.reporter_user_id


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * len(digits)


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


@dataclass
class Lookups:
    """Codes and names of the areas, categories, workers and departments a page of cases refers to."""

    areas: dict[int, tuple[str, str]]
    categories: dict[int, tuple[str, str]]
    workers: dict[int, tuple[str, str]]
    departments: dict[int, tuple[str, str]]
    #: category id → its standard code qualified by kind ("事件 0102"), where it has one
    category_std: dict[int, str] = field(default_factory=dict)

    @classmethod
    def for_cases(cls, session: Session, cases) -> "Lookups":
        cases = list(cases)
        aids = {i for c in cases for i in (c.cell_id, c.community_id, c.street_id, c.district_id) if i}
        cids = {c.category_id for c in cases}
        wids = {i for c in cases for i in (c.assignee_worker_id, c.handled_by_worker_id) if i}
        dids = {c.assignee_department_id for c in cases if c.assignee_department_id}

        def fetch(model, ids):
            if not ids:
                return {}
            return {r[0]: (r[1], r[2]) for r in session.execute(
                select(model.id, model.code, model.name).where(model.id.in_(ids)))}

        std = {}
        if cids:
            std = {i: f"{KIND_ZH.get(k, k)} {c}" for i, k, c in session.execute(
                select(Category.id, Category.kind, Category.std_code).where(Category.id.in_(cids),
                                                                             Category.std_code.isnot(None)))}
        return cls(fetch(Area, aids), fetch(Category, cids), fetch(Worker, wids), fetch(Department, dids), std)


def _ref(table: dict, i):
    if i is None:
        return None
    code, name = table.get(i, (None, None))
    return {"id": i, "code": code, "name": name}


def _iso(t):
    return t.isoformat() if t else None


def case_dict(case: Case, *, with_history: bool = False, show_personal: bool = False,
              lookups: Lookups | None = None, actor: Actor | None = None) -> dict:
    """The JSON shape of a case (GET /api/v1/cases/<id>, list items, the create answer)."""
    from sqlalchemy.orm import object_session

    session = object_session(case)
    lk = lookups or (Lookups.for_cases(session, [case]) if session is not None else Lookups({}, {}, {}, {}))
    out = {
        "id": case.id, "number": case.number, "source": case.source, "external_id": case.external_id,
        "category": {**_ref(lk.categories, case.category_id), "std_code": lk.category_std.get(case.category_id)},
        "title": case.title, "description": case.description,
        "status": case.status, "urgent": bool(case.urgent), "supervised": bool(case.supervised),
        "reporter": {
            "name": case.reporter_name if show_personal else mask_name(case.reporter_name),
            "phone": case.reporter_phone if show_personal else mask_phone(case.reporter_phone),
            "masked": not show_personal,
        },
        "location": {
            "lon": case.lon, "lat": case.lat, "input_crs": case.input_crs, "address": case.address,
            "address_id": case.address_id, "address_score": case.address_score, "placement": case.placement,
            "snapped": bool(case.snapped), "distance_m": case.distance_m,
            "cell": _ref(lk.areas, case.cell_id), "community": _ref(lk.areas, case.community_id),
            "street": _ref(lk.areas, case.street_id), "district": _ref(lk.areas, case.district_id),
        },
        "routing": {
            "worker": _ref(lk.workers, case.assignee_worker_id),
            "department": _ref(lk.departments, case.assignee_department_id),
            "level": case.assignee_level, "reason": case.route_reason, "reason_code": case.route_reason_code,
            "reason_params": json.loads(case.route_reason_params) if case.route_reason_params else None,
            "escalation_level": case.escalation_level,
        },
        "duplicate_of_id": case.duplicate_of_id,
        "times": {k: _iso(getattr(case, f"{k}_at")) for k in
                  ("reported", "filed", "dispatched", "accepted", "deadline", "handled", "closed", "evaluated",
                   "updated")},
        "overdue": bool(case.overdue), "closed_on_time": case.closed_on_time,
        "extension_count": case.extension_count, "extension_pending": bool(case.extension_pending),
        "rework_count": case.rework_count, "return_count": case.return_count,
        "self_handled": bool(case.self_handled), "satisfaction": case.satisfaction, "version": case.version,
    }
    if actor is not None:
        try:
            from gridmap.incidents.lifecycle import allowed_actions

            out["allowed_actions"] = list(allowed_actions(case, actor))
        except ImportError:  # pragma: no cover - the life cycle is a sibling module
            pass
    hidden: set[int] = set()
    if with_history:
        from gridmap.incidents.history import event_dict
        from gridmap.incidents.models import CaseEvent

        events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                                 .order_by(CaseEvent.seq)).all() if session is not None else case.events
        if actor is not None and session is not None:
            hidden = hidden_workers(session, actor, {case.assignee_worker_id, case.handled_by_worker_id}
                                    | {e.actor_worker_id for e in events})
        out["history"] = [_redact_event(event_dict(e), hidden) for e in events]
    elif actor is not None and session is not None:
        hidden = hidden_workers(session, actor, {case.assignee_worker_id})
    if case.assignee_worker_id in hidden:
        # a reporter may read back a case routed to another cell's worker: not who that worker is
        out["routing"].update(worker=None, reason=None, reason_code=None, reason_params=None, hidden=True)
    return out


def hidden_workers(session: Session, actor: Actor, ids) -> set[int]:
    """Those of ``ids`` that ``actor`` may not see (nor be told the name of)."""
    from gridmap.accounts.scope import worker_filter

    ids = {i for i in ids if i is not None}
    if not ids or actor.role in ("city", "admin", "system"):
        return set()
    return ids - set(session.scalars(select(Worker.id).where(Worker.id.in_(ids), worker_filter(session, actor))))


_ROUTING_KEYS = ("routing", "reason", "route_reason", "route_reason_code", "route_reason_params")


def _redact_event(ev: dict, hidden: set[int]) -> dict:
    if not hidden:
        return ev
    if ev.get("actor_worker_id") in hidden:
        ev.update(actor=None, actor_worker_id=None, actor_hidden=True)
    data = ev.get("data")
    if isinstance(data, dict):
        names_hidden = any(v in hidden for k, v in data.items() if k.endswith("worker_id")) or (
            isinstance(data.get("routing"), dict) and data["routing"].get("worker_id") in hidden)
        if names_hidden:
            ev["data"] = {k: v for k, v in data.items() if k not in _ROUTING_KEYS and not k.endswith("worker_id")}
            ev.update(comment_code=None, comment_params=None)
    return ev


def case_dicts(session: Session, cases, actor: Actor) -> list[dict]:
    """List items: one lookup of names for the whole page."""
    cases = list(cases)
    lk = Lookups.for_cases(session, cases)
    return [case_dict(c, lookups=lk, show_personal=may_see_personal(actor, c)) for c in cases]
