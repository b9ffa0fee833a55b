"""Case pages: the list (``/cases``), one case (``/cases/<id>``) with its actions as forms, its
photos, and reporting a new case (``/report``).

A case outside the user's scope answers 404, exactly like an unknown id. The description and every other
user text are rendered as text (Jinja autoescape). Actions go through
``incidents.lifecycle.apply_action`` with the version the user saw, so a concurrent change is
reported instead of overwritten; a photo sent with an action is stored in the same transaction.
"""
from __future__ import annotations

import datetime as dt
import math

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import or_, select

from gridmap.assign.models import Department, Responsibility, Worker
from gridmap.boundaries.models import Area
from gridmap.incidents.models import STATUSES, Case, CaseEvent, CasePhoto, Category
from gridmap.web.i18n import gettext as _
from gridmap.web.i18n import name_of
from gridmap.web.views.base import (CLOSED_STATUSES, GEO_API, actor, base_map, bp, case_or_abort,
                                    cell_tooltip, get_db, is_overdue, login_page_required, map_parts_for_page,
                                    page_arg_int)
from gridmap.web.views.worker import case_rows, pagination

PER_PAGE = 50
MAX_UPLOAD = 12 * 1024 * 1024
OPEN_STATUSES = tuple(s for s in STATUSES if s not in CLOSED_STATUSES)


def _photo_max() -> int:
    from gridmap.incidents.photos import DEFAULT_MAX_BYTES

    return int(current_app.config.get("GRIDMAP_PHOTO_MAX_BYTES") or DEFAULT_MAX_BYTES)


def read_photo(storage) -> tuple[bytes, str] | None:
    """The uploaded photo's bytes, checked BEFORE anything is written (size, and type by content).

    Raises PhotoError. (Checking first keeps a refused photo from leaving a half-done case behind.)
    """
    from gridmap.incidents.photos import PhotoError, sniff_image

    if storage is None or not getattr(storage, "filename", ""):
        return None
    limit = _photo_max()
    data = storage.stream.read(limit + 1)
    if not data:
        return None
    if len(data) > limit:
        raise PhotoError(f"the photo is larger than {limit // 1024} KB", 413)
    if sniff_image(data[:16]) is None:
        raise PhotoError("the file is not a JPEG, PNG or WebP image", 415)
    return data, storage.filename


# ----------------------------------------------------------------------------- list
@bp.get("/cases")
@login_page_required
def cases():
    from gridmap.incidents.queries import QueryError, list_cases

    session = get_db()
    act = actor()
    args = request.args
    status = args.get("status", "open")
    filters = {}
    if status == "open":
        filters["status"] = ",".join(OPEN_STATUSES)
    elif status in STATUSES:
        filters["status"] = status
    else:
        status = "all"
    if args.get("overdue") == "1":
        filters["overdue"] = "1"
    for key in ("category", "from", "to"):
        if args.get(key):
            filters[key] = args.get(key)[:60]
    page = page_arg_int("page")
    try:
        items, total = list_cases(session, act, filters=filters, page=page, per_page=PER_PAGE)
    except QueryError as e:
        flash(_("筛选条件无效：{reason}", reason=e.message), "error")
        items, total = [], 0
    return render_template("cases.html", rows=case_rows(session, items), pager=pagination(page, total, PER_PAGE),
                           status=status, statuses=STATUSES, categories=category_groups(session), args=args)


