"""The OpenAPI description (/api/v1/openapi.json): it covers every JSON route of the URL map, and
schemathesis, run against it as a grid worker in a city with two workers' data, finds no 5xx, no
answer that breaks the schema and no answer carrying the other worker's data."""
from __future__ import annotations

import re

import pytest

from tests.accessworld import MARKERS, build_world
from tests.casehelpers import auth
from tests.test_pages import wire

#: generated examples per operation (and per fixed object id): bounded so the run stays short
EXAMPLES = 6
#: operations that answer a worker with the other street's data today (issue 14: diff has no role
#: check); fixed on the scope branch, then taken off this list (the test asserts the list is exact)
KNOWN_LEAKS: set[str] = set()


def test_document_describes_every_api_route(app):
    from gridmap.web.openapi import SPECS, _paths, api_rules

    wire(app)
    r = app.test_client().get("/api/v1/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    doc = r.get_json()
    assert doc["openapi"].startswith("3.") and doc["x-undocumented"] == []
    rules = api_rules(app)
    ops = {(p, m) for p, item in doc["paths"].items() for m in item}
    # one operation per rule, or per alternative of an <any(…)> segment (a literal path each)
    expected = sum(len(_paths(rule)) for rule, _ in rules)
    assert len(ops) == expected >= len(rules) >= 40
    for rule, method in rules:
        assert (rule.endpoint, method) in SPECS, f"{method} {rule.rule} has no entry in gridmap.web.openapi.SPECS"
    stale = set(SPECS) - {(r.endpoint, m) for r, m in rules}
    assert not stale, f"SPECS entries for routes that do not exist: {sorted(stale)}"
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert names == set(re.findall(r"\{(\w+)\}", path)), (method, path)
    # schemathesis reads every operation
    import schemathesis

    schema = schemathesis.openapi.from_dict(doc)
    assert sum(1 for res in schema.get_all_operations() if res.ok()) == expected


def test_a_route_left_out_of_specs_is_reported(app):
    from gridmap.web.openapi import openapi_document

    wire(app)
    app.add_url_rule("/api/v1/brand-new/<int:thing_id>", "brand_new", lambda thing_id: {})
    doc = openapi_document(app)
    assert doc["x-undocumented"] == ["GET /api/v1/brand-new/<int:thing_id>"]
    assert doc["paths"]["/api/v1/brand-new/{thing_id}"]["get"]["parameters"][0]["schema"]["type"] == "integer"


@pytest.mark.slow
def test_schemathesis_as_a_worker(app, loaded_city, sessionmaker, backend):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

    wire(app)
    app.config["WTF_CSRF_ENABLED"] = False
    world = build_world(app, sessionmaker)
    ids = world["ids"]
    worker = {**auth(world["tokens"]["worker"]), "Accept-Encoding": "identity"}  # the WSGI transport does not gunzip
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    #: the east objects (out of the worker's scope), by path parameter
    out_of_scope = {"case_id": ids["other"], "hazard_id": ids["hz_other"], "task_id": ids["task_other"],
                    "draft_id": ids["draft_other"], "rid": ids["other_number"]}
    calls = {"n": 0, "5xx": 0}
    failures: list[str] = []
    leaking: set[str] = set()

    def run(operation, path_parameters=None):
        strategy = operation.as_strategy(path_parameters=path_parameters)

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def examples(case):
            resp = case.call(headers=worker)
            calls["n"] += 1
            if resp.status_code >= 500:
                calls["5xx"] += 1
            try:
                case.validate_response(resp, checks=checks)
            except Exception as e:  # noqa: BLE001 - collected and reported together
                failures.append(f"{operation.label} {case.path_parameters or ''}: {str(e).splitlines()[0][:200]}")
                return
            body = resp.content or b""
            leaked = [m for m in MARKERS if m.encode() in body]
            if leaked:
                leaking.add(operation.label)
                if operation.label not in KNOWN_LEAKS:
                    failures.append(f"{operation.label} {case.path_parameters}: answer names {leaked}")
            if path_parameters and set(path_parameters) & set(out_of_scope) and resp.status_code in (200, 201):
                failures.append(f"{operation.label} {path_parameters}: an object out of scope answered "
                                f"{resp.status_code}")

        examples()

    for result in schema.get_all_operations():
        operation = result.ok()
        run(operation)
        names = {p.name for p in operation.path_parameters}
        fixed = {k: v for k, v in out_of_scope.items() if k in names}
        if fixed:  # the other worker's objects, with everything else generated
            if "photo_id" in names:
                fixed["photo_id"] = ids["photo_other"]
            run(operation, fixed)
    print(f"\nschemathesis: {calls['n']} requests as a worker, {calls['5xx']} answered 5xx, {len(failures)} failures")
    assert calls["n"] >= 40 * 5
    assert not failures, "\n".join(failures[:40])
    assert leaking == KNOWN_LEAKS, f"fixed (take them off KNOWN_LEAKS): {sorted(KNOWN_LEAKS - leaking)}"
