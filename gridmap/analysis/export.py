"""Exports of cases and hazards as CSV, GeoJSON or GeoPackage, within the reader's scope.

Owns: the exported columns (no reporter names or phones: exports leave the system), the filters
(cases: those of ``incidents.queries``; hazards: those of ``hazards.service``), the row cap and
the file formats. CSV is UTF-8 with a byte-order mark so that Excel opens Chinese text correctly;
times are local (Asia/Shanghai) ISO 8601 with their offset. GeoPackage goes through geopandas /
pyogrio into a temporary file.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
from zoneinfo import ZoneInfo

import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from gridmap.accounts.actor import Actor
from gridmap.analysis.common import AnalysisError
from gridmap.textio import formula_safe_row
from gridmap.boundaries.models import Area
from gridmap.db import utcnow

KINDS = ("cases", "hazards")
FORMATS = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json",
           "gpkg": "application/geopackage+sqlite3"}
MAX_ROWS = 200_000
TZ = ZoneInfo("Asia/Shanghai")


def _t(v):
    return None if v is None else v.astimezone(TZ).isoformat(timespec="seconds")


def _case_records(session: Session, actor: Actor, filters: dict, limit: int):
    from gridmap.incidents.models import Case, Category
    from gridmap.incidents.queries import QueryError, filter_clauses

    try:
        where = filter_clauses(session, actor, filters)
    except QueryError as e:
        raise AnalysisError(e.field, e.message) from None
    cell, comm, street = aliased(Area), aliased(Area), aliased(Area)
    rows = session.execute(
        select(Case.id, Case.number, Case.source, Category.code.label("category"), Category.name.label("category_name"),
               Case.title, Case.description, Case.status, Case.urgent, Case.supervised, Case.address,
               cell.code.label("cell"), comm.code.label("community"), street.code.label("street"),
               Case.reported_at, Case.dispatched_at, Case.deadline_at, Case.handled_at, Case.closed_at,
               Case.closed_on_time, Case.overdue, Case.satisfaction, Case.lon, Case.lat)
        .join(Category, Category.id == Case.category_id)
        .outerjoin(cell, cell.id == Case.cell_id).outerjoin(comm, comm.id == Case.community_id)
        .outerjoin(street, street.id == Case.street_id)
        .where(*where).order_by(Case.reported_at, Case.id).limit(limit + 1)).mappings().all()
    out = []
    for r in rows:
        d = dict(r)
        for k in ("reported_at", "dispatched_at", "deadline_at", "handled_at", "closed_at"):
            d[k] = _t(d[k])
        out.append(d)
    geoms = [shapely.Point(r["lon"], r["lat"]) if r["lon"] is not None else None for r in out]
    return out, geoms


def _hazard_records(session: Session, actor: Actor, filters: dict, limit: int):
    from gridmap.hazards.models import Hazard, HazardType
    from gridmap.hazards.service import HazardError, filter_clauses

    try:
        where = filter_clauses(session, actor, filters)
    except HazardError as e:
        raise AnalysisError(e.field, e.message) from None
    cell, comm, street = aliased(Area), aliased(Area), aliased(Area)
    now = utcnow()
    rows = session.execute(
        select(Hazard.id, Hazard.number, HazardType.code.label("type"), HazardType.name.label("type_name"),
               Hazard.title, Hazard.description, Hazard.grade, Hazard.accident_grade, Hazard.status, Hazard.geom_kind, Hazard.address,
               cell.code.label("cell"), comm.code.label("community"), street.code.label("street"),
               Hazard.responsible_unit, Hazard.supervised, Hazard.found_at, Hazard.rectify_deadline, Hazard.rectified_at,
               Hazard.verified_at, Hazard.closed_at, Hazard.rework_count, Hazard.lon, Hazard.lat,
               func.ST_AsBinary(Hazard.geom).label("wkb"))
        .join(HazardType, HazardType.id == Hazard.type_id)
        .outerjoin(cell, cell.id == Hazard.cell_id).outerjoin(comm, comm.id == Hazard.community_id)
        .outerjoin(street, street.id == Hazard.street_id)
        .where(*where).order_by(Hazard.found_at, Hazard.id).limit(limit + 1)).mappings().all()
    out, geoms = [], []
    for r in rows:
        d = dict(r)
        geoms.append(shapely.from_wkb(bytes(d.pop("wkb"))))
        d["overdue"] = bool(d["status"] == "open" and d["rectify_deadline"] is not None and d["rectify_deadline"] < now)
        for k in ("found_at", "rectify_deadline", "rectified_at", "verified_at", "closed_at"):
            d[k] = _t(d[k])
        out.append(d)
    return out, geoms


def export(session: Session, actor: Actor, *, kind: str, fmt: str, filters: dict | None = None,
           limit: int = MAX_ROWS, encoding: str | None = None) -> tuple[bytes, str, str, int]:
    """(content, mimetype, filename, rows). Refuses (AnalysisError) when more than ``limit`` rows match.
    CSV is UTF-8 with a BOM unless ``encoding`` says utf-8 or gbk."""
    from gridmap.textio import csv_output_encoding, encode_csv

    try:
        csv_enc = csv_output_encoding(encoding)
    except ValueError as e:
        raise AnalysisError("encoding", str(e)) from None
    if kind not in KINDS:
        raise AnalysisError("kind", f"kind must be one of {', '.join(KINDS)}, got {str(kind)[:20]!r}")
    if fmt not in FORMATS:
        raise AnalysisError("format", f"format must be one of {', '.join(FORMATS)}, got {str(fmt)[:20]!r}")
    records, geoms = (_case_records if kind == "cases" else _hazard_records)(session, actor, dict(filters or {}), limit)
    if len(records) > limit:
        raise AnalysisError("limit", f"more than {limit:,} {kind} match: narrow the filters (area, from, to, status)")
    stamp = dt.datetime.now(TZ).strftime("%Y%m%d-%H%M")
    filename = f"{kind}-{stamp}.{fmt}"
    cols = list(records[0].keys()) if records else (["id", "number"] if kind == "cases" else ["id", "number"])
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\r\n")
        w.writeheader()
        w.writerows(formula_safe_row(r) for r in records)  # OWASP: no cell a spreadsheet would run
        mime = FORMATS[fmt] if csv_enc != "gbk" else "text/csv; charset=gbk"
        return encode_csv(buf.getvalue(), csv_enc), mime, filename, len(records)
    if fmt == "geojson":
        feats = [{"type": "Feature", "id": r["id"], "properties": r,
                  "geometry": json.loads(shapely.to_geojson(g)) if g is not None else None}
                 for r, g in zip(records, geoms)]
        body = json.dumps({"type": "FeatureCollection", "kind": kind, "count": len(feats), "features": feats},
                          ensure_ascii=False, default=str)
        return body.encode("utf-8"), FORMATS[fmt], filename, len(records)
    import geopandas as gpd
    import pandas as pd

    gdf = gpd.GeoDataFrame(pd.DataFrame(records, columns=cols), geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    with tempfile.TemporaryDirectory(prefix="gm-export-") as tmp:
        path = os.path.join(tmp, filename)
        gdf.to_file(path, driver="GPKG", layer=kind, engine="pyogrio")
        with open(path, "rb") as fh:
            data = fh.read()
    return data, FORMATS[fmt], filename, len(records)
