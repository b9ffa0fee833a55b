"""The grid worker's page (``/worker``): my cells on a map, my open cases sorted by deadline.

Phone first: the map and the list stack on a narrow screen. The map loads cells and cases per
visible area from ``/api/v1/geo`` (scope-limited there too); the list is paginated, so the page
weighs the same with ten cases or ten thousand.
"""
from __future__ import annotations

import math

from flask import current_app, redirect, render_template, url_for
from sqlalchemy import func, select

from gridmap.accounts.scope import case_filter
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.fieldwork.notifications import mark_seen, notifications_for
from gridmap.fieldwork.tasks import counts, tasks_for
from gridmap.incidents.models import Case, Category
from gridmap.web.views.base import (CLOSED_STATUSES, GEO_API, base_map, bp, cell_tooltip, get_db, hazards_layer_url,
                                    is_overdue, map_parts_for_page, page_arg_int, roles_page_required, worker_cells,
                                    actor)

PER_PAGE = 30
#: today's tasks, by kind (gridmap.fieldwork.tasks.KINDS)
TASK_KIND_LABELS = {"case": "待办事件", "rework": "返工", "mediation": "调解中", "inspection": "巡检任务",
                    "hazard_rectify": "隐患待整改", "hazard_recheck": "隐患待复查"}
NOTICE_KIND_LABELS = {"assigned": "新派遣", "rework": "核查未通过，需返工", "extension_denied": "延期申请被驳回",
                      "due_soon": "即将到期（临期）", "hazard_assigned": "新的隐患"}


def open_cases_by_deadline(session, act, *, page: int = 1, per_page: int = PER_PAGE, extra_where=()):
    """(cases, total): the actor's open cases, nearest deadline first (no deadline last)."""
    where = [case_filter(session, act), Case.status.notin_(CLOSED_STATUSES), *extra_where]
    total = session.scalar(select(func.count(Case.id)).where(*where)) or 0
    rows = list(session.scalars(
        select(Case).where(*where)
        .order_by(Case.deadline_at.is_(None), Case.deadline_at, Case.reported_at.desc(), Case.id.desc())
        .offset((page - 1) * per_page).limit(per_page)))
    return rows, total


def case_rows(session, cases) -> list[dict]:
    """What a case table shows, with category and cell names looked up once for the page."""
    now = utcnow()
    cats = {c.id: c for c in session.scalars(select(Category).where(Category.id.in_({c.category_id for c in cases})))} \
        if cases else {}
    cell_ids = {c.cell_id for c in cases if c.cell_id}
    cells = {a.id: a for a in session.scalars(select(Area).where(Area.id.in_(cell_ids)))} if cell_ids else {}
    return [{"case": c, "category": cats.get(c.category_id), "cell": cells.get(c.cell_id),
             "overdue": is_overdue(c, now)} for c in cases]


def pagination(page: int, total: int, per_page: int) -> dict:
    pages = max(1, math.ceil(total / per_page))
    return {"page": min(page, pages), "pages": pages, "total": total, "per_page": per_page}


@bp.get("/worker")
@roles_page_required("worker", "head")
def worker():
    from gridmap.web.geo_api import scope_extent
    from gridmap.web.maps import add_cases_layer, add_cells_layer

    session = get_db()
    act = actor()
    ids = worker_cells(session, act)
    cells = list(session.scalars(select(Area).where(Area.id.in_(ids)).order_by(Area.code))) if ids else []
    page = page_arg_int("page")
    rows, total = open_cases_by_deadline(session, act, page=page)
    bounds = scope_extent(session, act)
    m = base_map(bounds)
    add_cells_layer(m, f"{GEO_API}/cells", level="cell", name="cells", tooltip=cell_tooltip(),
                    style={"color": "#1d4ed8", "weight": 2, "fillOpacity": 0.06})
    hazards = hazards_layer_url()  # drawn by static/js/app.js (data-hazards-url)
    add_cases_layer(m, f"{GEO_API}/cases", name="cases", filter={"status": "open"}, case_url="/cases/{id}")
    hours = float(current_app.config.get("GRIDMAP_DUE_SOON_HOURS", 24))
    tasks = tasks_for(session, act, due_soon_hours=hours, tz=current_app.config["GRIDMAP_TIMEZONE"])
    notes = notifications_for(session, act, due_soon_hours=hours)
    return render_template("worker.html", cells=cells, rows=case_rows(session, rows),
                           pager=pagination(page, total, PER_PAGE), map=map_parts_for_page(m),
                           map_name=m.get_name(), hazards_url=hazards, tasks=tasks, task_counts=counts(tasks),
                           task_labels=TASK_KIND_LABELS, notices=notes, notice_labels=NOTICE_KIND_LABELS)


@bp.post("/worker/notifications/seen")
@roles_page_required("worker", "head")
def worker_notifications_seen():
    session = get_db()
    mark_seen(session, actor().user_id)
    session.commit()
    return redirect(url_for("pages.worker"), code=303)