# ----------------------------------------------------------------------------- one case
def _case_context(session, act, case: Case) -> dict:
    from gridmap.incidents import lifecycle
    from gridmap.incidents.queries import may_see_personal, mask_name, mask_phone
    from gridmap.web.forms import PHOTO_ACTIONS, WORKER_ACTIONS

    area_ids = [i for i in (case.cell_id, case.community_id, case.street_id, case.district_id) if i]
    areas = {a.id: a for a in session.scalars(select(Area).where(Area.id.in_(area_ids)))} if area_ids else {}
    assignee = session.get(Worker, case.assignee_worker_id) if case.assignee_worker_id else None
    department = session.get(Department, case.assignee_department_id) if case.assignee_department_id else None
    events = list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)))
    photos = list(session.scalars(select(CasePhoto).where(CasePhoto.case_id == case.id).order_by(CasePhoto.id)))
    personal = may_see_personal(act, case)
    reporter = {"name": case.reporter_name if personal else mask_name(case.reporter_name),
                "phone": case.reporter_phone if personal else mask_phone(case.reporter_phone)}
    actions = []
    for name in lifecycle.allowed_actions(case, act):
        if name in ("submit",) and act.role not in lifecycle.SUPERVISOR_ROLES:
            continue
        tr = lifecycle.TRANSITIONS[name][case.status]
        actions.append({"name": name, "comment_required": tr.comment, "photo": name in PHOTO_ACTIONS,
                        "worker": name in WORKER_ACTIONS, "satisfaction": name == "evaluate",
                        "duplicate": name == "mark_duplicate", "deadline": name == "supervise"})
    candidates = _candidate_workers(session, case) if any(a["worker"] for a in actions) else []
    from gridmap.incidents.categories import filing_criteria, std_label

    category = session.get(Category, case.category_id)
    criteria = filing_criteria(category) if category is not None else None
    confirmer = session.get(Worker, case.confirm_worker_id) if case.confirm_worker_id else None
    return {"case": case, "category": category, "areas": areas, "std_code": std_label(category) if category else None,
            "filing_criteria": criteria[0] if criteria else None, "confirmer": confirmer,
            "cell": areas.get(case.cell_id), "community": areas.get(case.community_id),
            "street": areas.get(case.street_id), "assignee": assignee, "department": department,
            "events": events, "photos": photos, "reporter": reporter, "actions": actions,
            "candidates": candidates, "overdue": is_overdue(case, dt.datetime.now(dt.timezone.utc))}


def _candidate_workers(session, case: Case) -> list[Worker]:
    """Active workers a supervisor may dispatch the case to: the case's community, street and district
    staff and the workers responsible for the community's cells (at most 200)."""
    area_ids = [i for i in (case.community_id, case.street_id, case.district_id) if i]
    cells = select(Area.id).where(Area.parent_id == case.community_id) if case.community_id else None
    conds = [Worker.area_id.in_(area_ids)] if area_ids else []
    if cells is not None:
        conds.append(Worker.id.in_(select(Responsibility.worker_id).where(Responsibility.cell_id.in_(cells))))
    if not conds:
        return []
    return list(session.scalars(select(Worker).where(Worker.active.is_(True), or_(*conds))
                                .order_by(Worker.code).limit(200)))


@bp.get("/cases/<int:case_id>")
@login_page_required
def case_page(case_id: int):
    import folium

    session = get_db()
    act = actor()
    case = case_or_abort(session, act, case_id)
    ctx = _case_context(session, act, case)
    map_parts = map_name = None
    if case.lon is not None and case.lat is not None:
        from gridmap.web.maps import add_cells_layer

        d = 0.004
        m = base_map((case.lon - d, case.lat - d, case.lon + d, case.lat + d))
        add_cells_layer(m, f"{GEO_API}/cells", level="cell", name="cells", tooltip=cell_tooltip())
        # only the coordinates go into the page; no user text
        folium.CircleMarker(location=[case.lat, case.lon], radius=9, color="#c53030", fill=True,
                            fill_opacity=0.9, weight=3).add_to(m)
        map_parts, map_name = map_parts_for_page(m), m.get_name()
    return render_template("case.html", map=map_parts, map_name=map_name, **ctx)


