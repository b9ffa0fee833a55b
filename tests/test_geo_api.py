"""The map-data API (/api/v1/geo): bbox GeoJSON of areas and cases, heat bins, extent, tiles.

Runs on both backends (PostGIS and SpatiaLite) with the test city of conftest.py: district 330999
(122.00–122.08 E, 30.00–30.04 N) → 2 streets → 4 communities → 16 cells of 0.02° × 0.01°.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from gridmap.db import transaction
from gridmap.incidents.models import Case
from tests.casehelpers import (CELL, OTHER_CELL, area, area_chain, auth, make_category, make_token, make_user,
                               make_worker)

UTC = dt.timezone.utc
CITY = "122.0,30.0,122.08,30.04"
NOW = dt.datetime.now(UTC)


@pytest.fixture
def geo_app(app):
    """The app with the geo blueprint (until the lead registers it in create_app)."""
    if "geo_api" not in app.blueprints:
        from gridmap.web.geo_api import bp

        app.register_blueprint(bp)
    return app


@pytest.fixture
def gclient(geo_app):
    return geo_app.test_client()


def add_case(s, category, *, lon, lat, cell_code=CELL, status="dispatched", title=None, urgent=False,
             deadline_at=None, overdue=False, number=None, reported_at=None):
    """A case row placed at lon/lat in ``cell_code`` (None: in no cell), without the life-cycle."""
    chain = area_chain(s, cell_code) if cell_code else {}
    n = s.scalar(select(Case.id).order_by(Case.id.desc()).limit(1)) or 0
    c = Case(source="patrol", category_id=category.id, description=f"测试 {n + 1}", title=title, status=status,
             urgent=urgent, overdue=overdue, deadline_at=deadline_at, lon=lon, lat=lat,
             geom=f"SRID=4326;POINT({lon!r} {lat!r})", number=number or f"T-{n + 1:06d}",
             reported_at=reported_at or NOW, updated_at=NOW, placement="point",
             cell_id=chain["cell"].id if chain else None,
             community_id=chain["community"].id if chain else None,
             street_id=chain["street"].id if chain else None,
             district_id=chain["district"].id if chain else None,
             reporter_name="张三", reporter_phone="13812345678")
    s.add(c)
    s.flush()
    return c


@pytest.fixture
def city(loaded_city, sessionmaker):
    """The test city with an admin, a street user, a worker of CELL and a few cases.

    CELL (122.00–122.02, 30.03–30.04): 3 open (one urgent, one overdue), 1 closed;
    OTHER_CELL (122.04–122.06, 30.03–30.04): 2 open (one titled with HTML); one case outside every cell.
    """
    with transaction(sessionmaker) as s:
        litter = make_category(s, "test.litter", name="暴露垃圾")
        road = make_category(s, "test.road", name="道路破损")
        w = make_worker(s, "W1", cell_code=CELL)
        make_user(s, "admin", "admin")
        make_user(s, "west", "street", area_code="330999001")
        make_user(s, "w1", "worker", worker=w)
        tokens = {u: make_token(s, u) for u in ("admin", "west", "w1")}
        add_case(s, litter, lon=122.005, lat=30.035)
        add_case(s, litter, lon=122.006, lat=30.036, urgent=True)
        add_case(s, road, lon=122.007, lat=30.037, deadline_at=NOW - dt.timedelta(hours=2))
        add_case(s, litter, lon=122.008, lat=30.038, status="closed")
        add_case(s, litter, lon=122.045, lat=30.035, cell_code=OTHER_CELL, title="<img src=x onerror=alert(1)>")
        add_case(s, road, lon=122.046, lat=30.036, cell_code=OTHER_CELL,
                 reported_at=dt.datetime(2025, 1, 10, 4, tzinfo=UTC))
        add_case(s, litter, lon=121.5, lat=29.5, cell_code=None)
        ids = {"cell": area(s, CELL).id, "other": area(s, OTHER_CELL).id}
    return {"tokens": tokens, "ids": ids}


def get(client, url, token):
    return client.get(url, headers=auth(token))


# ----------------------------------------------------------------------------- cells

def test_cells_in_bbox_with_counts(gclient, city):
    r = get(gclient, f"/api/v1/geo/cells?bbox={CITY}&z=14", city["tokens"]["admin"])
    assert r.status_code == 200, r.json
    fc = r.json
    assert fc["type"] == "FeatureCollection" and fc["truncated"] is False
    assert len(fc["features"]) == 16
    by_code = {f["properties"]["code"]: f for f in fc["features"]}
    cell = by_code[CELL]["properties"]
    assert cell["level"] == "cell" and cell["name"] and cell["households"] == 301
    assert cell["open_cases"] == 3  # the closed one does not count
    assert cell["per_1000_households"] == round(3000 / 301, 2)
    assert by_code[OTHER_CELL]["properties"]["open_cases"] == 2
    assert by_code[CELL]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert r.headers["Cache-Control"].startswith("private")


def test_cells_small_bbox_and_levels(gclient, city):
    tok = city["tokens"]["admin"]
    fc = get(gclient, "/api/v1/geo/cells?bbox=122.001,30.031,122.019,30.039", tok).json
    assert [f["properties"]["code"] for f in fc["features"]] == [CELL]
    fc = get(gclient, f"/api/v1/geo/cells?bbox={CITY}&level=community", tok).json
    assert len(fc["features"]) == 4
    nw = next(f["properties"] for f in fc["features"] if f["properties"]["code"] == "330999001001")
    assert nw["households"] == 301 + 302 + 303 + 304  # summed from its cells
    assert nw["open_cases"] == 3
    fc = get(gclient, f"/api/v1/geo/cells?bbox={CITY}&level=district", tok).json
    assert [f["properties"]["open_cases"] for f in fc["features"]] == [5]  # the unplaced case has no district


def test_cells_filters_on_counted_cases(gclient, city):
    fc = get(gclient, f"/api/v1/geo/cells?bbox={CITY}&category=test.road", city["tokens"]["admin"]).json
    counts = {f["properties"]["code"]: f["properties"]["open_cases"] for f in fc["features"]}
    assert counts[CELL] == 1 and counts[OTHER_CELL] == 1
    fc = get(gclient, f"/api/v1/geo/cells?bbox={CITY}&overdue=1", city["tokens"]["admin"]).json
    assert {f["properties"]["code"]: f["properties"]["open_cases"] for f in fc["features"]}[CELL] == 1


def test_cells_simplified_at_low_zoom_stay_drawn(gclient, city):
    fc = get(gclient, "/api/v1/geo/cells?bbox=-180,-85,180,85&z=0", city["tokens"]["admin"]).json
    assert len(fc["features"]) == 16
    assert all(f["geometry"]["coordinates"] for f in fc["features"])
    assert fc["tolerance"] > 0.1


def test_tolerance_is_half_a_pixel():
    from gridmap.web.geo_api import tolerance_deg

    assert tolerance_deg(0, (-1, -1, 1, 1)) == pytest.approx(180 / 256, rel=1e-3)
    assert tolerance_deg(16, (122, 30, 122.01, 30.01)) == pytest.approx(0.5 * 360 / 256 / 2 ** 16 * 0.866, rel=1e-2)
    assert tolerance_deg(None, (122.0, 30.0, 122.2, 30.1)) == pytest.approx(0.2 / 2048)


def test_gzip_when_accepted_and_precision_by_zoom(gclient, city):
    import gzip

    tok = city["tokens"]["admin"]
    r = gclient.get(f"/api/v1/geo/cells?bbox={CITY}&z=14", headers={**auth(tok), "Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in r.headers["Vary"]
    fc = json.loads(gzip.decompress(r.data))
    assert len(fc["features"]) == 16
    plain = get(gclient, f"/api/v1/geo/cells?bbox={CITY}&z=14", tok)
    assert "Content-Encoding" not in plain.headers and len(plain.data) > len(r.data)

    from gridmap.web.geo_api import digits_for, tolerance_deg

    assert digits_for(tolerance_deg(9, (121, 29, 123, 31))) == 4
    assert digits_for(tolerance_deg(18, (122, 30, 122.001, 30.001))) == 7
    low = get(gclient, f"/api/v1/geo/cells?bbox={CITY}&z=3", tok).json
    xs = [x for f in low["features"] for ring in f["geometry"]["coordinates"] for x, _ in ring]
    assert all(round(x, 2) == x for x in xs)


def test_cells_limit_truncates(gclient, city):
    fc = get(gclient, f"/api/v1/geo/cells?bbox={CITY}&limit=5", city["tokens"]["admin"]).json
    assert len(fc["features"]) == 5 and fc["truncated"] is True


def test_cells_scoped(gclient, city):
    fc = get(gclient, f"/api/v1/geo/cells?bbox={CITY}", city["tokens"]["w1"]).json
    assert [f["properties"]["code"] for f in fc["features"]] == [CELL]
    fc = get(gclient, f"/api/v1/geo/cells?bbox={CITY}", city["tokens"]["west"]).json
    codes = {f["properties"]["code"] for f in fc["features"]}
    assert len(codes) == 8 and all(c.startswith("330999001") for c in codes)
    # the district is an ancestor of the street user's area; it counts only the cases they may see
    fc = get(gclient, f"/api/v1/geo/cells?bbox={CITY}&level=district", city["tokens"]["west"]).json
    assert [f["properties"]["open_cases"] for f in fc["features"]] == [3]


# ----------------------------------------------------------------------------- cases

def test_cases_points_text_as_data(gclient, city):
    r = get(gclient, f"/api/v1/geo/cases?bbox={CITY}", city["tokens"]["admin"])
    assert r.status_code == 200, r.json
    fc = r.json
    assert fc["aggregated"] is False and fc["count"] == 5  # open ones in the bbox
    props = [f["properties"] for f in fc["features"]]
    html = next(p for p in props if p["title"].startswith("<img"))
    assert html["title"] == "<img src=x onerror=alert(1)>"  # returned verbatim, as data
    assert set(html) == {"id", "number", "category", "status", "urgent", "overdue", "supervised", "title"}
    assert "13812345678" not in r.get_data(as_text=True) and "张三" not in r.get_data(as_text=True)
    assert sum(p["urgent"] for p in props) == 1 and sum(p["overdue"] for p in props) == 1
    assert {p["category"] for p in props} == {"暴露垃圾", "道路破损"}
    lon, lat = fc["features"][0]["geometry"]["coordinates"]
    assert 122.0 < lon < 122.08 and 30.0 < lat < 30.04


def test_cases_filters(gclient, city):
    tok = city["tokens"]["admin"]
    assert get(gclient, f"/api/v1/geo/cases?bbox={CITY}&status=all", tok).json["count"] == 6
    assert get(gclient, f"/api/v1/geo/cases?bbox={CITY}&status=closed", tok).json["count"] == 1
    assert get(gclient, f"/api/v1/geo/cases?bbox={CITY}&status=closed,dispatched", tok).json["count"] == 6
    assert get(gclient, f"/api/v1/geo/cases?bbox={CITY}&overdue=1", tok).json["count"] == 1
    assert get(gclient, f"/api/v1/geo/cases?bbox={CITY}&category=test.road", tok).json["count"] == 2
    assert get(gclient, f"/api/v1/geo/cases?bbox={CITY}&to=2025-12-31", tok).json["count"] == 1
    assert get(gclient, f"/api/v1/geo/cases?bbox={CITY}&from=2026-01-01", tok).json["count"] == 4 \
        if NOW.year >= 2026 else True
    assert get(gclient, "/api/v1/geo/cases?bbox=121,29,122,30", tok).json["count"] == 1  # the unplaced one


def test_cases_aggregate_past_the_cap(gclient, city):
    fc = get(gclient, "/api/v1/geo/cases?bbox=121,29,123,31&limit=3", city["tokens"]["admin"]).json
    assert fc["aggregated"] is True and fc["total"] == 6
    by = {f["properties"]["cell_code"]: f["properties"] for f in fc["features"]}
    assert by[CELL]["count"] == 3 and by[CELL]["overdue"] == 1 and by[CELL]["urgent"] == 1
    assert by[OTHER_CELL]["count"] == 2
    assert by[None]["count"] == 1  # outside every cell: binned by position
    lon, lat = next(f for f in fc["features"] if f["properties"]["cell_code"] == CELL)["geometry"]["coordinates"]
    assert 122.0 < lon < 122.02 and 30.03 < lat < 30.04


def test_cases_scoped(gclient, city):
    fc = get(gclient, "/api/v1/geo/cases?bbox=121,29,123,31&status=all", city["tokens"]["w1"]).json
    assert fc["count"] == 4
    fc = get(gclient, "/api/v1/geo/cases?bbox=121,29,123,31&limit=1", city["tokens"]["w1"]).json
    assert fc["aggregated"] and [f["properties"]["cell_code"] for f in fc["features"]] == [CELL]


# ----------------------------------------------------------------------------- heat, extent

def test_heat_bins(gclient, city):
    r = get(gclient, "/api/v1/geo/heat?bbox=121,29,123,31", city["tokens"]["admin"])
    assert r.status_code == 200
    pts = r.json
    assert isinstance(pts, list) and all(len(p) == 3 for p in pts)
    assert sum(p[2] for p in pts) == 6
    grid = float(r.headers["X-Gridmap-Grid-Degrees"])
    assert grid == pytest.approx(2 / 256)
    near = [p for p in pts if abs(p[1] - 122.0065) <= 2 * grid and abs(p[0] - 30.0365) <= 2 * grid]
    assert sum(p[2] for p in near) == 3  # the three open cases of CELL
    assert sum(p[2] for p in get(gclient, "/api/v1/geo/heat?bbox=121,29,123,31", city["tokens"]["w1"]).json) == 3
    assert get(gclient, f"/api/v1/geo/heat?bbox={CITY}&category=test.road", city["tokens"]["admin"]).json \
        and sum(p[2] for p in get(gclient, f"/api/v1/geo/heat?bbox={CITY}&category=test.road",
                                  city["tokens"]["admin"]).json) == 2


def test_extent(gclient, city):
    bbox = get(gclient, "/api/v1/geo/extent", city["tokens"]["admin"]).json["bbox"]
    assert bbox == pytest.approx([122.0, 30.0, 122.08, 30.04])
    assert get(gclient, "/api/v1/geo/extent", city["tokens"]["w1"]).json["bbox"] == \
        pytest.approx([122.0, 30.03, 122.02, 30.04])
    assert get(gclient, "/api/v1/geo/extent", city["tokens"]["west"]).json["bbox"] == \
        pytest.approx([122.0, 30.0, 122.04, 30.04])


# ----------------------------------------------------------------------------- errors, auth

@pytest.mark.parametrize("query", [
    "", "bbox=", "bbox=1,2,3", "bbox=a,b,c,d", "bbox=122.1,30,122,30.1", "bbox=122,30,122,30.1",
    "bbox=-200,0,0,10", "bbox=0,-95,10,10", "bbox=nan,0,1,1", "bbox=0,0,1,inf",
])
def test_bad_bbox_400(gclient, city, query):
    for ep in ("cells", "cases", "heat"):
        r = get(gclient, f"/api/v1/geo/{ep}?{query}", city["tokens"]["admin"])
        assert r.status_code == 400, (ep, query, r.data)
        assert "bbox" in r.json["error"]


@pytest.mark.parametrize("ep,query", [
    ("cells", "level=planet"), ("cells", "z=99"), ("cells", "z=x"), ("cells", "limit=0"), ("cells", "limit=99999"),
    ("cells", "colour=red"), ("cases", "status=lost"), ("cases", "category=nope"), ("cases", "from=yesterday"),
    ("cases", "overdue=maybe"), ("cases", "limit=-1"), ("heat", "status=lost"), ("heat", "bogus=1"),
])
def test_bad_parameters_400(gclient, city, ep, query):
    r = get(gclient, f"/api/v1/geo/{ep}?bbox={CITY}&{query}", city["tokens"]["admin"])
    assert r.status_code == 400, r.data
    assert r.is_json and r.json["error"]


@pytest.mark.parametrize("path", ["cells?bbox=" + CITY, "cases?bbox=" + CITY, "heat?bbox=" + CITY, "extent",
                                  "tiles/10/858/419.mvt"])
def test_login_required(gclient, city, path):
    r = gclient.get(f"/api/v1/geo/{path}")
    assert r.status_code == 401 and r.is_json
    r = gclient.get(f"/api/v1/geo/{path}", headers=auth("not-a-token"))
    assert r.status_code == 401


# ----------------------------------------------------------------------------- tiles

def test_vector_tiles(gclient, city, backend):
    # tile z=12 holding 122.0–122.08 E, 30.0–30.04 N: x = floor((122+180)/360·4096) = 3436, y = 1689
    r = get(gclient, "/api/v1/geo/tiles/12/3436/1689.mvt", city["tokens"]["admin"])
    if backend == "spatialite":
        assert r.status_code == 404 and "PostGIS" in r.json["error"]
        return
    assert r.status_code == 200 and r.mimetype == "application/vnd.mapbox-vector-tile"
    assert len(r.data) > 100 and CELL.encode() in r.data
    empty = get(gclient, "/api/v1/geo/tiles/12/0/0.mvt", city["tokens"]["admin"])
    assert empty.status_code == 200 and empty.data == b""
    worker = get(gclient, "/api/v1/geo/tiles/12/3436/1689.mvt", city["tokens"]["w1"])
    assert CELL.encode() in worker.data and OTHER_CELL.encode() not in worker.data
    assert get(gclient, "/api/v1/geo/tiles/12/5000/0.mvt", city["tokens"]["admin"]).status_code == 404


def test_local_basemap_tiles(geo_app, gclient, city, tmp_path):
    folder = tmp_path / "tiles"
    (folder / "3" / "6").mkdir(parents=True)
    (folder / "3" / "6" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    tok = city["tokens"]["admin"]
    assert gclient.get("/tiles/local/3/6/3.png", headers=auth(tok)).status_code == 404  # not configured
    geo_app.config["GRIDMAP_BASEMAP"] = f"local:{folder}"
    r = gclient.get("/tiles/local/3/6/3.png", headers=auth(tok))
    assert r.status_code == 200 and r.data.startswith(b"\x89PNG") and r.mimetype == "image/png"
    assert gclient.get("/tiles/local/3/6/4.png", headers=auth(tok)).status_code == 404
    assert gclient.get("/tiles/local/3/6/3.png").status_code == 401


def test_feature_collection_is_valid_json_with_odd_text(gclient, city, sessionmaker):
    with transaction(sessionmaker) as s:
        from gridmap.incidents.models import Category

        cat = s.scalar(select(Category).where(Category.code == "test.litter"))
        add_case(s, cat, lon=122.01, lat=30.031, title='引号"\\ </script> \u2028 换行\n结束')
    fc = json.loads(get(gclient, f"/api/v1/geo/cases?bbox={CITY}", city["tokens"]["admin"]).get_data(as_text=True))
    assert any(f["properties"]["title"] == '引号"\\ </script> \u2028 换行\n结束' for f in fc["features"])


# ----------------------------------------------------------------------------- basemap and labels

def test_basemap_land_and_names_for_any_logged_in_user(gclient, city):
    import shapely.geometry

    for who in ("admin", "w1"):  # public geography: the worker sees the same land as the admin
        r = get(gclient, f"/api/v1/geo/basemap?bbox={CITY}&z=12", city["tokens"][who])
        assert r.status_code == 200, r.json
        feats = r.json["features"]
        land = [f for f in feats if f["properties"]["kind"] == "land"]
        labels = {(f["properties"]["level"], f["properties"]["name"]) for f in feats if f["properties"]["kind"] == "label"}
        assert [f["properties"]["code"] for f in land] == ["330999"]
        assert shapely.geometry.shape(land[0]["geometry"]).area == pytest.approx(0.08 * 0.04, rel=1e-3)
        assert labels == {("district", "测试区"), ("street", "西街道"), ("street", "东街道")}
    assert gclient.get(f"/api/v1/geo/basemap?bbox={CITY}").status_code == 401
    assert get(gclient, "/api/v1/geo/basemap?bbox=1,2", city["tokens"]["admin"]).status_code == 400


def test_area_label_points_lie_inside_their_area(gclient, city):
    import shapely.geometry

    fc = get(gclient, f"/api/v1/geo/cells?bbox={CITY}&z=15", city["tokens"]["admin"]).json
    assert len(fc["features"]) == 16
    for f in fc["features"]:
        x, y = f["properties"]["label_at"]
        assert shapely.geometry.shape(f["geometry"]).contains(shapely.geometry.Point(x, y))
