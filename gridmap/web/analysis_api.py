"""JSON API for analysis (``/api/v1/…``): thin views over gridmap.analysis.

Owns: parsing parameters and shaping answers. Every view needs a login and analyses only the
cases (and areas, hazards) in the caller's scope. Dates are local YYYY-MM-DD, both included;
without them the last 30 days (trend: 365). A period without cases answers 200 with an empty
result and a ``message``.

  GET /api/v1/hotspots?level=cell|community|street&category=&from=&to=&area=&permutations=&simplify_m=
        &correction=fdr|none&measure=count|rate
        GeoJSON FeatureCollection: per area count, gi_z, p_value (two-sided permutation), q_value
        (Benjamini–Hochberg, on by default), direction, class (hot_99 … cold_90, not_significant)
  GET /api/v1/rates?level=cell|community|street|district&category=&from=&to=&area=
  GET /api/v1/repeats?category=&from=&to=&area=&radius_m=50&min_count=3&window_days=
  GET /api/v1/trend?period=day|week|month&by=none|category|cell|community|street&category=&from=&to=&area=
  GET /api/v1/density?category=&from=&to=&area=&bbox=&cell_m=100&bandwidth_m=300   (the heat view)
  GET /api/v1/scorecards?level=worker|cell|community|street&from=&to=&top_n=&min_due=&red_min=&black_max=
        &weight_on_time=&weight_satisfaction=&exclude_extended=   (defaults from GRIDMAP_SCORECARD_*)
  GET /api/v1/export?kind=cases|hazards&format=csv|geojson|gpkg&…filters   (a file download)
  GET /api/v1/ledgers/<kind>?area=CODE&from=&to=&format=xlsx|html|pdf     (cases, hazards, disputes, visits, all)
"""
from __future__ import annotations

import io
import math

from flask import Blueprint, current_app, jsonify, request, send_file

from gridmap import get_session
from gridmap.web.auth import current_actor, login_required
from gridmap.web.errors import APIError

bp = Blueprint("analysis_api", __name__, url_prefix="/api/v1")

_PERIOD = ("from", "to", "category", "area")


def _check(allowed) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise APIError(f"unknown parameter {unknown[0]!r}; this endpoint takes {', '.join(allowed)}",
                       field=unknown[0])


def _num(name: str, default, lo, hi, *, integer: bool = False):
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        v = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise APIError(f"parameter {name!r} must be {kind}, got {raw[:20]!r}", field=name) from None
    if not (isinstance(v, int) or math.isfinite(v)) or not lo <= v <= hi:
        raise APIError(f"parameter {name!r} must be from {lo} to {hi}, got {raw[:20]}", field=name)
    return v