@bp.post("/cases/<int:case_id>/actions")
@login_page_required
def case_action(case_id: int):
    from gridmap.incidents import lifecycle
    from gridmap.incidents.photos import PhotoError, save_photo
    from gridmap.web.forms import PHOTO_ACTIONS, ActionForm

    session = get_db()
    act = actor()
    if request.content_length and request.content_length > MAX_UPLOAD:
        abort(413)
    case = case_or_abort(session, act, case_id)
    form = ActionForm()
    back = redirect(url_for("pages.case_page", case_id=case.id), code=303)
    if not form.validate_on_submit() or form.action.data not in lifecycle.ACTIONS:
        abort(400)
    name = form.action.data
    data = {}
    if form.satisfaction.data is not None:
        data["satisfaction"] = form.satisfaction.data
    if form.duplicate_of_id.data is not None:
        data["duplicate_of_id"] = form.duplicate_of_id.data
    if form.worker_id.data is not None:
        data["worker_id"] = form.worker_id.data
    if name == "supervise" and (form.deadline.data or "").strip():
        data["deadline"] = form.deadline.data.strip()
    try:
        photo = read_photo(form.photo.data) if name in PHOTO_ACTIONS else None
        if name == "confirm" and photo is not None:  # the on-site photo goes first: the action names it
            saved = save_photo(session, case, photo[0], filename=photo[1], actor=act,
                               instance_path=current_app.instance_path, comment=form.comment.data or None,
                               max_bytes=_photo_max())
            data["photo_id"], photo = saved.id, None
        case = lifecycle.apply_action(session, case.id, name, act, comment=form.comment.data or None,
                                      expected_version=form.version.data, data=data or None)
        if name == "confirm":
            from gridmap.incidents.intake import file_after_confirmation

            case = file_after_confirmation(session, case, auto_dispatch=current_app.config["GRIDMAP_AUTO_DISPATCH"])
        if photo is not None:
            save_photo(session, case, photo[0], filename=photo[1], actor=act,
                       instance_path=current_app.instance_path, comment=form.comment.data or None,
                       max_bytes=_photo_max())
        session.commit()
    except lifecycle.PermissionDenied:
        session.rollback()
        abort(403)
    except lifecycle.CaseNotFound:
        session.rollback()
        abort(404)
    except lifecycle.ConflictError:
        session.rollback()
        flash(_("事件已被他人更新，请查看最新状态后重试。"), "error")
        return back
    except lifecycle.TransitionError as e:
        session.rollback()
        flash(_("无法执行该操作：{reason}", reason=str(e)), "error")
        return back
    except PhotoError as e:
        session.rollback()
        flash(_("照片无法保存：{reason}", reason=e.message), "error")
        return back
    except Exception:
        session.rollback()
        raise
    from gridmap.web.i18n import action_label

    flash(_("操作已完成：{action}。", action=action_label(name)), "success")
    return back


@bp.get("/cases/<int:case_id>/photos/<int:photo_id>")
@login_page_required
def case_photo(case_id: int, photo_id: int):
    from gridmap.incidents.photos import PhotoError, photo_file

    session = get_db()
    case = case_or_abort(session, actor(), case_id)
    photo = session.scalar(select(CasePhoto).where(CasePhoto.id == photo_id, CasePhoto.case_id == case.id))
    if photo is None:
        abort(404)
    try:
        path = photo_file(photo, current_app.instance_path)
    except PhotoError:
        abort(404)
    if not path.is_file():
        abort(404)
    resp = send_file(path, mimetype=photo.content_type, max_age=3600, etag=photo.sha256)
    resp.headers["Cache-Control"] = "private, max-age=3600"
    resp.headers["Content-Disposition"] = "inline"
    return resp


