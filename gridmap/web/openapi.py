"""The OpenAPI 3 description of the HTTP API, generated from the app's URL map: ``/api/v1/openapi.json``.

Owns: ``SPECS`` (per JSON-API route: summary, query parameters, request body, success answer) and
``openapi_document(app)``, which walks ``app.url_map`` for every rule under ``/api/`` and
``/open311/``, turns its converters into path parameters (``<int:id>`` → integer 1 … 2^31-1;
``<any(a, b)>`` → one literal path per alternative) and adds the route's entry from ``SPECS``. A route without an entry is
still described (path, method, generic answers) and listed under ``x-undocumented``, and
tests/test_openapi.py fails on it, so a new route cannot be left out. Errors are
``{"error": text, "field"?: name}`` (Open311: GeoReport's ``[{"code", "description"}]``).
Security: ``Authorization: Bearer <token>`` (Open311 also ``X-Api-Key``).
"""
from __future__ import annotations

import re

from werkzeug.routing import Rule

INT_MAX = 2**31 - 1
DATE = {"type": "string", "pattern": r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$",
        "description": "a local date YYYY-MM-DD"}
CODE = {"type": "string", "pattern": r"^[0-9]{6,15}$", "description": "an area code"}
BBOX = {"type": "string", "pattern": r"^1[12][0-9]\.[0-9]{1,3},[23][0-9]\.[0-9]{1,3},1[12][0-9]\.[0-9]{1,3},"
                                     r"[23][0-9]\.[0-9]{1,3}$", "description": "minlon,minlat,maxlon,maxlat (WGS84)"}
FLAG = {"type": "string", "enum": ["0", "1"]}
TEXT = {"type": "string", "maxLength": 200}
OBJECT = {"type": "object"}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"},
                                                                 "field": {"type": ["string", "null"]}}}
GEOREPORT_ERROR = {"type": "array", "items": {"type": "object", "required": ["code", "description"],
                                              "properties": {"code": {"type": "integer"},
                                                             "description": {"type": "string"}}}}
