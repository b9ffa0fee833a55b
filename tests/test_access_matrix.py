"""The access matrix: every route of ``app.url_map`` × every role, anonymous, a revoked token, an
expired token and a disabled user; reading and writing.

The routes come from the URL map: a route missing from ``EXPECTED`` (or a stale entry) fails the
test, so a new route cannot escape it. For each request the test asserts:
- no 5xx, ever;
- identities without valid credentials are refused (401 / 403 / 404, or a redirect to the login
  page), except on the public routes;
- roles named in the route's ``allow`` get through: 2xx (or a redirect that is not the login page)
  when reading; when writing (with an empty or incomplete body, so nothing is created) anything
  but a refusal: 400/409/422 name the bad input;
- other roles are refused;
- an object outside the caller's scope answers exactly like a missing one (same status), and
  for the JSON API that status is 404;
- no answer to a west-side user (worker, head, community, west street, department) contains the
  text of an east object (``MARKERS``).
Pairs that leak today, owned by the branch that fixes scope in cases/boundaries/analysis, are
listed in ``KNOWN_LEAKS``: the test asserts the observed leaks are exactly those, so a new leak
fails and a fixed one must be taken off the list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest

from tests.accessworld import (HOME_AREA, IDENTITIES, MARKERS, NO_CREDENTIALS, OTHER_STREET, ROLES, WEST_ONLY,
                               build_world)
from tests.casehelpers import CELL, OTHER_CELL, auth
from tests.test_pages import wire

ALL = frozenset(ROLES)
SUPERVISORS = frozenset({"head", "community", "street", "district", "city", "admin"})
STREET_ROLES = frozenset({"street", "district", "city", "admin"})
CENTRE_ROLES = frozenset({"district", "city", "admin"})
PERIOD = "from=2026-01-01&to=2026-12-31"
BBOX = "bbox=122.0,30.0,122.08,30.04"
MISSING = 999999


@dataclass(frozen=True)
class Route:
    """How to call one (endpoint, method) and who may."""
    url: Callable[[dict, str, str], str]      # (ids, role, which: in|out|missing) → path with query
    allow: frozenset = ALL                    # roles that get through (with an in-scope object)
    public: bool = False                      # answers without credentials too
    objects: bool = False                     # has in/out/missing variants
    body: dict | Callable | None = field(default=None)  # JSON for writes (default: {}); a callable gets ids
    form: bool = False                        # a page form post (sent form-encoded)
    ok: tuple = ()                            # outcome classes that count as "got through" (default by method)
    refusal: tuple = ("refused", "login")     # outcome classes that count as a refusal


def _obj(ids, role, which, mine, other, dept=None):
    if which == "missing":
        return MISSING
    if which == "out":
        return ids[other]
    return ids[dept] if (role == "department" and dept) else ids[mine]


def case_url(tail=""):
    return lambda ids, role, which: f"/api/v1/cases/{_obj(ids, role, which, 'mine', 'other', 'dcase')}{tail}"


def photo_url(prefix="/api/v1"):
    def url(ids, role, which):
        if which == "missing":
            return f"{prefix}/cases/{ids['mine']}/photos/{MISSING}"
        key = "other" if which == "out" else "mine"
        return f"{prefix}/cases/{ids[key]}/photos/{ids['photo_' + key]}"
    return url


def hazard_url(tail=""):
    return lambda ids, role, which: f"/api/v1/hazards/{_obj(ids, role, which, 'hz_mine', 'hz_other')}{tail}"


def draft_url(tail=""):
    return lambda ids, role, which: f"/api/v1/boundaries/drafts/{_obj(ids, role, which, 'draft_mine', 'draft_other')}{tail}"


def area_url(prefix, query=""):
    def url(ids, role, which):
        code = {"in": HOME_AREA[role], "out": OTHER_STREET, "missing": "330999999"}[which]
        return f"{prefix}{code}{query}"
    return url


def fixed(path):
    return lambda ids, role, which: path


def page_case_url(tail=""):
    return lambda ids, role, which: f"/cases/{_obj(ids, role, which, 'mine', 'other', 'dcase')}{tail}"


def page_hazard_url(tail=""):
    return lambda ids, role, which: f"/hazards/{_obj(ids, role, which, 'hz_mine', 'hz_other')}{tail}"


def open311_url(ids, role, which):
    key = {"in": "dcase_number" if role == "department" else "mine_number", "out": "other_number"}.get(which)
    return f"/open311/v2/requests/{ids[key] if key else 'NOPE-999'}.json"


def ledger_area(ids, role, which):
    code = {"in": HOME_AREA[role], "out": OTHER_STREET, "missing": "330999999"}[which]
    return f"/api/v1/ledgers/cases?area={code}&{PERIOD}&format=html"


EXPECTED: dict[tuple[str, str], Route] = {
    # ---------------------------------------------------------------- pages
    ("pages.index", "GET"): Route(fixed("/")),
    ("pages.healthz", "GET"): Route(fixed("/healthz"), public=True),
    ("pages.login", "GET"): Route(fixed("/login"), public=True),
    ("pages.login", "POST"): Route(fixed("/login"), public=True, form=True),
    ("pages.logout", "POST"): Route(fixed("/logout"), public=True, form=True, ok=("login",)),
    ("pages.worker", "GET"): Route(fixed("/worker"), allow=frozenset({"worker", "head"})),
    ("pages.cases", "GET"): Route(fixed("/cases")),
    ("pages.case_page", "GET"): Route(page_case_url(), objects=True),
    ("pages.case_action", "POST"): Route(page_case_url("/actions"), objects=True, form=True),
    ("pages.case_photo", "GET"): Route(photo_url(""), objects=True, allow=ALL - {"department"}),
    ("pages.report", "GET"): Route(fixed("/report"), allow=ALL - {"department"}),
    ("pages.report", "POST"): Route(fixed("/report"), allow=ALL - {"department"}, form=True),
    ("pages.street", "GET"): Route(fixed("/street"), allow=STREET_ROLES),
    ("pages.area", "GET"): Route(area_url("/areas/"), objects=True, allow=ALL - {"department"}),
    ("pages.editor", "GET"): Route(fixed("/street/editor"), allow=STREET_ROLES),
    ("pages.editor_preview", "POST"): Route(fixed("/street/editor/preview"), allow=STREET_ROLES),
    ("pages.centre", "GET"): Route(fixed("/centre"), allow=CENTRE_ROLES),
    ("pages.centre_card", "GET"): Route(area_url("/centre/card/"), objects=True, allow=STREET_ROLES),
    ("pages.audit_log", "GET"): Route(fixed("/admin/audit"), allow=frozenset({"admin"})),
    ("pages.centre_rows", "GET"): Route(area_url("/centre/rows?parent="), objects=True, allow=CENTRE_ROLES),
    ("pages.queue", "GET"): Route(fixed("/queue"), allow=SUPERVISORS),  # intake.PLACING_ROLES
    ("pages.queue_place", "POST"): Route(lambda ids, role, which: f"/queue/{ids['mine']}/place", allow=SUPERVISORS,
                                         form=True),
    ("pages.worker_registry", "GET"): Route(fixed("/worker/registry"), allow=frozenset({"worker", "head"})),
    ("pages.worker_notifications_seen", "POST"): Route(fixed("/worker/notifications/seen"),
                                                       allow=frozenset({"worker", "head"}), form=True),
    # hazard pages: views.hazards.REGISTER_ROLES for the register, any login (then the hazard's scope) for one
    ("pages.hazards", "GET"): Route(fixed("/hazards"), allow=SUPERVISORS),
    ("pages.hazards_xlsx", "GET"): Route(fixed("/hazards/export.xlsx"), allow=SUPERVISORS),
    ("pages.hazard_compliance", "GET"): Route(fixed("/hazards/compliance"), allow=SUPERVISORS),
    ("pages.hazard_card", "GET"): Route(area_url("/hazards/card/"), objects=True, allow=SUPERVISORS),
    ("pages.hazard_page", "GET"): Route(page_hazard_url(), objects=True, allow=ALL - {"department"}),
    ("pages.hazard_action", "POST"): Route(page_hazard_url("/action"), objects=True, allow=ALL - {"department"},
                                           form=True),
    # the world holds no hazard photo: a missing photo of an in-scope hazard answers 404 to everyone
    ("pages.hazard_photo", "GET"): Route(page_hazard_url(f"/photos/{MISSING}"), objects=True,
                                         allow=ALL - {"department"}, ok=("refused",)),
    # offline field work: the service worker and manifest are public; the token needs a login (401 JSON)
    ("pages.service_worker", "GET"): Route(fixed("/sw.js"), public=True),
    ("pages.manifest", "GET"): Route(fixed("/manifest.webmanifest"), public=True),
    ("pages.offline_token", "GET"): Route(fixed("/offline/token")),
    ("pages.outbox", "GET"): Route(fixed("/outbox")),
    ("static", "GET"): Route(fixed("/static/css/app.css"), public=True),
    # no local basemap in this world: logged-in users get 404, the others 401
    ("geo_api_local_tile", "GET"): Route(fixed("/tiles/local/1/1/1.png"), ok=("refused",)),
    # ---------------------------------------------------------------- cases API
    ("cases_api.create", "POST"): Route(fixed("/api/v1/cases"), allow=ALL - {"department"}),
    ("cases_api.list_", "GET"): Route(fixed("/api/v1/cases")),
    ("cases_api.detail", "GET"): Route(case_url(), objects=True),
    ("cases_api.action", "POST"): Route(case_url("/actions"), objects=True, body={"action": "accept"}),
    ("cases_api.place", "POST"): Route(case_url("/place"), objects=True, allow=SUPERVISORS,
                                       body={"lon": 122.005, "lat": 30.035}),
    ("cases_api.upload_photo", "POST"): Route(case_url("/photos"), objects=True),
    ("cases_api.get_photo", "GET"): Route(photo_url(), objects=True, allow=ALL - {"department"}),
    ("api.locate", "GET"): Route(fixed("/api/v1/locate?lon=122.005&lat=30.035")),
    ("api.openapi", "GET"): Route(fixed("/api/v1/openapi.json"), public=True),  # the API's description
    ("metrics_api.metrics", "GET"): Route(fixed(f"/api/v1/metrics?{PERIOD}")),
    # ---------------------------------------------------------------- geo API
    ("geo_api.cells", "GET"): Route(fixed(f"/api/v1/geo/cells?{BBOX}")),
    ("geo_api.cases", "GET"): Route(fixed(f"/api/v1/geo/cases?{BBOX}")),
    ("geo_api.heat", "GET"): Route(fixed(f"/api/v1/geo/heat?{BBOX}")),
    ("geo_api.extent", "GET"): Route(fixed("/api/v1/geo/extent")),
    ("geo_api.basemap", "GET"): Route(fixed(f"/api/v1/geo/basemap?{BBOX}")),  # public geography, any login
    ("geo_api.mvt", "GET"): Route(fixed("/api/v1/geo/tiles/12/3436/1690.mvt")),  # SpatiaLite: 404 (see below)
    # ---------------------------------------------------------------- hazards API
    ("hazards_api.list_", "GET"): Route(fixed("/api/v1/hazards")),
    ("hazards_api.create", "POST"): Route(fixed("/api/v1/hazards")),
    ("hazards_api.get", "GET"): Route(hazard_url(), objects=True, allow=ALL - {"department"}),
    ("hazards_api.action", "POST"): Route(hazard_url("/verify"), objects=True, allow=ALL - {"department"},
                                          body={"passed": True}),
    ("hazards_api.link", "POST"): Route(hazard_url("/cases"), objects=True, allow=ALL - {"department"},
                                        body=lambda ids: {"case_id": ids["mine"]}),
    ("hazards_api.schedule", "POST"): Route(hazard_url("/schedules"), objects=True, allow=SUPERVISORS,
                                            body={"interval_days": 0}),
    ("hazards_api.geo", "GET"): Route(fixed(f"/api/v1/hazards/geo?{BBOX}")),
    ("hazards_api.inspections", "GET"): Route(fixed("/api/v1/hazards/inspections")),
    ("hazards_api.task_done", "POST"): Route(
        lambda ids, role, which: f"/api/v1/hazards/inspections/{_obj(ids, role, which, 'task_mine', 'task_other')}/done",
        objects=True, allow=frozenset({"worker", "head"}) | SUPERVISORS, body={"result": "ok"}),
    ("hazards_api.types", "GET"): Route(fixed("/api/v1/hazards/types")),
    ("hazards_api.indicators", "GET"): Route(fixed(f"/api/v1/hazards/indicators?{PERIOD}")),
    ("hazards_api.compliance", "GET"): Route(fixed(f"/api/v1/hazards/compliance?{PERIOD}")),
    # assign (责任单位): hazards.actions.MANAGE_ROLES, after the hazard's scope; {} → 400 (unit required)
    ("hazards_api.manage", "POST"): Route(hazard_url("/assign"), objects=True, allow=SUPERVISORS),
    # ---------------------------------------------------------------- field work API (any login; own items)
    ("fieldwork_api.tasks", "GET"): Route(fixed("/api/v1/tasks")),
    ("fieldwork_api.notifications", "GET"): Route(fixed("/api/v1/notifications")),
    ("fieldwork_api.notifications_seen", "POST"): Route(fixed("/api/v1/notifications/seen")),
    # ---------------------------------------------------------------- registry API (any login, scoped)
    ("registry_api.summary", "GET"): Route(fixed("/api/v1/registry/summary")),
    ("registry_api.buildings_geo", "GET"): Route(fixed(f"/api/v1/registry/buildings/geo?{BBOX}")),
    ("registry_api.list_", "GET"): Route(fixed("/api/v1/registry/addresses")),
    # export: registry.service.FULL_ROLES
    ("registry_api.export", "GET"): Route(fixed("/api/v1/registry/addresses/export"), allow=STREET_ROLES),
    # the world holds no registry record: 404 for every login (scoped like a missing one)
    ("registry_api.detail", "GET"): Route(fixed(f"/api/v1/registry/persons/{MISSING}"), ok=("refused",)),
    # reveal: FULL_ROLES (others 403) and then the record (none here: 404)
    ("registry_api.reveal", "POST"): Route(fixed(f"/api/v1/registry/persons/{MISSING}/reveal"), allow=STREET_ROLES,
                                           body={"purpose": "矩阵测试"}, ok=("refused",)),
    # ---------------------------------------------------------------- boundaries API
    ("boundaries_api.create_or_extend", "POST"): Route(fixed("/api/v1/boundaries/drafts"), allow=STREET_ROLES, body={
        "operation": "split", "cell": CELL, "line": {"type": "LineString", "coordinates": [[122.01, 30.045],
                                                                                          [122.01, 30.025]]}}),
    ("boundaries_api.list_", "GET"): Route(fixed("/api/v1/boundaries/drafts")),  # scoped: others get their own
    ("boundaries_api.show", "GET"): Route(draft_url(), objects=True, allow=STREET_ROLES),
    ("boundaries_api.submit", "POST"): Route(draft_url("/submit"), objects=True, allow=STREET_ROLES,
                                             body={"version": -1}),
    ("boundaries_api.publish", "POST"): Route(draft_url("/publish"), objects=True, allow=CENTRE_ROLES,
                                              body={"reason": "矩阵测试"}),
    ("boundaries_api.reject", "POST"): Route(draft_url("/reject"), objects=True, allow=CENTRE_ROLES,
                                             body={"reason": "矩阵测试"}),
    ("boundaries_api.diff_view", "GET"): Route(fixed("/api/v1/boundaries/diff?from=2026-01-01"), allow=STREET_ROLES),
    ("boundaries_api.balance_view", "GET"): Route(fixed("/api/v1/boundaries/balance?community=330999001001"),
                                             allow=STREET_ROLES),
    # ---------------------------------------------------------------- analysis API
    ("analysis_api.hotspots", "GET"): Route(fixed(f"/api/v1/hotspots?{PERIOD}&permutations=99")),
    ("analysis_api.rates", "GET"): Route(fixed(f"/api/v1/rates?{PERIOD}")),
    ("analysis_api.repeats", "GET"): Route(fixed(f"/api/v1/repeats?{PERIOD}")),
    ("analysis_api.trend", "GET"): Route(fixed(f"/api/v1/trend?{PERIOD}")),
    ("analysis_api.density", "GET"): Route(fixed(f"/api/v1/density?{PERIOD}")),
    ("analysis_api.scorecards", "GET"): Route(fixed(f"/api/v1/scorecards?{PERIOD}")),
    ("analysis_api.export", "GET"): Route(fixed(f"/api/v1/export?kind=cases&format=csv&{PERIOD}")),
    # an area outside the scope answers 400 exactly like an unknown area code (the department has none)
    ("analysis_api.ledger", "GET"): Route(ledger_area, objects=True, allow=ALL - {"department"},
                                          refusal=("refused", "login", "bad")),
    # ---------------------------------------------------------------- Open311
    ("open311.services_json", "GET"): Route(fixed("/open311/v2/services.json"), public=True),
    # no service has attributes: 404 for everyone, by design
    ("open311.service_definition", "GET"): Route(fixed("/open311/v2/services/test.json"), public=True,
                                                 ok=("refused",)),
    ("open311.requests_json", "GET"): Route(fixed("/open311/v2/requests.json")),
    ("open311.request_json", "GET"): Route(open311_url, objects=True),
    ("open311.create_request", "POST"): Route(fixed("/open311/v2/requests.json")),
}

#: (endpoint, method, identity, what) observed to leak today and fixed on the scope branch.
#: "what" is "marker" (east text in the answer), "oracle" (out of scope ≠ missing) or "access".
KNOWN_LEAKS: set[tuple[str, str, str, str]] = set()  # the scope branch fixed all the earlier ones


def routes_of(app) -> set[tuple[str, str]]:
    return {(r.endpoint, m) for r in app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}}


def _has_marker(resp) -> bool:
    return any(m.encode() in resp.data for m in MARKERS)


def _status_class(resp, *, page: bool) -> str:
    code = resp.status_code
    if code >= 500:
        return "5xx"
    if code in (301, 302, 303, 307, 308):
        return "login" if "/login" in (resp.location or "") else "ok"
    if 200 <= code < 300:
        return "ok"
    if code in (401, 403, 404):
        return "refused"
    return "bad"  # 400, 405, 409, 413, 415, 422, 429


@pytest.fixture
def world(app, loaded_city, sessionmaker):
    wire(app)
    app.config["WTF_CSRF_ENABLED"] = False  # the forms are posted with Bearer tokens (CSRF-exempt) anyway
    return build_world(app, sessionmaker)


def test_every_route_is_in_the_expected_table(app):
    wire(app)
    have = routes_of(app)
    missing = sorted(have - set(EXPECTED))
    stale = sorted(set(EXPECTED) - have)
    assert not missing, f"routes without an entry in EXPECTED (say who may call them): {missing}"
    assert not stale, f"entries of EXPECTED for routes that do not exist: {stale}"


def _call(client, method, url, identity, tokens, route, ids):
    headers = auth(tokens[identity]) if identity != "anonymous" else {}
    if method == "GET":
        return client.get(url, headers=headers)
    if route.form:
        return client.post(url, headers=headers, data={})
    body = route.body(ids) if callable(route.body) else route.body
    return client.post(url, headers=headers, json=body if body is not None else {})


@pytest.mark.slow
def test_access_matrix(app, world, request, backend):
    ids, tokens = world["ids"], world["tokens"]
    client = app.test_client()
    problems: list[str] = []
    leaks: set[tuple[str, str, str, str]] = set()
    checked = 0
    for (endpoint, method), route in sorted(EXPECTED.items()):
        for identity in IDENTITIES:
            role = identity if identity in ROLES else "city"  # revoked/expired/disabled belong to city users
            resp = _call(client, method, route.url(ids, role, "in"), identity, tokens, route, ids)
            checked += 1
            cls = _status_class(resp, page=not route.url(ids, role, "in").startswith(("/api/", "/open311/")))
            where = f"{method} {route.url(ids, role, 'in')} as {identity}: {resp.status_code}"
            if cls == "5xx":
                problems.append(f"5xx: {where}")
                continue
            allowed = route.public or identity in route.allow and identity not in NO_CREDENTIALS
            if identity in NO_CREDENTIALS and not route.public:
                if cls not in ("refused", "login"):
                    problems.append(f"not refused without valid credentials: {where}")
            elif allowed:
                ok = route.ok or (("ok",) if method == "GET" else ("ok", "bad"))
                if (endpoint, backend) == ("geo_api.mvt", "spatialite"):
                    ok = ("refused",)  # vector tiles need PostGIS: 404 with a message on SpatiaLite
                if cls not in ok:
                    problems.append(f"refused an allowed role: {where}")
            elif cls not in route.refusal:
                leaks.add((endpoint, method, identity, "access"))
            if identity in WEST_ONLY and cls in ("ok", "bad"):
                if _has_marker(resp):
                    leaks.add((endpoint, method, identity, "marker"))
            # an object out of scope answers like a missing one
            if route.objects and identity in WEST_ONLY:
                out = _call(client, method, route.url(ids, role, "out"), identity, tokens, route, ids)
                missing = _call(client, method, route.url(ids, role, "missing"), identity, tokens, route, ids)
                checked += 2
                for r in (out, missing):
                    if r.status_code >= 500:
                        problems.append(f"5xx: {method} {r.request.path} as {identity}: {r.status_code}")
                api = route.url(ids, role, "out").startswith(("/api/", "/open311/"))
                if out.status_code != missing.status_code or (api and out.status_code in (401, 403)):
                    leaks.add((endpoint, method, identity, "oracle"))
                if _has_marker(out):
                    leaks.add((endpoint, method, identity, "marker"))
    request.node.user_properties.append(("pairs_checked", checked))
    print(f"\naccess matrix: {checked} requests, {len(leaks)} leaks, {sum(p.startswith('5xx') for p in problems)} 5xx")
    for leak in sorted(leaks):
        print("  leak:", leak)
    for p in problems:
        print("  problem:", p)
    assert not problems, "\n".join(problems)
    assert leaks == KNOWN_LEAKS, (f"new leaks: {sorted(leaks - KNOWN_LEAKS)}; "
                                  f"fixed (take them off KNOWN_LEAKS): {sorted(KNOWN_LEAKS - leaks)}")


def test_replayed_and_stale_cookies_open_no_page(app, world):
    """A session cookie replayed after logout, or of a user disabled since, opens no page."""
    from tests.test_pages import as_user, csrf_from

    app.config["WTF_CSRF_ENABLED"] = True
    pages = [k for k, r in EXPECTED.items() if k[1] == "GET" and not r.public
             and not r.url(world["ids"], "city", "in").startswith(("/api/", "/open311/"))]
    assert len(pages) >= 10
    cl = as_user(app, "city")
    replay = app.test_client()
    replay.set_cookie("session", cl.get_cookie("session").value)
    cl.post("/logout", data={"csrf_token": csrf_from(cl.get("/cases").get_data(as_text=True))})
    for endpoint, method in pages:
        r = replay.get(EXPECTED[(endpoint, method)].url(world["ids"], "city", "in"))
        assert r.status_code in (302, 401, 403, 404) and (r.status_code != 302 or "/login" in r.location), \
            (endpoint, r.status_code)
