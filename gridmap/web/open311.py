"""Open311 GeoReport v2 facade (``/open311/v2``): services = categories, requests = cases.

Owns: the GeoReport v2 shapes and rules on top of the case services: ``services.json`` (one
service per active category: service_code = category code), ``requests.json`` GET (the caller's
scope, filters service_code / status open|closed / start_date / end_date, newest first, at most
1000; without dates the last 90 days as the spec says), POST (form-encoded or JSON; lat/long in
WGS84 only, or address_string matched against the address register; creates the case through
``intake.create_case`` with source "open311") and ``requests/<id>.json``. The key is an API token,
sent in a header (``X-Api-Key: …`` or ``Authorization: Bearer …``) or as ``api_key`` in a POST
body. In the URL (``?api_key=``, where access logs keep it) it is refused unless
GRIDMAP_OPEN311_QUERY_KEY is set for old GeoReport clients; any ``api_key=`` in a request line is
masked in the werkzeug and gunicorn access logs either way. Errors are GeoReport errors:
``[{"code": 400, "description": "…"}]``. JSON only.
"""
from __future__ import annotations

import datetime as dt

import logging
import re

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import select

from gridmap import get_session
from gridmap.db import utcnow
from gridmap.web.params import is_id_text

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

MAX_REQUESTS = 1000
DEFAULT_WINDOW_DAYS = 90
CLOSED = ("closed", "evaluated", "rejected")
STATUS_NOTICE = {"reported": "已受理，等待立案 received, waiting to be filed",
                 "dispatched": "已派遣至网格员 dispatched to the grid worker"}


_SECRET_IN_URL = re.compile(r"((?:api_key|access_token|token)=)[^&\s\"']*", re.I)
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")


def mask_secrets(text: str) -> str:
    """``…?api_key=gm_abc&x=1`` → ``…?api_key=***&x=1``."""
    return _SECRET_IN_URL.sub(r"\1***", text)