FEATURES = {"type": "object", "required": ["type", "features"],
            "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}}}
PAGED = {"type": "object", "required": ["items", "total"],
         "properties": {"items": {"type": "array"}, "total": {"type": "integer", "minimum": 0}}}
CASE = {"type": "object", "required": ["id", "status"],
        "properties": {"id": {"type": "integer"}, "status": {"type": "string"}}}
HAZARD = {"type": "object", "required": ["id", "status"],
          "properties": {"id": {"type": "integer"}, "status": {"type": "string"}}}
DRAFT = {"type": "object", "required": ["id", "status"],
         "properties": {"id": {"type": "integer"}, "status": {"type": "string"}}}
REQUESTS = {"type": "array", "items": {"type": "object", "required": ["service_request_id"],
                                       "properties": {"service_request_id": {"type": "string"}}}}
PERIOD = {"from": DATE, "to": DATE}
CASE_FILTERS = {"cell": CODE, "community": CODE, "street": CODE, "status": {"type": "string", "enum": [
    "open", "reported", "filed", "dispatched", "in_progress", "handled", "closed"]}, "category": TEXT,
    "bbox": BBOX, **PERIOD, "overdue": FLAG, "source": TEXT, "assignee": TEXT}
HAZARD_FILTERS = {"area": CODE, "status": TEXT, "type": TEXT, "severity": TEXT, "overdue": FLAG, **PERIOD,
                  "bbox": BBOX}
ANALYSIS = {**PERIOD, "category": TEXT, "area": CODE}
HAZARD_ANALYSIS = {"group": {"type": "string", "enum": ["none", "district", "street", "community", "cell"]},
                   **PERIOD, "area": CODE}
NOTIFICATIONS = {"type": "object", "required": ["items", "unread"],
                 "properties": {"items": {"type": "array"}, "unread": {"type": "integer", "minimum": 0},
                                "seen_at": {"type": ["string", "null"]}}}


def _int(lo: int = 0, hi: int = INT_MAX) -> dict:
    return {"type": "integer", "minimum": lo, "maximum": hi}


def _num(lo: float, hi: float) -> dict:
    return {"type": "number", "minimum": lo, "maximum": hi}


def op(summary: str, query: dict | None = None, body: dict | None = None, ok: dict | None = None,
       status: int = 200, media: str | dict = "application/json", required: tuple = (), form: bool = False) -> dict:
    """One route: ``media`` is the success media type (with ``ok`` its schema), or a dict media → schema."""
    return {"summary": summary, "query": query or {}, "body": body, "ok": ok or OBJECT, "status": status,
            "media": media, "required": required, "form": form}


def body(props: dict, required: tuple = ()) -> dict:
    return {"type": "object", "properties": props, "required": list(required)}


POINT = {"lon": _num(121.0, 124.0), "lat": _num(29.0, 31.5)}
CASE_NEW = body({"category": TEXT, "description": {"type": "string", "minLength": 1, "maxLength": 500},
                 **POINT, "address": TEXT, "urgent": {"type": "boolean"}, "title": TEXT},
                ("category", "description"))
ACTION = body({"action": {"type": "string", "enum": ["accept", "feedback", "submit", "verify_pass", "verify_fail",
                                                      "return", "park", "extend", "file", "dispatch", "reject"]},
               "comment": TEXT, "version": _int(0, 1000)}, ("action",))

#: (endpoint, method) → what the route takes and answers
SPECS: dict[tuple[str, str], dict] = {
    ("api.openapi", "GET"): op("This document.", ok={"type": "object", "required": ["openapi", "paths"]}),
    ("api.locate", "GET"): op("The cell (and its parents) of a point.", {**POINT, "crs": {
        "type": "string", "enum": ["wgs84", "gcj02", "bd09", "cgcs2000"]}}, required=("lon", "lat")),
    ("cases_api.create", "POST"): op("Report a case.", body=CASE_NEW, ok=CASE, status=201),
    ("cases_api.list_", "GET"): op("Cases in the caller's scope.", {**CASE_FILTERS, "page": _int(1, 1000),
                                                                      "per_page": _int(1, 200)}, ok=PAGED),
    ("cases_api.detail", "GET"): op("One case with its history.", ok=CASE),
    ("cases_api.action", "POST"): op("Take a step of the life-cycle.", body=ACTION, ok=CASE),
    ("cases_api.place", "POST"): op("Place a queued case by hand.", body=body(POINT, ("lon", "lat")), ok=CASE),
    ("cases_api.upload_photo", "POST"): op("Attach a photo (multipart field 'photo').", status=201, body=body(
        {"photo": {"type": "string", "format": "binary"}, "comment": TEXT}, ("photo",)), form=True),
    ("cases_api.get_photo", "GET"): op("A photo's file.", media="image/*", ok={"type": "string", "format": "binary"}),
    ("metrics_api.metrics", "GET"): op("Indicators (结案率 …) with their denominators.",
                                       {**PERIOD, "level": {"type": "string", "enum": ["cell", "community", "street",
                                                                                        "district"]}, "area": CODE}),
    ("geo_api.cells", "GET"): op("Areas in a bbox (GeoJSON).", {"bbox": BBOX, "level": {"type": "string", "enum": [
        "cell", "community", "street", "district"]}, "z": _int(0, 22), "limit": _int(1, 5000)},
        ok=FEATURES, required=("bbox",)),
    ("geo_api.cases", "GET"): op("Case points in a bbox (GeoJSON).", {"bbox": BBOX, **PERIOD, "category": TEXT,
                                                                       "limit": _int(1, 5000), "overdue": FLAG},
                                 ok=FEATURES, required=("bbox",)),
    ("geo_api.heat", "GET"): op("Heat-map weights in a bbox.", {"bbox": BBOX, **PERIOD, "limit": _int(1, 5000)},
                                required=("bbox",), ok={"type": ["object", "array"]}),
    ("geo_api.basemap", "GET"): op("The offline vector basemap: district outlines and labels (GeoJSON).", {
        "bbox": BBOX, "z": _int(0, 24)}, ok=FEATURES, required=("bbox",)),
    ("geo_api.extent", "GET"): op("The caller's own area as a bbox.", ok={"type": "object", "required": ["bbox"]}),
    ("geo_api.mvt", "GET"): op("A vector tile of current cells (PostGIS only).", {"level": {
        "type": "string", "enum": ["cell", "community", "street", "district"]}},
        media="application/vnd.mapbox-vector-tile", ok={"type": "string", "format": "binary"}),
    ("hazards_api.list_", "GET"): op("Hazards in scope.", {**HAZARD_FILTERS, "page": _int(1, 1000),
                                                           "per_page": _int(1, 200)}, ok=PAGED),
    ("hazards_api.create", "POST"): op("Register a hazard.", body=body({"type": TEXT, "title": TEXT, **POINT,
                                                                        "severity": TEXT, "description": TEXT},
                                                                       ("type", "title")), ok=HAZARD, status=201),
    ("hazards_api.get", "GET"): op("One hazard.", ok=HAZARD),
    ("hazards_api.action", "POST"): op("Rectify, verify or close.", body=body(
        {"comment": TEXT, "passed": {"type": "boolean"}, "version": _int(0, 1000)}), ok=HAZARD),
    ("hazards_api.link", "POST"): op("Link a case.", body=body({"case_id": _int(1), "relation": TEXT},
                                                               ("case_id",)), ok=HAZARD),
    ("hazards_api.schedule", "POST"): op("An inspection schedule.", body=body(
        {"interval_days": _int(0, 3650), "start": DATE, "end": DATE}), status=201),
    ("hazards_api.geo", "GET"): op("Hazards in a bbox (GeoJSON).", {"bbox": BBOX, "limit": _int(1, 5000)},
                                   ok=FEATURES, required=("bbox",)),
    ("hazards_api.inspections", "GET"): op("Inspection tasks.", {"due": FLAG}),
    ("hazards_api.task_done", "POST"): op("Record an inspection.", body=body(
        {"result": {"type": "string", "enum": ["ok", "hazard_found", "not_reachable"]}, "comment": TEXT},
        ("result",))),
    ("hazards_api.types", "GET"): op("Hazard types.", ok={"type": "object", "required": ["types"]}),
    ("hazards_api.manage", "POST"): op("Assign the responsible unit (head and up), extend the deadline (head and up) "
                                       "or supervise (督办, street and up).", body=body(
        {"unit": TEXT, "person": TEXT, "comment": TEXT, "deadline": TEXT, "reason": TEXT,
         "version": _int(0, 1000)}), ok=HAZARD),
    ("hazards_api.indicators", "GET"): op("Hazard indicators of a period per group, by grade and type.", {
        **HAZARD_ANALYSIS}),
    ("hazards_api.compliance", "GET"): op("Inspection compliance of a period per group.", {**HAZARD_ANALYSIS}),
    ("fieldwork_api.tasks", "GET"): op("The caller's tasks, overdue first, with counts per kind.", ok={
        "type": "object", "required": ["items", "counts"], "properties": {"items": {"type": "array"},
                                                                          "counts": OBJECT}}),
    ("fieldwork_api.notifications", "GET"): op("The caller's notifications; 'unread' is the badge.", ok=NOTIFICATIONS),
    ("fieldwork_api.notifications_seen", "POST"): op("Everything up to now (or 'at') has been seen.", body=body({
        "at": {"type": "string", "format": "date-time", "description": "an ISO time with a time zone"}}), ok={
        "type": "object", "required": ["seen_at", "unread"], "properties": {
            "seen_at": {"type": "string"}, "unread": {"type": "integer", "minimum": 0}}}),
    ("registry_api.summary", "GET"): op("Registry counts per area in scope.", {"level": {
        "type": "string", "enum": ["cell", "community", "street", "district"]}}),
    ("registry_api.buildings_geo", "GET"): op("Buildings in a bbox (GeoJSON points).", {"bbox": BBOX},
                                              ok=FEATURES, required=("bbox",)),
    ("registry_api.list_", "GET"): op("Registry records in scope (masked).", {
        "cell": CODE, "community": CODE, "q": {"type": "string", "maxLength": 100},
        "tag": {"type": "string", "maxLength": 40}, "household": _int(1), "building": _int(1),
        "page": _int(1, 100000), "per_page": _int(1, 200)}, ok={
        "type": "object", "required": ["kind", "total", "items"], "properties": {
            "kind": {"type": "string"}, "total": {"type": "integer", "minimum": 0}, "items": {"type": "array"}}}),
    ("registry_api.export", "GET"): op("Registry records in scope as CSV (street and up; logged).", {
        "purpose": {"type": "string", "maxLength": 500}, "whole": {"type": "string", "enum": ["0", "1", "true"]}},
        media="text/csv", ok={"type": "string"}),
    ("registry_api.detail", "GET"): op("One registry record (masked).", ok={"type": "object", "required": ["id"]}),
    ("registry_api.reveal", "POST"): op("A person's or organisation's identity number and phone whole (street and "
                                        "up; logged).", body=body({"purpose": {"type": "string", "minLength": 1,
                                                                              "maxLength": 500}}, ("purpose",)),
                                        ok={"type": "object", "required": ["id"]}),
    ("boundaries_api.create_or_extend", "POST"): op("Start or extend a boundary draft.", body=body(
        {"operation": {"type": "string", "enum": ["split", "merge", "move_edge", "reassign", "replace_cells"]},
         "cell": CODE, "cells": {"type": "array", "items": CODE, "maxItems": 10}, "draft_id": _int(1),
         "version": _int(0, 1000)}, ("operation",)), ok=DRAFT, status=201),
    ("boundaries_api.list_", "GET"): op("Drafts in scope.", {"status": {"type": "string", "enum": [
        "draft", "submitted", "published", "rejected"]}}, ok={"type": "object", "required": ["drafts"]}),
    ("boundaries_api.show", "GET"): op("One draft with impact and problems.", ok=DRAFT),
    ("boundaries_api.submit", "POST"): op("Submit a draft.", body=body({"version": _int(0, 1000)}), ok=DRAFT),
    ("boundaries_api.publish", "POST"): op("Publish a draft.", body=body({"reason": TEXT, "version": _int(0, 1000)},
                                                                        ("reason",)), ok=DRAFT),
    ("boundaries_api.reject", "POST"): op("Reject a draft.", body=body({"reason": TEXT, "version": _int(0, 1000)},
                                                                      ("reason",)), ok=DRAFT),
    ("boundaries_api.diff_view", "GET"): op("What changed between two times.", PERIOD, required=("from",)),
    ("boundaries_api.balance_view", "GET"): op("Households per cell against the target band.", {
        "community": CODE, "street": CODE, "target_min": _int(1, 10000), "target_max": _int(1, 10000)}),
    ("analysis_api.hotspots", "GET"): op("Gi* hot spots (GeoJSON).", {**ANALYSIS, "level": {
        "type": "string", "enum": ["cell", "community", "street"]}, "permutations": _int(0, 999)}, ok=FEATURES),
    ("analysis_api.rates", "GET"): op("Cases per 1,000 households.", {**ANALYSIS, "level": {
        "type": "string", "enum": ["cell", "community", "street", "district"]}}),
    ("analysis_api.repeats", "GET"): op("Repeated cases at one place.", {**ANALYSIS, "radius_m": _int(1, 500),
                                                                           "min_count": _int(2, 50)}),
    ("analysis_api.trend", "GET"): op("Cases per period.", {**ANALYSIS, "period": {"type": "string", "enum": [
        "day", "week", "month"]}, "by": {"type": "string", "enum": ["none", "category", "cell", "community",
                                                                    "street"]}}),
    ("analysis_api.density", "GET"): op("Kernel density (the heat view).", {**ANALYSIS, "cell_m": _int(50, 1000),
                                                                            "bandwidth_m": _int(50, 2000)}),
    ("analysis_api.scorecards", "GET"): op("Scorecards of workers, cells, communities, streets.", {**PERIOD, "level": {
        "type": "string", "enum": ["worker", "cell", "community", "street"]}, "top_n": _int(1, 100)}),
    ("analysis_api.export", "GET"): op("Cases or hazards as a file.", {"kind": {"type": "string", "enum": [
        "cases", "hazards"]}, "format": {"type": "string", "enum": ["csv", "geojson", "gpkg"]}, **PERIOD,
        "limit": _int(1, 1000)}, required=("kind",), media={
        "text/csv": {"type": "string"}, "application/geo+json": FEATURES,
        "application/geopackage+sqlite3": {"type": "string", "format": "binary"}}),
    ("analysis_api.ledger", "GET"): op("A ledger (台账) of an area.", {"area": CODE, **PERIOD, "format": {
        "type": "string", "enum": ["xlsx", "html"]}}, required=("area",), media={
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"type": "string", "format": "binary"},
        "text/html": {"type": "string"}}),
    ("open311.services_json", "GET"): op("GeoReport services (categories).", ok={"type": "array"}),
    ("open311.service_definition", "GET"): op("A service's attributes (none have any: 404).", ok=OBJECT),
    ("open311.requests_json", "GET"): op("GeoReport requests in scope.", {"service_code": TEXT, "status": {
        "type": "string", "enum": ["open", "closed", "open,closed"]}, "start_date": DATE, "end_date": DATE},
        ok=REQUESTS),
    ("open311.request_json", "GET"): op("One GeoReport request.", ok=REQUESTS),
    ("open311.create_request", "POST"): op("Report through GeoReport.", body=body({
        "service_code": TEXT, **POINT, "description": {"type": "string", "minLength": 1, "maxLength": 500},
        "address_string": TEXT}, ("service_code",)), ok=REQUESTS, status=201),
}