def _flag(name: str, default: bool | None = None) -> bool | None:
    raw = (request.args.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw not in ("1", "0", "true", "false", "yes", "no"):
        raise APIError(f"parameter {name!r} must be 1 or 0", field=name)
    return raw in ("1", "true", "yes")


def _run(fn, **kw):
    from gridmap.analysis.common import AnalysisError

    session = get_session()
    try:
        return fn(session, current_actor(), **kw)
    except AnalysisError as e:
        raise APIError(e.message, e.status, field=e.field) from None


def _common() -> dict:
    return {"date_from": request.args.get("from"), "date_to": request.args.get("to"),
            "category": request.args.get("category") or None, "area": request.args.get("area") or None}


@bp.get("/hotspots")
@login_required
def hotspots():
    from gridmap.analysis.hotspots import PERMUTATIONS, hotspots as run

    _check(_PERIOD + ("level", "permutations", "simplify_m", "correction", "measure"))
    out = _run(run, level=request.args.get("level") or "cell", **_common(),
               permutations=_num("permutations", PERMUTATIONS, 0, 9999, integer=True),
               simplify_m=_num("simplify_m", 0.0, 0, 1000),
               correction=(request.args.get("correction") or "fdr").strip(),
               measure=(request.args.get("measure") or "count").strip())
    return jsonify(out)


@bp.get("/rates")
@login_required
def rates():
    from gridmap.analysis.rates import rates as run

    _check(_PERIOD + ("level",))
    return jsonify(_run(run, level=request.args.get("level") or "cell", **_common()))


@bp.get("/repeats")
@login_required
def repeats():
    from gridmap.analysis.repeats import repeats as run

    _check(_PERIOD + ("radius_m", "min_count", "window_days", "limit"))
    return jsonify(_run(run, **_common(), radius_m=_num("radius_m", 50.0, 1, 5000),
                        min_count=_num("min_count", 3, 2, 1000, integer=True),
                        window_days=_num("window_days", None, 1, 3660, integer=True),
                        limit=_num("limit", 500, 1, 5000, integer=True)))


@bp.get("/trend")
@login_required
def trend():
    from gridmap.analysis.rates import trend as run

    _check(_PERIOD + ("period", "by"))
    return jsonify(_run(run, unit=request.args.get("period") or "month", by=request.args.get("by") or "none",
                        **_common()))


@bp.get("/density")
@login_required
def density():
    from gridmap.analysis.hotspots import density as run
    from gridmap.web.geo_api import parse_bbox

    _check(_PERIOD + ("bbox", "cell_m", "bandwidth_m", "limit"))
    bbox = parse_bbox(request.args.get("bbox")) if request.args.get("bbox") else None
    return jsonify(_run(run, **_common(), bbox=bbox, cell_m=_num("cell_m", 100.0, 5, 50000),
                        bandwidth_m=_num("bandwidth_m", 300.0, 5, 100000),
                        limit=_num("limit", 20000, 1, 50000, integer=True)))


def _coerce(value, default):
    if isinstance(default, bool):
        return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")
    return type(default)(value)


def scorecard_config():
    """The app's GRIDMAP_SCORECARD_* defaults overridden by the query string."""
    from gridmap.analysis.scorecards import ScorecardConfig

    cfg = current_app.config
    base = ScorecardConfig()
    defaults = {f: cfg.get(f"GRIDMAP_SCORECARD_{f.upper()}") for f in base.__dataclass_fields__}
    base = base.with_overrides(**{k: _coerce(v, getattr(base, k)) for k, v in defaults.items() if v is not None})
    return base.with_overrides(
        weight_on_time=_num("weight_on_time", None, 0, 1), weight_satisfaction=_num("weight_satisfaction", None, 0, 1),
        min_due=_num("min_due", None, 1, 100000, integer=True), top_n=_num("top_n", None, 1, 100, integer=True),
        red_min=_num("red_min", None, 0, 1), black_max=_num("black_max", None, 0, 1),
        exclude_extended=_flag("exclude_extended"))


@bp.get("/scorecards")
@login_required
def scorecards():
    from gridmap.analysis.common import AnalysisError
    from gridmap.analysis.scorecards import scorecards as run

    _check(("level", "from", "to", "weight_on_time", "weight_satisfaction", "min_due", "top_n", "red_min",
            "black_max", "exclude_extended"))
    try:
        cfg = scorecard_config()
    except AnalysisError as e:
        raise APIError(e.message, e.status, field=e.field) from None
    return jsonify(_run(run, level=request.args.get("level") or "cell", date_from=request.args.get("from"),
                        date_to=request.args.get("to"), config=cfg))


@bp.get("/export")
@login_required
def export():
    from gridmap.analysis.export import MAX_ROWS, export as run
    from gridmap.hazards.service import FILTER_KEYS as HAZARD_FILTERS
    from gridmap.incidents.queries import FILTER_KEYS as CASE_FILTERS

    kind = (request.args.get("kind") or "").strip()
    fmt = (request.args.get("format") or "csv").strip()
    keys = CASE_FILTERS if kind == "cases" else HAZARD_FILTERS if kind == "hazards" else ()
    _check(("kind", "format", "limit", "encoding") + tuple(keys))
    filters = {k: request.args.get(k) for k in keys if request.args.get(k) not in (None, "")}
    data, mimetype, filename, n = _run(run, kind=kind, fmt=fmt, filters=filters,
                                       limit=_num("limit", MAX_ROWS, 1, MAX_ROWS, integer=True),
                                       encoding=request.args.get("encoding"))
    resp = send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=filename)
    resp.headers["X-Gridmap-Rows"] = str(n)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@bp.get("/ledgers/<kind>")
@login_required
def ledger(kind: str):
    import os
    import tempfile

    from gridmap.analysis.common import AnalysisError
    from gridmap.analysis.ledgers import build_ledgers, render_html, write_ledgers, write_xlsx

    _check(("area", "from", "to", "format"))
    fmt = (request.args.get("format") or "xlsx").strip()
    if fmt not in ("xlsx", "html", "pdf"):
        raise APIError("format must be xlsx, html or pdf", field="format")
    if not request.args.get("area"):
        raise APIError("missing parameter 'area' (the code of a district, street, community or cell)", field="area")
    session = get_session()
    try:
        ledgers = build_ledgers(session, kind, area=request.args["area"], date_from=request.args.get("from"),
                                date_to=request.args.get("to"), actor=current_actor())
        name = f"{ledgers[0].area.code}-{kind}-{ledgers[0].period.date_from}-{ledgers[0].period.date_to}.{fmt}"
        _audit_ledger(session, kind, ledgers[0], fmt)
        if fmt == "html":
            from gridmap.web.views.base import add_nonce  # the ledger's own <style> runs under the CSP

            return current_app.response_class(str(add_nonce(render_html(session, ledgers))), mimetype="text/html")
        buf = io.BytesIO()
        if fmt == "xlsx":
            write_xlsx(ledgers, buf)
            mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            with tempfile.TemporaryDirectory(prefix="gm-ledger-") as tmp:
                path = os.path.join(tmp, "ledger.pdf")
                write_ledgers(session, ledgers, path)
                with open(path, "rb") as fh:
                    buf.write(fh.read())
            mimetype = "application/pdf"
    except AnalysisError as e:
        raise APIError(e.message, e.status, field=e.field) from None
    buf.seek(0)
    return send_file(buf, mimetype=mimetype, as_attachment=True, download_name=name)


def _audit_ledger(session, kind: str, ledger, fmt: str) -> None:
    """Ledgers name parties, reporters and workers: every download goes to the audit log."""
    from gridmap import audit

    audit.record_for(session, "export.personal", current_actor(), target=f"ledger {kind} {ledger.area.code}",
                     address=request.remote_addr, kind=kind, area=ledger.area.code, format=fmt,
                     date_from=ledger.period.date_from, date_to=ledger.period.date_to)
    session.commit()


__all__ = ["bp", "scorecard_config"]