# ----------------------------------------------------------------------------- report
def category_groups(session) -> list[dict]:
    """Active categories grouped under their top-level category: [{"label", "options": [(code, label)]}]."""
    cats = list(session.scalars(select(Category).where(Category.active.is_(True)).order_by(Category.code)))
    by_id = {c.id: c for c in cats}

    def root_of(c):
        seen = set()
        while c.parent_id is not None and c.parent_id in by_id and c.id not in seen:
            seen.add(c.id)
            c = by_id[c.parent_id]
        return c

    def path(c, root):
        names, seen = [], set()
        while c is not None and c.id != root.id and c.id not in seen:
            seen.add(c.id)
            names.append(name_of(c))
            c = by_id.get(c.parent_id)
        return " / ".join(reversed(names))

    groups: dict[int, dict] = {}
    for c in cats:
        r = root_of(c)
        g = groups.setdefault(r.id, {"label": name_of(r), "code": r.code, "options": []})
        g["options"].append((c.code, path(c, r) or name_of(r)))
    return sorted(groups.values(), key=lambda g: g["code"])


def _source_for(act) -> str:
    return {"worker": "patrol", "head": "patrol", "department": "department"}.get(act.role, "hotline")


_INTAKE_FIELD_MESSAGE = {
    "location": "位置不在任何网格内，请重新选择。",
    "location.lon": "请在地图上选择位置。",
    "location.lat": "请在地图上选择位置。",
    "category": "请选择事件类别。",
    "description": "请填写事件描述。",
}


def _report_page(session, act, form, error=None, status=200):
    from gridmap.web.geo_api import scope_extent
    from gridmap.web.maps import add_cells_layer

    m = base_map(scope_extent(session, act))
    add_cells_layer(m, f"{GEO_API}/cells", level="cell", name="cells", tooltip=cell_tooltip())
    return render_template("report.html", form=form, groups=category_groups(session), error=error,
                           map=map_parts_for_page(m), map_name=m.get_name()), status


@bp.route("/report", methods=["GET", "POST"])
@login_page_required
def report():
    from gridmap.incidents.intake import IntakeError, create_case, may_report
    from gridmap.incidents.photos import PhotoError, save_photo
    from gridmap.web.forms import ReportForm

    session = get_db()
    act = actor()
    if not may_report(act):
        abort(403)
    if request.content_length and request.content_length > MAX_UPLOAD:
        abort(413)
    form = ReportForm()
    if request.method == "GET":
        return _report_page(session, act, form)
    if not form.validate_on_submit():
        missing = next((f for f in ("lon", "lat", "category", "description") if getattr(form, f).errors), None)
        msg = {"lon": "请在地图上选择位置。", "lat": "请在地图上选择位置。", "category": "请选择事件类别。",
               "description": "请填写事件描述。"}.get(missing, "请填写事件描述。")
        return _report_page(session, act, form, error=_(msg), status=400)
    try:
        lon, lat = float(form.lon.data), float(form.lat.data)
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise ValueError
    except (TypeError, ValueError):
        return _report_page(session, act, form, error=_("请在地图上选择位置。"), status=400)
    data = {"category": form.category.data, "description": form.description.data,
            "location": {"lon": lon, "lat": lat, "crs": "wgs84"}, "urgent": bool(form.urgent.data)}
    if form.address.data:
        data["location"]["address"] = form.address.data
    try:
        photo = read_photo(form.photo.data)
        case = create_case(session, data, act, source=_source_for(act))
        if photo is not None:
            save_photo(session, case, photo[0], filename=photo[1], actor=act,
                       instance_path=current_app.instance_path, max_bytes=_photo_max())
        session.commit()
    except IntakeError as e:
        session.rollback()
        msg = _INTAKE_FIELD_MESSAGE.get(e.field)
        text = _(msg) if msg else _("上报未被接受：{reason}", reason=e.message)
        return _report_page(session, act, form, error=text, status=e.status if 400 <= e.status < 500 else 400)
    except PhotoError as e:
        session.rollback()
        return _report_page(session, act, form, error=_("照片无法保存：{reason}", reason=e.message),
                            status=e.status)
    except Exception:
        session.rollback()
        raise
    flash(_("事件已上报。"), "success")
    return redirect(url_for("pages.case_page", case_id=case.id), code=303)


__all__ = ["cases", "case_page", "case_action", "case_photo", "report", "category_groups", "read_photo"]
