"""Hostile input over HTTP: every date-taking endpoint and page at the calendar's edge, ids ≥ 2^63 and
Unicode digits in paths and JSON, numbers where text is expected, JSON nested 100,000 deep, lone
surrogates, CR/LF in ``next``. Each answer is a 4xx (or a 2xx/3xx that did nothing wrong), never a 5xx,
and a refusal names the field. Real PostGIS and SpatiaLite; the cast of tests/test_pages.py."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from gridmap.incidents.models import Case, CaseEvent
from tests.casehelpers import auth, make_token
from tests.test_pages import as_user, make_cast, wire

BIG = 2**63
HUGE = 10**30
EDGE_DATES = [("0001-01-01", None), (None, "9999-12-31"), ("0001-01-01", "9999-12-31"), ("9999-12-31", None),
              (None, "0001-01-01")]

#: GET endpoints that take from/to (API), with the other parameters they need
DATE_APIS = [
    "/api/v1/cases?", "/api/v1/hazards?", "/api/v1/metrics?", "/api/v1/rates?", "/api/v1/density?",
    "/api/v1/trend?", "/api/v1/hotspots?", "/api/v1/repeats?", "/api/v1/scorecards?",
    "/api/v1/export?kind=cases&format=csv&", "/api/v1/export?kind=hazards&format=csv&",
    "/api/v1/ledgers/cases?area=330999&format=html&", "/api/v1/ledgers/all?area=330999&format=xlsx&",
    "/api/v1/ledgers/hazards?area=330999001&format=html&",
    "/api/v1/geo/cases?bbox=122,30,122.1,30.1&", "/api/v1/geo/heat?bbox=122,30,122.1,30.1&",
    "/api/v1/hazards/geo?bbox=122,30,122.1,30.1&", "/api/v1/hazards/inspections?",
]
DATE_PAGES = ["/cases?", "/centre?", "/street?", "/areas/330999001?", "/worker?"]


def _qs(d0, d1) -> str:
    return "&".join(f"{k}={v}" for k, v in (("from", d0), ("to", d1)) if v)


@pytest.fixture
def hostile(app, loaded_city, sessionmaker):
    wire(app)
    with sessionmaker() as s:
        ids = make_cast(s)
        toks = {u: auth(make_token(s, u)) for u in ("w1", "street", "city")}
        s.commit()
    return app, ids, toks


def _counts(sessionmaker):
    with sessionmaker() as s:
        return (s.scalar(select(func.count(Case.id))), s.scalar(select(func.count(CaseEvent.id))),
                s.scalar(select(func.max(Case.version))))


def _fails(responses):
    return [(what, r.status_code, r.get_data(as_text=True)[:200]) for what, r in responses if r.status_code >= 500]


def test_dates_at_the_calendars_edge_never_give_500(hostile):
    app, ids, toks = hostile
    c = app.test_client()
    seen = []
    for url in DATE_APIS:
        for d0, d1 in EDGE_DATES:
            seen.append((url + _qs(d0, d1), c.get(url + _qs(d0, d1), headers=toks["city"])))
    # the Open311 and diff names of the same parameters
    for q in ("start_date=0001-01-01", "end_date=9999-12-31", "start_date=0001-01-01T00:00:00Z",
              "end_date=9999-12-31T23:59:59Z"):
        seen.append((q, c.get(f"/open311/v2/requests.json?{q}", headers=toks["city"])))
    page = as_user(app, "city")
    for url in DATE_PAGES:
        for d0, d1 in EDGE_DATES:
            seen.append((url + _qs(d0, d1), page.get(url + _qs(d0, d1))))
    fails = _fails(seen)
    assert not fails, f"{len(fails)} of {len(seen)} answered 5xx:\n" + "\n".join(map(str, fails))
    refused = [(w, r.status_code) for w, r in seen if r.status_code == 400]
    assert refused, "no edge date was refused at all"
    for w, r in seen:
        if r.status_code == 400 and r.is_json:
            if isinstance(r.json, list):  # GeoReport v2 errors: [{code, description}]
                assert "_date" in r.json[0]["description"], (w, r.json)
            else:
                assert r.json.get("field") in ("from", "to"), (w, r.json)


def test_huge_and_unicode_ids_in_paths_answer_404(hostile):
    app, ids, toks = hostile
    c = app.test_client()
    page = as_user(app, "city")
    seen = []
    for bad in (str(2**31), str(2**40), str(BIG), str(2**64), str(HUGE), "²", "١٢", "-1"):
        for url in (f"/api/v1/cases/{bad}", f"/api/v1/cases/{bad}/photos/1", f"/api/v1/cases/{ids['mine']}/photos/{bad}",
                    f"/api/v1/hazards/{bad}", f"/open311/v2/requests/{bad}.json", f"/api/v1/geo/tiles/{bad}/1/1.mvt",
                    f"/api/v1/boundaries/drafts/{bad}"):
            seen.append((url, c.get(url, headers=toks["city"])))
        for url in (f"/api/v1/cases/{bad}/actions", f"/api/v1/hazards/{bad}/close", f"/api/v1/hazards/{bad}/cases"):
            seen.append((url, c.post(url, json={"action": "accept"}, headers=toks["city"])))
        seen.append((f"/cases/{bad}", page.get(f"/cases/{bad}")))
    fails = _fails(seen)
    assert not fails, f"{len(fails)} of {len(seen)} answered 5xx:\n" + "\n".join(map(str, fails))
    assert all(r.status_code == 404 for _w, r in seen), [(w, r.status_code) for w, r in seen if r.status_code != 404]


def test_hostile_json_bodies_answer_4xx_and_change_nothing(hostile, sessionmaker):
    app, ids, toks = hostile
    c = app.test_client()
    before = _counts(sessionmaker)
    mine = ids["mine"]
    deep = "[" * 100_000 + "]" * 100_000
    deep_obj = '{"a":' * 100_000 + "1" + "}" * 100_000
    bodies = [
        ("/api/v1/cases/%d/actions" % mine, {"action": "accept", "comment": 123}),
        ("/api/v1/cases/%d/actions" % mine, {"action": "accept", "version": BIG}),
        ("/api/v1/cases/%d/actions" % mine, {"action": "reassign", "comment": "x", "data": {"worker_id": BIG}}),
        ("/api/v1/cases/%d/actions" % mine, {"action": "mark_duplicate", "comment": "x",
                                             "data": {"duplicate_of_id": BIG}}),
        ("/api/v1/cases/%d/actions" % mine, {"action": "mark_duplicate", "comment": "x",
                                             "data": {"duplicate_of_id": str(BIG)}}),
        ("/api/v1/cases/%d/actions" % mine, {"action": "mark_duplicate", "comment": "x",
                                             "data": {"duplicate_of_id": "²"}}),
        ("/api/v1/cases/%d/actions" % mine, {"action": "feedback", "comment": "\ud800 处理"}),
        ("/api/v1/cases/%d/actions" % mine, {"action": 7}),
        ("/api/v1/cases/%d/place" % mine, {"lon": "122", "lat": 30.0, "comment": 5}),
        ("/api/v1/cases/%d/place" % mine, {"lon": 1e400, "lat": 30.0}),
        ("/api/v1/cases", {"category": "test.litter", "description": "\ud800", "location": {"lon": 122.01, "lat": 30.035}}),
        ("/api/v1/cases", {"category": 123, "description": 456, "location": {"lon": 122.01, "lat": 30.035}}),
        ("/api/v1/cases", {"category": "test.litter", "description": "x", "location": {"lon": BIG, "lat": BIG}}),
        ("/api/v1/cases", {"category": "test.litter", "description": "x", "cell": BIG}),
        ("/api/v1/cases", {"category": "test.litter", "description": "x", "title": ["a"],
                           "location": {"lon": 122.01, "lat": 30.035}}),
        ("/api/v1/cases", {"category": "test.litter", "description": "x", "reporter": {"name": 1, "phone": 2},
                           "location": {"lon": 122.01, "lat": 30.035}}),
        ("/api/v1/hazards", {"type": 1, "description": 2, "lon": 122.01, "lat": 30.035, "found_at": "0001-01-01"}),
        ("/api/v1/hazards", {"type": "x", "description": "\ud800", "lon": 122.01, "lat": 30.035,
                             "found_at": "9999-12-31T23:59:59+00:00"}),
        ("/api/v1/hazards/1/cases", {"case_id": BIG}),
        ("/api/v1/hazards/1/cases", {"case_id": 2**40}),
        ("/api/v1/cases/%d/actions" % mine, {"action": "mark_duplicate", "comment": "x",
                                             "data": {"duplicate_of_id": 2**40}}),
        ("/api/v1/cases/%d/actions" % mine, {"action": "reassign", "comment": "x", "data": {"worker_id": 2**40}}),
        ("/api/v1/hazards/1/close", {"comment": 123}),
        ("/open311/v2/requests.json", {"service_code": 1, "description": "\ud800", "lat": 30.035, "long": 122.01}),
        ("/api/v1/boundaries/drafts", {"name": 123}),
    ]
    seen = []
    for url, body in bodies:
        seen.append((url + " " + json.dumps(body)[:80],
                     c.post(url, data=json.dumps(body), content_type="application/json", headers=toks["street"])))
    for url in ("/api/v1/cases/%d/actions" % mine, "/api/v1/cases", "/api/v1/hazards", "/open311/v2/requests.json",
                "/api/v1/cases/%d/place" % mine, "/api/v1/boundaries/drafts"):
        for raw in (deep, deep_obj):
            seen.append((url + " deep", c.post(url, data=raw, content_type="application/json", headers=toks["street"])))
    fails = _fails(seen)
    assert not fails, f"{len(fails)} of {len(seen)} answered 5xx:\n" + "\n".join(map(str, fails))
    assert all(400 <= r.status_code < 500 for _w, r in seen), [(w, r.status_code) for w, r in seen
                                                                 if not 400 <= r.status_code < 500]
    assert _counts(sessionmaker) == before


def test_login_next_with_crlf_is_not_followed(hostile):
    app, ids, toks = hostile
    from tests.test_pages import csrf_from

    for nxt in ("/cases\r\nSet-Cookie: x=1", "/cases%0d%0aLocation:%20http://evil", "\r\n//evil.example",
                "/\\evil.example", "/cases\n"):
        c = app.test_client()
        r = c.get("/login?next=" + nxt)
        assert r.status_code < 500
        token = csrf_from(r.get_data(as_text=True))
        r = c.post("/login", data={"username": "city", "password": "correct horse battery", "csrf_token": token,
                                   "next": nxt})
        assert r.status_code == 302, (nxt, r.status_code)
        loc = r.headers["Location"]
        assert "\r" not in loc and "\n" not in loc and "evil" not in loc, (nxt, loc)


def test_security_headers_on_every_kind_of_response(hostile):
    app, ids, toks = hostile
    c = app.test_client()
    page = as_user(app, "city")
    answers = {
        "ledger html": c.get("/api/v1/ledgers/cases?area=330999&format=html", headers=toks["city"]),
        "ledger xlsx": c.get("/api/v1/ledgers/cases?area=330999&format=xlsx", headers=toks["city"]),
        "api json": c.get(f"/api/v1/cases/{ids['mine']}", headers=toks["city"]),
        "api 404": c.get("/api/v1/cases/999999", headers=toks["city"]),
        "api 401": c.get("/api/v1/cases"),
        "open311": c.get("/open311/v2/services.json", headers=toks["city"]),
        "static": c.get("/static/vendor/leaflet/leaflet.js"),
        "page": page.get("/cases"),
        "page 404": page.get("/cases/999999"),
        "no such route": c.get("/nowhere"),
        "healthz": c.get("/healthz"),
    }
    assert answers["static"].status_code == 200, "the static file of the test moved"
    for what, r in answers.items():
        h = r.headers
        assert h.get("X-Content-Type-Options") == "nosniff", what
        assert "frame-ancestors 'none'" in h.get("Content-Security-Policy", ""), what
        assert h.get("X-Frame-Options") == "DENY", what
        if what not in ("static", "healthz"):
            assert "no-store" in h.get("Cache-Control", ""), what
    # the ledger's inline style carries the page's nonce, so the CSP does not block it
    nonce = answers["ledger html"].headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}"' in answers["ledger html"].get_data(as_text=True)
    assert "default-src 'none'" in answers["api json"].headers["Content-Security-Policy"]


def test_a_crash_page_has_the_headers_too(hostile, monkeypatch):
    app, ids, toks = hostile
    import gridmap.web.cases_api as cases_api

    def boom(*a, **k):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cases_api, "_detail", boom)
    r = app.test_client().get(f"/api/v1/cases/{ids['mine']}", headers=toks["city"])
    assert r.status_code == 500 and "a bug" not in r.get_data(as_text=True)
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


def test_bodies_over_the_limit_answer_413_before_being_read(hostile, sessionmaker):
    app, ids, toks = hostile
    c = app.test_client()
    before = _counts(sessionmaker)
    assert app.config["MAX_CONTENT_LENGTH"] == app.config["GRIDMAP_MAX_REQUEST_BYTES"]
    big_json = b'{"description": "' + b"x" * (app.config["GRIDMAP_MAX_JSON_BYTES"] + 10) + b'"}'
    for url in ("/api/v1/cases", f"/api/v1/cases/{ids['mine']}/actions", "/api/v1/hazards",
                "/open311/v2/requests.json", "/api/v1/boundaries/drafts"):
        r = c.post(url, data=big_json, content_type="application/json", headers=toks["street"])
        assert r.status_code == 413, (url, r.status_code)
        assert "GRIDMAP_MAX_JSON_BYTES" in r.json["error"] and r.json["limit_bytes"] == app.config["GRIDMAP_MAX_JSON_BYTES"]
    # an upload over the request limit, to the API and to a page
    huge = b"\x89PNG\r\n\x1a\n" + b"\0" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    r = c.post(f"/api/v1/cases/{ids['mine']}/photos", data={"photo": (io.BytesIO(huge), "a.png")},
               content_type="multipart/form-data", headers=toks["city"])
    assert r.status_code == 413 and "GRIDMAP_MAX_REQUEST_BYTES" in r.json["error"]
    page = as_user(app, "w1")
    r = page.post("/report", data={"photo": (io.BytesIO(huge), "a.png")}, content_type="multipart/form-data")
    assert r.status_code == 413 and "413" in r.get_data(as_text=True)
    assert "frame-ancestors" in r.headers["Content-Security-Policy"]
    assert _counts(sessionmaker) == before