_CONVERTER = re.compile(r"<(?:(?P<conv>[a-zA-Z_]+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")


def _paths(rule: Rule) -> list[tuple[str, list[dict]]]:
    """``/cases/<int:case_id>`` → [(``/cases/{case_id}``, its path parameters)]. An ``<any(a, b):x>``
    segment becomes one literal path per alternative (``…/a``, ``…/b``): two rules that differ only
    in their alternatives (``/hazards/<id>/<any(rectify, …):action>`` and ``…/<any(assign, …):action>``)
    would otherwise share one OpenAPI path and one operation would hide the other."""
    m = next((m for m in _CONVERTER.finditer(rule.rule) if m.group("conv") == "any"), None)
    if m is None:
        return [_path(rule.rule)]
    alts = [a.strip().strip("'\"") for a in (m.group("args") or "").split(",") if a.strip()]
    return [_path(rule.rule[:m.start()] + alt + rule.rule[m.end():]) for alt in alts]


def _path(rule: str) -> tuple[str, list[dict]]:
    """``/cases/<int:case_id>`` → (``/cases/{case_id}``, its path parameters)."""
    params = []

    def repl(m):
        conv, args, name = m.group("conv") or "default", m.group("args"), m.group("name")
        if conv == "int":
            schema = _int(1) if name not in ("z", "x", "y") else _int(0, 22 if name == "z" else 4194303)
        elif conv == "any":
            schema = {"type": "string", "enum": [a.strip().strip("'\"") for a in (args or "").split(",")]}
        else:
            schema = {"type": "string", "pattern": r"^[0-9A-Za-z._-]{1,40}$"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return _CONVERTER.sub(repl, rule), params


def api_rules(app) -> list[tuple[Rule, str]]:
    """Every (rule, method) of the JSON APIs (``/api/…`` and ``/open311/…``)."""
    return sorted(((r, m) for r in app.url_map.iter_rules() if r.rule.startswith(("/api/", "/open311/"))
                   for m in r.methods - {"HEAD", "OPTIONS"}), key=lambda x: (x[0].rule, x[1]))


def _operation(rule: Rule, method: str, spec: dict | None, path: str, params: list[dict],
               suffix: str = "") -> tuple[str, dict]:
    georeport = rule.rule.startswith("/open311/")
    error = {"application/json": {"schema": GEOREPORT_ERROR if georeport else ERROR}}
    spec = spec or op(f"{method} {path}")
    for name, schema in spec["query"].items():
        params.append({"name": name, "in": "query", "required": name in spec["required"], "schema": schema})
    content = (spec["media"] if isinstance(spec["media"], dict)
               else {spec["media"]: {"schema": spec["ok"]}})
    content = {m: (v if "schema" in v else {"schema": v}) for m, v in content.items()}
    out = {
        "operationId": f"{rule.endpoint}.{method.lower()}{suffix}",
        "summary": spec["summary"],
        "parameters": params,
        "responses": {
            str(spec["status"]): {"description": "success", "content": content},
            "default": {"description": "refused (4xx): the message names the parameter", "content": error},
        },
    }
    if spec["status"] != 200:  # an existing object answers 200 (a draft extended, a request found)
        out["responses"]["200"] = {"description": "success", "content": content}
    if spec["body"] is not None:
        media = "multipart/form-data" if spec["form"] else "application/json"
        out["requestBody"] = {"required": True, "content": {media: {"schema": spec["body"]}}}
    if rule.endpoint not in ("api.openapi", "open311.services_json", "open311.service_definition"):
        out["security"] = [{"bearer": []}] + ([{"apiKey": []}] if georeport else [])
    return path, out


def openapi_document(app) -> dict:
    paths: dict[str, dict] = {}
    undocumented = []
    for rule, method in api_rules(app):
        spec = SPECS.get((rule.endpoint, method))
        if spec is None:
            undocumented.append(f"{method} {rule.rule}")
        variants = _paths(rule)
        for path, params in variants:
            suffix = "." + path.rsplit("/", 1)[-1] if len(variants) > 1 else ""
            path, operation = _operation(rule, method, spec, path, params, suffix)
            paths.setdefault(path, {})[method.lower()] = operation
    from gridmap import __version__

    return {
        "openapi": "3.0.3",
        "info": {"title": "gridmap API", "version": __version__,
                 "description": "Grid management (网格化管理): cases, hazards, boundaries, analysis, Open311. "
                                "Every answer is limited to the caller's scope; an object outside it answers "
                                "404 like a missing one."},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "`gridmap tokens create NAME`"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}}},
        "paths": paths,
        "x-undocumented": undocumented,
    }
