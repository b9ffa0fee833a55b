"""JSON API for case metrics: ``GET /api/v1/metrics``, a thin view over gridmap.incidents.metrics.

Owns: parsing the parameters and restricting the cases to the caller's scope. Every answer carries
the ``definitions`` of its metrics (what each denominator is).
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, request

from gridmap import get_session
from gridmap.accounts.scope import case_filter
from gridmap.incidents.metrics import GROUP_BY, MetricsError, compute_metrics, definitions
from gridmap.web.auth import current_actor, login_required
from gridmap.timebounds import OutOfRange, parse_day
from gridmap.web.errors import APIError

bp = Blueprint("metrics_api", __name__, url_prefix="/api/v1")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def _date_arg(name: str) -> dt.date | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return parse_day(raw, name)
    except OutOfRange as e:
        raise APIError(str(e), field=name) from None
    except ValueError:
        raise APIError(f"parameter {name!r} must be a date YYYY-MM-DD, got {raw[:40]!r}") from None


@bp.get("/metrics")
@login_required
def metrics():
    """GET /api/v1/metrics?group_by=none|worker|cell|community|street|department (or ``group=``)
    &from=YYYY-MM-DD&to=YYYY-MM-DD[&exclude_extended=1]. Without from/to: the current month up to
    today (local time)."""
    name = "group_by" if request.args.get("group_by") else "group"
    group_by = (request.args.get(name) or "none").strip()
    if group_by not in GROUP_BY:
        raise APIError(f"parameter {name!r} must be one of {', '.join(GROUP_BY)}, got {group_by[:40]!r}",
                       field=name)
    raw_ex = (request.args.get("exclude_extended") or "").strip().lower()
    if raw_ex not in _TRUE + _FALSE:
        raise APIError("parameter 'exclude_extended' must be 1/0 or true/false")
    exclude_extended = raw_ex in _TRUE
    tz = current_app.config.get("GRIDMAP_TIMEZONE", "Asia/Shanghai")
    date_to = _date_arg("to") or dt.datetime.now(ZoneInfo(tz)).date()
    date_from = _date_arg("from") or date_to.replace(day=1)
    session = get_session()
    actor = current_actor()
    try:
        rows = compute_metrics(session, group_by=group_by, date_from=date_from, date_to=date_to,
                               scope_filter=case_filter(session, actor), exclude_extended=exclude_extended, tz=tz)
    except MetricsError as e:
        raise APIError(str(e)) from None
    return jsonify({"group_by": group_by, "from": date_from.isoformat(), "to": date_to.isoformat(),
                    "timezone": tz, "exclude_extended": exclude_extended,
                    "definitions": definitions(exclude_extended), "rows": rows})