class SecretMaskFilter(logging.Filter):
    """Masks keys in the request lines of access logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is left as it is
            return True
        masked = mask_secrets(msg)
        if masked != msg:
            record.msg, record.args = masked, ()
        return True


@bp.record_once
def _mask_access_logs(_state) -> None:
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretMaskFilter) for f in logger.filters):
            logger.addFilter(SecretMaskFilter())


class Open311Error(Exception):
    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code = code
        self.description = description


@bp.errorhandler(Open311Error)
def _error(e: Open311Error):
    return jsonify([{"code": e.code, "description": e.description}]), e.code


def _params() -> dict:
    """Query, form and JSON parameters merged (JSON wins, then form, then query)."""
    out = dict(request.args.items())
    out.update(request.form.items())
    if request.is_json:
        data = request.get_json(silent=True)
        if data is None and request.data:
            raise Open311Error(400, "the request body is not valid JSON")
        if data is not None and not isinstance(data, dict):
            raise Open311Error(400, "the request body must be a JSON object")
        out.update(data or {})
    return out


def _actor():
    """The caller (X-Api-Key / Bearer header, api_key in a POST body), or a 401 GeoReport error."""
    from gridmap.accounts.service import actor_for, user_for_token

    if "o311_actor" in g:
        return g.o311_actor
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    token = token or request.headers.get("X-Api-Key", "").strip() or None
    if not token and request.method == "POST":
        data = request.get_json(silent=True) if request.is_json else None
        token = request.form.get("api_key") or (data.get("api_key") if isinstance(data, dict) else None)
    if not token and "api_key" in request.args:
        if not current_app.config.get("GRIDMAP_OPEN311_QUERY_KEY"):
            raise Open311Error(401, "api_key in the URL is refused (URLs end up in logs): send it in the "
                                    "X-Api-Key header")
        token = request.args.get("api_key")
    if not token or not isinstance(token, str):
        raise Open311Error(401, "api_key required in the X-Api-Key header (an API token; "
                                "`gridmap tokens create NAME`)")
    session = get_session()
    user = user_for_token(session, token, address=request.remote_addr)
    session.commit()  # last_used_at, the audit of the first use in an hour
    if user is None:
        raise Open311Error(401, "invalid api_key")
    g.o311_actor = actor_for(user)
    return g.o311_actor


def _iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if t else None


def _parse_date(value, name: str) -> dt.datetime:
    from gridmap.incidents.queries import QueryError, parse_time

    try:
        return parse_time(value, name)
    except QueryError as e:
        raise Open311Error(400, e.message) from None


# ----------------------------------------------------------------------------- services

def services(session) -> list[dict]:
    from gridmap.incidents.models import Category

    cats = list(session.scalars(select(Category).where(Category.active.is_(True)).order_by(Category.code)))
    by_id = {c.id: c for c in cats}
    out = []
    for c in cats:
        top = c
        while top.parent_id is not None and top.parent_id in by_id:
            top = by_id[top.parent_id]
        out.append({
            "service_code": c.code, "service_name": c.name,
            "description": f"{c.name}" + (f" ({c.name_en})" if c.name_en else ""),
            "metadata": False, "type": "realtime",
            "keywords": ",".join(k for k in (c.name_en, c.kind, c.code.rsplit(".", 1)[-1]) if k),
            "group": top.name,
        })
    return out


@bp.get("/services.json")
def services_json():
    return jsonify(services(get_session()))


@bp.get("/services/<code>.json")
def service_definition(code: str):
    # no service has metadata (attributes), so there is no definition to give
    raise Open311Error(404, f"service {code} has no attributes (metadata false)")


# ----------------------------------------------------------------------------- requests

def request_dict(case, lk) -> dict:
    agency = None
    if case.assignee_department_id:
        agency = lk.departments.get(case.assignee_department_id, (None, None))[1]
    for aid in (case.community_id, case.street_id, case.district_id):
        if agency is None and aid:
            agency = lk.areas.get(aid, (None, None))[1]
    return {
        "service_request_id": case.number or str(case.id),
        "status": "closed" if case.status in CLOSED else "open",
        "status_notes": case.status,
        "service_name": lk.categories.get(case.category_id, (None, None))[1],
        "service_code": lk.categories.get(case.category_id, (None, None))[0],
        "description": case.description,
        "agency_responsible": agency,
        "service_notice": None,
        "requested_datetime": _iso(case.reported_at),
        "updated_datetime": _iso(case.updated_at),
        "expected_datetime": _iso(case.deadline_at),
        "address": case.address,
        "address_id": case.address_id,
        "zipcode": None,
        "lat": case.lat,
        "long": case.lon,
        "media_url": None,
    }


def find_requests(session, actor, params: dict) -> list:
    from gridmap.accounts.scope import case_filter
    from gridmap.incidents.models import Case, Category

    q = select(Case).where(case_filter(session, actor))
    ids = params.get("service_request_id")
    if ids:
        wanted = [i.strip() for i in str(ids).split(",") if i.strip()]
        q = q.where(Case.number.in_(wanted))
    code = params.get("service_code")
    if code:
        codes = [c.strip() for c in str(code).split(",") if c.strip()]
        q = q.where(Case.category_id.in_(select(Category.id).where(Category.code.in_(codes))))
    status = params.get("status")
    if status:
        st = {s.strip().lower() for s in str(status).split(",") if s.strip()}
        if not st <= {"open", "closed"}:
            raise Open311Error(400, "status must be open, closed or open,closed")
        if st == {"open"}:
            q = q.where(Case.status.not_in(CLOSED))
        elif st == {"closed"}:
            q = q.where(Case.status.in_(CLOSED))
    start, end = params.get("start_date"), params.get("end_date")
    if not ids:
        end_t = _parse_date(end, "end_date") if end else None
        start_t = _parse_date(start, "start_date") if start else None
        if start_t is None and end_t is None:
            start_t = utcnow() - dt.timedelta(days=DEFAULT_WINDOW_DAYS)
        if start_t is not None:
            q = q.where(Case.reported_at >= start_t)
        if end_t is not None:
            q = q.where(Case.reported_at <= end_t)
        if start_t and end_t and start_t > end_t:
            raise Open311Error(400, "start_date is after end_date")
    return list(session.scalars(q.order_by(Case.reported_at.desc(), Case.id.desc()).limit(MAX_REQUESTS)))


@bp.get("/requests.json")
def requests_json():
    from gridmap.incidents.queries import Lookups

    actor = _actor()
    session = get_session()
    cases = find_requests(session, actor, dict(request.args.items()))
    lk = Lookups.for_cases(session, cases)
    return jsonify([request_dict(c, lk) for c in cases])


@bp.get("/requests/<rid>.json")
def request_json(rid: str):
    from gridmap.accounts.scope import case_filter
    from gridmap.incidents.models import Case
    from gridmap.incidents.queries import Lookups

    actor = _actor()
    session = get_session()
    cond = Case.id == int(rid) if is_id_text(rid) else Case.number == rid[:40]
    case = session.scalar(select(Case).where(cond, case_filter(session, actor)))
    if case is None:
        raise Open311Error(404, f"no service request {rid}")
    return jsonify([request_dict(case, Lookups.for_cases(session, [case]))])


def report_from_params(p: dict) -> dict:
    """The intake report for GeoReport POST parameters."""
    def s(key):
        v = p.get(key)
        return v.strip() if isinstance(v, str) else v

    for key in ("lat", "long"):
        if p.get(key) not in (None, "") and not isinstance(p.get(key), (str, int, float)):
            raise Open311Error(400, f"{key} must be a number")
    has_point = p.get("lat") not in (None, "") or p.get("long") not in (None, "")
    if has_point:
        if p.get("lat") in (None, "") or p.get("long") in (None, ""):
            raise Open311Error(400, "give both lat and long (WGS84), or an address_string")
        location = {"lon": p.get("long"), "lat": p.get("lat"), "crs": "wgs84"}
        if s("address_string"):
            location["address"] = s("address_string")
    elif s("address_string"):
        location = {"address": s("address_string")}
    else:
        raise Open311Error(400, "a location is required: lat and long (WGS84), or address_string")
    first, last = s("first_name") or "", s("last_name") or ""
    name = f"{last}{first}" if any("\u4e00" <= ch <= "\u9fff" for ch in last + first) else f"{first} {last}".strip()
    reporter = {}
    if name:
        reporter["name"] = name
    if s("phone"):
        reporter["phone"] = s("phone")
    # email is not stored (cases have no column for it): the reporter is reached by phone
    return {"category": s("service_code"), "description": s("description"), "location": location,
            "reporter": reporter or None}


@bp.post("/requests.json")
def create_request():
    from gridmap.incidents.intake import IntakeError, create_case

    actor = _actor()
    session = get_session()
    params = _params()
    if not params.get("service_code"):
        raise Open311Error(400, "service_code is required (see services.json)")
    data = report_from_params(params)
    try:
        case = create_case(session, data, actor, source="open311",
                           auto_dispatch=current_app.config["GRIDMAP_AUTO_DISPATCH"])
        session.commit()
    except IntakeError as e:
        session.rollback()
        field = {"location.lon": "long", "location.lat": "lat", "category": "service_code",
                 "location": "lat/long", "location.address": "address_string",
                 "reporter.phone": "phone", "reporter.name": "first_name/last_name"}.get(e.field, e.field)
        message = e.message.replace("location.lon", "long").replace("location.lat", "lat")
        raise Open311Error(400, f"{field}: {message}") from None
    except Exception:
        session.rollback()
        raise
    notice = STATUS_NOTICE.get(case.status, case.status)
    if case.placement == "queue":
        notice = "已受理，地址待人工定位 received; the address will be placed by hand"
    resp = jsonify([{"service_request_id": case.number, "service_notice": notice, "account_id": None}])
    resp.status_code = 201
    return resp
