"""Property-based tests (hypothesis) of the doors data comes in by: boundary import, locate, case intake,
CSV imports and the draft operations. Hostile geometries (self-intersecting, empty, NaN/Inf, huge, 3-D,
collections, swapped axes), encodings (GBK, UTF-8 with a BOM, mojibake), broken CSV rows and arbitrary
JSON: every example ends in a 2xx, a 4xx or a clear CLI error naming what and where, never a 5xx or a
traceback, and a refusal leaves the database as it was (row counts and a checksum of ids and versions).

Example counts are bounded (``settings(max_examples=…)``) so the file stays fast."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from gridmap.boundaries.models import Area, AreaGeometry
from gridmap.db import transaction
from gridmap.incidents.models import Case, CaseEvent, Category
from tests.casehelpers import CELL, auth, make_category, make_token, make_user, make_worker

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def fingerprint(sessionmaker) -> tuple:
    """Row counts and a checksum (sum of ids and versions) of the tables an input could change."""
    from gridmap.redraw.models import BoundaryDraft

    with sessionmaker() as s:
        out = []
        for model in (Area, AreaGeometry, Case, CaseEvent, BoundaryDraft):
            out.append(s.scalar(select(func.count(model.id))))
            out.append(s.scalar(select(func.coalesce(func.sum(model.id), 0))))
        out.append(s.scalar(select(func.coalesce(func.sum(Case.version), 0))))
        return tuple(out)


# ----------------------------------------------------------------------------- strategies
finite = st.floats(min_value=121.9, max_value=122.2, allow_nan=False)
lat = st.floats(min_value=29.9, max_value=30.1, allow_nan=False)
weird = st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 1e-320, 0.0, 400.0, -91.0])
coord = st.one_of(finite, weird)


@st.composite
def hostile_geometry(draw):
    kind = draw(st.sampled_from(["bowtie", "empty", "nan", "huge", "3d", "collection", "swapped", "ring",
                                 "point", "garbage", "degenerate", "random"]))
    x0, y0 = draw(finite), draw(lat)
    d = draw(st.floats(min_value=1e-9, max_value=0.05))
    square = [[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]
    if kind == "bowtie":
        return {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + d, y0 + d], [x0 + d, y0], [x0, y0 + d], [x0, y0]]]}
    if kind == "empty":
        return draw(st.sampled_from([{"type": "Polygon", "coordinates": []}, {"type": "MultiPolygon", "coordinates": []},
                                     {"type": "Polygon", "coordinates": [[]]}]))
    if kind == "nan":
        bad = draw(weird)
        ring = [list(p) for p in square]
        ring[draw(st.integers(0, 3))][draw(st.integers(0, 1))] = bad
        return {"type": "Polygon", "coordinates": [ring]}
    if kind == "huge":
        return {"type": "Polygon", "coordinates": [[[-1e300, -1e300], [1e300, -1e300], [1e300, 1e300], [-1e300, -1e300]]]}
    if kind == "3d":
        return {"type": "Polygon", "coordinates": [[[x, y, draw(coord)] for x, y in square]]}
    if kind == "collection":
        return {"type": "GeometryCollection", "geometries": [{"type": "Polygon", "coordinates": [square]},
                                                              {"type": "Point", "coordinates": [x0, y0]}]}
    if kind == "swapped":
        return {"type": "Polygon", "coordinates": [[[y, x] for x, y in square]]}
    if kind == "ring":
        return {"type": "Polygon", "coordinates": [square[:3]]}
    if kind == "point":
        return {"type": "Point", "coordinates": [x0, y0]}
    if kind == "garbage":
        return draw(st.sampled_from([{"type": "Polygon", "coordinates": "x"}, {"type": "Polygon"},
                                     {"type": "Nope", "coordinates": []}, {"coordinates": [[1, 2]]},
                                     {"type": "Polygon", "coordinates": [[["a", "b"], [1, 2], [3, 4], ["a", "b"]]]}]))
    if kind == "degenerate":
        return {"type": "Polygon", "coordinates": [[[x0, y0], [x0, y0], [x0, y0], [x0, y0]]]}
    n = draw(st.integers(4, 12))
    pts = [[draw(coord), draw(st.one_of(lat, weird))] for _ in range(n - 1)]
    return {"type": "Polygon", "coordinates": [pts + [pts[0]]]}


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                            st.dictionaries(st.text(max_size=10), kids, max_size=4)),
                          max_leaves=12)


# ----------------------------------------------------------------------------- boundary import
@settings(max_examples=30, **SETTINGS)
@given(geom=hostile_geometry(), name=st.text(max_size=20), code=st.text(min_size=0, max_size=12))
def test_boundary_import_of_hostile_geometry(runner, sessionmaker, tmp_path_factory, geom, name, code):
    from gridmap.boundaries.cli import boundaries_group

    before = fingerprint(sessionmaker)
    path = tmp_path_factory.mktemp("b") / "district.geojson"
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": code or "X1", "name": name},
                                                     "geometry": geom}]}
    path.write_text(json.dumps(fc, allow_nan=True), encoding="utf-8")
    r = runner.invoke(boundaries_group, ["import", str(path), "--level", "district"])
    assert "Traceback" not in r.output and not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit), \
        (geom, r.output, r.exception)
    if r.exit_code != 0:
        assert r.output.strip(), "a refusal without a message"
        assert fingerprint(sessionmaker) == before, r.output
    else:  # accepted: then it really was a valid polygon inside the world
        with sessionmaker() as s:
            assert s.scalar(select(func.count(Area.id))) == before[0] + 1
        with transaction(sessionmaker) as s:  # leave the next example a clean slate
            s.execute(AreaGeometry.__table__.delete())
            s.execute(Area.__table__.delete())


# ----------------------------------------------------------------------------- locate and intake
@pytest.fixture
def api(app, sessionmaker, loaded_city):
    from tests.test_pages import wire

    wire(app)
    with transaction(sessionmaker) as s:
        make_category(s, "test.litter")
        w = make_worker(s, "W1", cell_code=CELL)
        make_user(s, "w1", "worker", worker=w)
        make_user(s, "west", "street", area_code="330999001")
        toks = {u: auth(make_token(s, u)) for u in ("w1", "west")}
    return app.test_client(), toks


@settings(max_examples=60, **SETTINGS)
@given(lon=st.one_of(st.text(max_size=12), st.floats().map(repr), finite.map(str)),
       lat=st.one_of(st.text(max_size=12), st.floats().map(repr), lat.map(str)),
       crs=st.one_of(st.sampled_from(["wgs84", "gcj02", "bd09", "cgcs2000", "EPSG:4549", "EPSG:999999", "", "²"]),
                     st.text(max_size=12)),
       snap=st.one_of(st.none(), st.text(max_size=8), st.floats().map(repr)))
def test_locate_never_fails(api, lon, lat, crs, snap):
    c, toks = api
    q = {"lon": lon, "lat": lat, "crs": crs, **({"snap_m": snap} if snap is not None else {})}
    r = c.get("/api/v1/locate", query_string=q, headers=toks["w1"])
    assert r.status_code < 500, (q, r.get_data(as_text=True)[:300])
    if r.status_code == 400:
        assert r.json.get("error")


@st.composite
def case_body(draw):
    body = draw(st.dictionaries(st.sampled_from(["category", "description", "title", "location", "address", "reporter",
                                                 "urgent", "external_id", "source", "cell"]), json_value, max_size=6))
    if draw(st.booleans()):
        body["location"] = {"lon": draw(st.one_of(coord, json_value)), "lat": draw(st.one_of(lat, weird, json_value)),
                            "crs": draw(st.one_of(st.sampled_from(["wgs84", "gcj02", "x"]), json_value))}
    if draw(st.booleans()):
        body.setdefault("category", "test.litter")
        body.setdefault("description", draw(st.text(max_size=40)))
    return body


@settings(max_examples=60, **SETTINGS)
@given(body=case_body(), enc=st.sampled_from(["utf-8", "utf-8-sig", "gbk", "latin-1"]))
def test_case_intake_answers_4xx_or_creates_one_case(api, sessionmaker, body, enc):
    c, toks = api
    before = fingerprint(sessionmaker)
    try:
        raw = json.dumps(body, ensure_ascii=False).encode(enc)
    except UnicodeEncodeError:
        raw = json.dumps(body).encode(enc)
    r = c.post("/api/v1/cases", data=raw, content_type="application/json", headers=toks["w1"])
    assert r.status_code < 500, (body, r.get_data(as_text=True)[:300])
    after = fingerprint(sessionmaker)
    if r.status_code == 201:
        assert after[4] == before[4] + 1  # exactly one case more
    else:
        assert 400 <= r.status_code < 500 and r.json.get("error")
        assert after == before


@settings(max_examples=40, **SETTINGS)
@given(action=st.one_of(st.sampled_from(["accept", "feedback", "mark_duplicate", "dispatch", "reassign", "reject",
                                         "park", "verify_pass"]), json_value),
       extra=st.dictionaries(st.sampled_from(["comment", "version", "data", "lon", "lat"]), json_value, max_size=4))
def test_case_actions_answer_4xx_or_act(api, sessionmaker, action, extra):
    c, toks = api
    with sessionmaker() as s:
        cid = s.scalar(select(func.min(Case.id)))
    if cid is None:
        r = c.post("/api/v1/cases", json={"category": "test.litter", "description": "甲",
                                          "location": {"lon": 122.005, "lat": 30.035}}, headers=toks["w1"])
        assert r.status_code == 201
        cid = r.json["id"]
    before = fingerprint(sessionmaker)
    r = c.post(f"/api/v1/cases/{cid}/actions", json={"action": action, **extra}, headers=toks["west"])
    assert r.status_code < 500, (action, extra, r.get_data(as_text=True)[:300])
    if r.status_code != 200:
        assert fingerprint(sessionmaker) == before


# ----------------------------------------------------------------------------- CSV imports
MOJIBAKE = "井盖缺失".encode("utf-8").decode("latin-1")


@st.composite
def csv_file(draw):
    header = draw(st.sampled_from(["external_id,category,description,lon,lat",
                                   "\ufeffexternal_id,category,description,lon,lat", "external_id;category;description",
                                   "external_id,category,description,lon,lat,reported_at", ""]))
    rows = []
    for i in range(draw(st.integers(0, 6))):
        rows.append(draw(st.one_of(
            st.just(f"e{i},test.litter,路边垃圾,122.005,30.035"),
            st.just(f'e{i},test.litter,"未闭合的引号,122.005,30.035'),
            st.just(f"e{i},test.litter,{MOJIBAKE},122.005,30.035"),
            st.just(f"e{i},test.litter,x,nan,inf"),
            st.just(f"e{i},test.litter,x,1e308,-1e308"),
            st.just(f"e{i},nope,x,122.005,30.035"),
            st.just(f"e{i},test.litter,x,122.005,30.035,0001-01-01"),
            st.just(f"e{i},test.litter,x,30.035,122.005"),
            st.just(f"e{i}"),
            st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40).map(lambda t: t.replace("\n", " ")),
        )))
    text = "\n".join([header, *rows]) + "\n"
    enc = draw(st.sampled_from(["utf-8", "gbk", "utf-8-sig"]))
    return text.encode(enc, errors="replace") if enc != "gbk" else text.encode("gbk", errors="replace")


@settings(max_examples=40, **SETTINGS)
@given(data=csv_file())
def test_cases_csv_import_reports_every_bad_row(sessionmaker, loaded_city, tmp_path_factory, data):
    from gridmap.incidents.bulk import ImportFileError, import_cases_csv

    with sessionmaker() as s:
        missing = s.scalar(select(func.count(Category.id))) == 0
    if missing:
        with transaction(sessionmaker) as t:
            make_category(t, "test.litter")
    before = fingerprint(sessionmaker)
    p = tmp_path_factory.mktemp("csv") / "c.csv"
    p.write_bytes(data)
    try:
        rep = import_cases_csv(sessionmaker, p)
    except ImportFileError as e:
        assert str(p) in str(e) or "c.csv" in str(e)
        assert fingerprint(sessionmaker) == before
        return
    assert rep["rows"] >= rep["imported"] + rep["bad"] + rep["skipped"]
    for line, reason in rep["bad_rows"]:
        assert isinstance(line, int) and line >= 2 and reason
    new_cases = fingerprint(sessionmaker)[4] - before[4]
    assert new_cases == rep["imported"]


@settings(max_examples=30, **SETTINGS)
@given(data=csv_file())
def test_hazards_and_workers_csv_import_refuse_cleanly(hzapp_runner, sessionmaker, tmp_path_factory, data):
    from gridmap.assign.models import Worker
    from gridmap.hazards.models import Hazard

    runner = hzapp_runner
    with sessionmaker() as s:
        before = (s.scalar(select(func.count(Hazard.id))), s.scalar(select(func.count(Worker.id))))
    p = tmp_path_factory.mktemp("csv") / "h.csv"
    p.write_bytes(data)
    for args in (["hazards", "import", str(p)], ["workers", "import", str(p)]):
        r = runner.invoke(args=args)
        assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit)), \
            (args, r.output, r.exception)
        if r.exit_code != 0:
            assert r.output.strip()
    with sessionmaker() as s:
        after = (s.scalar(select(func.count(Hazard.id))), s.scalar(select(func.count(Worker.id))))
    assert after[0] == before[0]  # none of these rows is a hazard row (no type/title columns): all refused


@pytest.fixture
def hzapp_runner(app, sessionmaker, loaded_city):
    from gridmap.hazards import service as hz
    from gridmap.hazards.cli import hazards_group

    if "hazards" not in app.cli.commands:
        app.cli.add_command(hazards_group)
    with transaction(sessionmaker) as s:
        hz.load_types(s)
    return app.test_cli_runner()


# ----------------------------------------------------------------------------- draft operations
@settings(max_examples=40, **SETTINGS)
@given(op=st.sampled_from(["split", "reshape", "create_cell", "transfer", "move_edge", "replace_cells"]),
       geom=hostile_geometry())
def test_draft_operations_with_hostile_geometry(api, sessionmaker, op, geom):
    c, toks = api
    before = fingerprint(sessionmaker)
    line = geom if op != "split" else {**geom, "type": "LineString",
                                       "coordinates": (geom.get("coordinates") or [[]])[0]
                                       if isinstance(geom.get("coordinates"), list) else geom.get("coordinates")}
    body = {"split": {"cell": CELL, "line": line}, "reshape": {"cell": CELL, "polygon": geom},
            "create_cell": {"community": CELL[:12], "polygon": geom}, "transfer": {"polygon": geom, "to": CELL},
            "move_edge": {"cells": [CELL, CELL[:12] + "002"], "line": line},
            "replace_cells": {"community": CELL[:12], "features": {"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {"code": CELL}, "geometry": geom}]}}}[op]
    r = c.post("/api/v1/boundaries/drafts", json={"operation": op, **body}, headers=toks["west"])
    assert r.status_code < 500, (op, geom, r.get_data(as_text=True)[:300])
    if r.status_code >= 400:
        assert r.json.get("error") and fingerprint(sessionmaker) == before
