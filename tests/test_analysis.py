"""Analysis: rates, trend, Gi* hot spots, repeat places, kernel density, scorecards, exports and their API,
on PostGIS and SpatiaLite. Expected values are worked out by hand next to each test.

The test city (tests/conftest.py): 16 cells of 0.02° × 0.01° in a 4 × 4 grid; households of a
cell = 300 + its sequence number in the community (301 … 304), communities store none.
"""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import shapely
from geoalchemy2 import WKTElement

from gridmap.accounts.actor import SYSTEM
from gridmap.analysis import hotspots as hs
from gridmap.analysis.common import AnalysisError
from gridmap.analysis.rates import rates, trend
from gridmap.analysis.repeats import repeats
from gridmap.analysis.scorecards import ScorecardConfig, composite, scorecards
from gridmap.db import transaction
from gridmap.incidents.models import Case
from tests.casehelpers import (CELL, area_chain, auth, make_case, make_category, make_token, make_user,
                               make_worker)

UTC = dt.timezone.utc
NW = ["330999001001001", "330999001001002", "330999001001003", "330999001001004"]  # one community


def at(day: int, hour: int = 2, month: int = 3) -> dt.datetime:
    """``day`` March 2026, ``hour`` UTC (10:00 Shanghai for the default)."""
    return dt.datetime(2026, month, day, hour, tzinfo=UTC)


def centre(city, code) -> tuple[float, float]:
    g = next(c["geometry"] for c in city["cell"] if c["code"] == code)
    return g.centroid.x, g.centroid.y


def add_cases(s, cat, items):
    """Bulk cases: items of (cell_code, lon, lat, reported_at); status filed."""
    chains = {}
    rows = []
    for code, lon, lat, when in items:
        ch = chains.setdefault(code, area_chain(s, code))
        rows.append(Case(source="hotline", category_id=cat.id, description="测试", status="filed", placement="point",
                         lon=lon, lat=lat, geom=WKTElement(f"POINT({lon} {lat})", srid=4326),
                         cell_id=ch["cell"].id, community_id=ch["community"].id, street_id=ch["street"].id,
                         district_id=ch["district"].id, reported_at=when, updated_at=when, filed_at=when))
    s.add_all(rows)
    s.flush()


@pytest.fixture
def cats(sessionmaker, loaded_city):
    with transaction(sessionmaker) as s:
        city = make_category(s, "city", kind="event")
        litter = make_category(s, "city.litter", name="暴露垃圾", parent=city)
        noise = make_category(s, "city.noise", name="噪声扰民", parent=city)
        dispute = make_category(s, "dispute", name="矛盾纠纷", kind="dispute")
        return {"city": city, "litter": litter, "noise": noise, "dispute": dispute}


# ----------------------------------------------------------------------------- rates and trend

def test_rates_per_cell_and_community_per_1000_households(sessionmaker, loaded_city, cats):
    with transaction(sessionmaker) as s:
        x, y = centre(loaded_city, NW[0])
        add_cases(s, cats["litter"], [(NW[0], x, y, at(3))] * 3 + [(NW[3], *centre(loaded_city, NW[3]), at(4))])
        add_cases(s, cats["noise"], [(NW[0], x, y, at(5)), (NW[0], x, y, at(20, month=4))])  # April: outside
    with sessionmaker() as s:
        out = rates(s, SYSTEM, level="cell", date_from="2026-03-01", date_to="2026-03-31")
        assert out["total"] == 5 and out["areas"] == 16 and out["message"] is None
        top = out["rows"][0]
        # 4 cases / 301 households × 1000 = 13.289
        assert (top["code"], top["count"], top["households"], top["per_1000_households"]) == (NW[0], 4, 301, 13.289)
        assert next(r for r in out["rows"] if r["code"] == NW[3])["per_1000_households"] == round(1000 / 304, 3)
        com = rates(s, SYSTEM, level="community", date_from="2026-03-01", date_to="2026-03-31", category="city.litter")
        nw = next(r for r in com["rows"] if r["code"] == "330999001001")
        # 4 litter cases; households 301 + 302 + 303 + 304 = 1210 → 3.306 per 1,000
        assert (nw["count"], nw["households"], nw["per_1000_households"]) == (4, 1210, 3.306)
        inside = rates(s, SYSTEM, level="cell", area="330999002", date_from="2026-03-01", date_to="2026-03-31")
        assert inside["areas"] == 8 and inside["total"] == 0 and "no cases" in inside["message"]
        with pytest.raises(AnalysisError, match="level must be one of"):
            rates(s, SYSTEM, level="planet")


def test_trend_by_month_week_and_category_zero_filled(sessionmaker, loaded_city, cats):
    x, y = centre(loaded_city, NW[0])
    with transaction(sessionmaker) as s:
        # 1 March 2026 is a Sunday. 28 Feb 23:30 UTC is 1 March 07:30 in Shanghai.
        add_cases(s, cats["litter"], [(NW[0], x, y, dt.datetime(2026, 2, 28, 23, 30, tzinfo=UTC)),
                                      (NW[0], x, y, at(2)), (NW[0], x, y, at(9)), (NW[0], x, y, at(1, month=5))])
        add_cases(s, cats["dispute"], [(NW[0], x, y, at(3))])
    with sessionmaker() as s:
        m = trend(s, SYSTEM, unit="month", date_from="2026-02-01", date_to="2026-05-31")
        assert m["periods"] == ["2026-02-01", "2026-03-01", "2026-04-01", "2026-05-01"]
        assert m["series"][0]["counts"] == [0, 4, 0, 1] and m["total"] == 5
        w = trend(s, SYSTEM, unit="week", date_from="2026-03-01", date_to="2026-03-15")
        # weeks start on Monday: 23 Feb (holds Sun 1 March), 2 March, 9 March
        assert w["periods"] == ["2026-02-23", "2026-03-02", "2026-03-09"]
        assert w["series"][0]["counts"] == [1, 2, 1]
        c = trend(s, SYSTEM, unit="month", by="category", date_from="2026-03-01", date_to="2026-03-31")
        assert {(x["key"], x["counts"][0]) for x in c["series"]} == {("city", 3), ("dispute", 1)}
        a = trend(s, SYSTEM, unit="day", by="cell", date_from="2026-03-01", date_to="2026-03-03")
        assert [x["name"] for x in a["series"]] == [f"{NW[0]} 西北社区第1网格"] and a["series"][0]["counts"] == [1, 1, 1]
        e = trend(s, SYSTEM, unit="month", date_from="2027-01-01", date_to="2027-02-28")
        assert e["total"] == 0 and e["series"][0]["counts"] == [0, 0] and "no cases" in e["message"]
        with pytest.raises(AnalysisError, match="ends .* before it starts"):
            trend(s, SYSTEM, date_from="2026-03-05", date_to="2026-03-01")


# ----------------------------------------------------------------------------- hot spots

def test_contiguity_is_queen_and_attaches_islands():
    from libpysal.weights import Queen
    import geopandas as gpd

    rng = np.random.default_rng(3)
    pts = shapely.points(rng.random((60, 2)) * 0.05 + [122.0, 30.0])
    frame = shapely.box(122.0, 30.0, 122.05, 30.05)
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts),
                                                                              extend_to=frame)), frame)
    lone = shapely.box(122.2, 30.2, 122.21, 30.21)  # an island cell
    geoms = np.append(cells, lone)
    w, info = hs.contiguity(geoms)
    q = Queen.from_dataframe(gpd.GeoDataFrame(geometry=list(cells)), use_index=False, silence_warnings=True)
    for i in range(len(cells)):
        assert set(w.neighbors[i]) - {len(cells)} == set(q.neighbors[i])
    assert info["islands"] == 1 and info["islands_attached"] == 1
    assert len(w.neighbors[len(cells)]) == 1  # linked to its nearest cell, both ways
    nearest = w.neighbors[len(cells)][0]
    assert len(cells) in w.neighbors[nearest]


def test_vectorised_permutation_test_gives_esdas_p_values():
    """The numpy permutation test draws esda's permuted ids and must give esda's own p_sim."""
    rng = np.random.default_rng(5)
    pts = shapely.points(rng.random((400, 2)) * 0.1 + [122.0, 30.0])
    frame = shapely.box(122.0, 30.0, 122.1, 30.1)
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts),
                                                                              extend_to=frame)), frame)
    w, _ = hs.contiguity(cells)
    y = rng.poisson(2.0, len(cells)).astype(float)
    y[:40] += rng.poisson(6.0, 40)
    for seed in (1, 20260301):
        z1, p1 = hs.gi_star(y, w, permutations=999, seed=seed, engine="esda")
        z2, p2 = hs.gi_star(y, w, permutations=999, seed=seed, engine="numpy")
        assert np.allclose(z1, z2)
        assert np.array_equal(p1.astype(np.float32), p2.astype(np.float32))  # esda keeps p_sim in float32
    z3, p3 = hs.gi_star(y, w, permutations=0)
    assert np.allclose(z3, z1) and (p3 > 0).all()


def test_hotspots_find_the_cluster_and_match_esda(sessionmaker, loaded_city, cats, backend):
    from esda.getisord import G_Local
    from libpysal.weights import Queen
    import geopandas as gpd

    counts = {NW[0]: 30, NW[1]: 25, NW[2]: 28, NW[3]: 30, "330999001002001": 2, "330999002002004": 1}
    with transaction(sessionmaker) as s:
        items = []
        for code, n in counts.items():
            x, y = centre(loaded_city, code)
            items += [(code, x, y, at(1 + k % 20)) for k in range(n)]
        add_cases(s, cats["litter"], items)
    hs._cache.clear()  # the weights may be cached by an earlier test on the same database and boundaries
    with sessionmaker() as s:
        fc = hs.hotspots(s, SYSTEM, level="cell", date_from="2026-03-01", date_to="2026-03-31")
        again = hs.hotspots(s, SYSTEM, level="cell", date_from="2026-03-01", date_to="2026-03-31")
    assert fc["type"] == "FeatureCollection" and fc["total"] == sum(counts.values()) and len(fc["features"]) == 16
    assert fc["weights"]["cached"] is False and again["weights"]["cached"] is True
    props = {f["properties"]["code"]: f["properties"] for f in fc["features"]}
    assert props[NW[0]]["count"] == 30 and props["330999002001001"]["count"] == 0
    assert all(set(p) >= {"gi_z", "p_value", "class", "count"} for p in props.values())
    hot = {c for c, p in props.items() if p["class"].startswith("hot")}
    assert hot and hot <= set(NW) | {"330999001002001", "330999001002002"}
    assert not any(p["class"].startswith("hot") for c, p in props.items() if c.startswith("330999002"))
    best = max(props.values(), key=lambda p: p["gi_z"])
    assert best["code"] in NW and best["p_value"] <= 0.05
    assert [f["properties"]["gi_z"] for f in again["features"]] == [f["properties"]["gi_z"] for f in fc["features"]]
    # the same statistic from esda with libpysal's own queen weights
    cells = sorted(loaded_city["cell"], key=lambda c: c["code"])
    q = Queen.from_dataframe(gpd.GeoDataFrame(geometry=[c["geometry"] for c in cells]), use_index=False)
    y = np.array([counts.get(c["code"], 0) for c in cells], dtype=float)
    ref = G_Local(y, q, transform="B", star=True, permutations=0)
    ours = np.array([props[c["code"]]["gi_z"] for c in cells])
    assert np.allclose(ours, ref.Zs, atol=1e-4)


def test_hotspots_with_no_cases_is_an_empty_result(sessionmaker, loaded_city, cats):
    with sessionmaker() as s:
        fc = hs.hotspots(s, SYSTEM, date_from="2026-03-01", date_to="2026-03-31")
        assert fc["features"] == [] and "no cases" in fc["message"]
        x, y = centre(loaded_city, NW[0])
    with transaction(sessionmaker) as s:
        add_cases(s, cats["litter"], [(NW[0], x, y, at(3))])
    with sessionmaker() as s:
        few = hs.hotspots(s, SYSTEM, level="street", date_from="2026-03-01", date_to="2026-03-31")
        assert few["features"] == [] and "at least 3" in few["message"]
        one = hs.hotspots(s, SYSTEM, date_from="2026-03-01", date_to="2026-03-31", permutations=99)
        assert len(one["features"]) == 16 and "single area" in one["message"]


def test_classify_thresholds():
    z = np.array([3.0, 2.0, 1.0, -3.0, -2.0, 2.0, np.nan])
    p = np.array([0.001, 0.03, 0.08, 0.005, 0.2, 0.2, 0.001])
    assert list(hs.classify(z, p)) == ["hot_99", "hot_95", "hot_90", "cold_99", "not_significant",
                                       "not_significant", "not_significant"]


# ----------------------------------------------------------------------------- repeats and density

def test_repeats_cluster_same_category_within_the_radius(sessionmaker, loaded_city, cats):
    import math

    x, y = 122.005, 30.035
    m = 1 / 111_320 / math.cos(math.radians(30.035))  # one metre of longitude in degrees
    with transaction(sessionmaker) as s:
        # four litter cases within 30 m (one 29 m east), spread over 40 days
        add_cases(s, cats["litter"], [(CELL, x, y, at(1)), (CELL, x + 10 * m, y, at(5)),
                                      (CELL, x + 20 * m, y, at(20)), (CELL, x + 29 * m, y, at(10, month=4))])
        add_cases(s, cats["noise"], [(CELL, x, y, at(2)), (CELL, x + 5 * m, y, at(3))])  # only two
        add_cases(s, cats["litter"], [(NW[1], 122.035, 30.035, at(2)), (NW[1], 122.036, 30.035, at(3)),
                                      (NW[1], 122.037, 30.035, at(4))])  # ~96 m apart: no place
    with sessionmaker() as s:
        out = repeats(s, SYSTEM, date_from="2026-03-01", date_to="2026-04-30", radius_m=50, min_count=3)
        assert out["count"] == 1
        p = out["places"][0]
        assert (p["category"], p["count"], p["cell"]["code"]) == ("city.litter", 4, CELL)
        assert 10 < p["radius_m"] < 20 and p["first"].startswith("2026-03-01")
        assert len(p["case_ids"]) == 4
        assert repeats(s, SYSTEM, date_from="2026-03-01", date_to="2026-04-30", min_count=5)["count"] == 0
        # within 7 days only the first two fall together: not 3
        assert repeats(s, SYSTEM, date_from="2026-03-01", date_to="2026-04-30", window_days=7)["count"] == 0
        assert repeats(s, SYSTEM, date_from="2026-03-01", date_to="2026-04-30", window_days=20)["count"] == 1
        assert repeats(s, SYSTEM, date_from="2026-03-01", date_to="2026-04-30", radius_m=150)["count"] == 2
        empty = repeats(s, SYSTEM, date_from="2025-01-01", date_to="2025-01-31")
        assert empty["places"] == [] and "no located cases" in empty["message"]
        with pytest.raises(AnalysisError, match="min_count"):
            repeats(s, SYSTEM, min_count=1)


def test_density_grid_peaks_at_the_cluster(sessionmaker, loaded_city, cats):
    with transaction(sessionmaker) as s:
        add_cases(s, cats["litter"], [(CELL, 122.01, 30.035, at(3))] * 20 + [(NW[3], 122.03, 30.025, at(4))])
    with sessionmaker() as s:
        out = hs.density(s, SYSTEM, date_from="2026-03-01", date_to="2026-03-31", cell_m=100, bandwidth_m=200)
        assert out["total"] == 21 and out["units"] == "cases per km²"
        lat, lon, v = out["points"][0]
        assert abs(lon - 122.01) < 0.002 and abs(lat - 30.035) < 0.002 and v == out["max"]
        # the kernel integrates to the number of cases: sum × cell area (km²) ≈ 21
        assert sum(p[2] for p in out["points"]) * 0.01 == pytest.approx(21, rel=0.05)
        none = hs.density(s, SYSTEM, date_from="2025-03-01", date_to="2025-03-31")
        assert none["points"] == [] and none["message"]
        coarse = hs.density(s, SYSTEM, date_from="2026-03-01", date_to="2026-03-31", cell_m=5, bandwidth_m=10,
                            max_cells=10_000)
        assert coarse["cell_m"] > 5 and coarse["grid"]["nx"] * coarse["grid"]["ny"] <= 10_000
        assert coarse["total"] == 21
        with pytest.raises(AnalysisError, match="bandwidth_m must be from cell_m"):
            hs.density(s, SYSTEM, cell_m=100, bandwidth_m=50)


# ----------------------------------------------------------------------------- scorecards

@pytest.fixture
def scored(sessionmaker, loaded_city):
    """Three workers, cases dispatched in March 2026 with a 2-day limit, by hand:

    W1 (cell 001001001): 4 cases closed on time, satisfaction 5, 5, 4, 4 → on time 4/4 = 1.0, sat 4.5
    W2 (cell 001001002): 4 cases: 3 on time, 1 closed after the deadline; satisfaction 3 each → 3/4 = 0.75, sat 3
    W3 (cell 002001001): 1 case closed on time, never evaluated (closed only) → 1/1, not ranked (min_due 3)
    """
    with transaction(sessionmaker) as s:
        cat = make_category(s, "city.litter", limit=(2, "natural_days"))
        w1 = make_worker(s, "W1", cell_code=NW[0], name="甲")
        w2 = make_worker(s, "W2", cell_code=NW[1], name="乙")
        w3 = make_worker(s, "W3", cell_code="330999002001001", name="丙")
        day = dt.timedelta(days=1)
        for i, sat in enumerate((5, 5, 4, 4)):
            make_case(s, "evaluated", category=cat, cell_code=NW[0], worker=w1, at=at(2 + i), satisfaction=sat)
        for i in range(3):
            make_case(s, "evaluated", category=cat, cell_code=NW[1], worker=w2, at=at(2 + i), satisfaction=3)
        t0 = at(10)
        make_case(s, "evaluated", category=cat, cell_code=NW[1], worker=w2, at=t0, satisfaction=3,
                  times={"file": t0, "dispatch": t0, "accept": t0 + day, "feedback": t0 + 2 * day,
                         "verify_pass": t0 + 3 * day, "evaluate": t0 + 4 * day})
        make_case(s, "closed", category=cat, cell_code="330999002001001", worker=w3, at=at(6))
    return {"w1": w1, "w2": w2, "w3": w3}


def test_scorecards_rank_workers_by_hand_computed_composite(sessionmaker, scored):
    cfg = ScorecardConfig(weight_on_time=0.7, weight_satisfaction=0.3, min_due=3, top_n=1, red_min=0.9,
                          black_max=0.9)
    with sessionmaker() as s:
        out = scorecards(s, SYSTEM, level="worker", date_from="2026-03-01", date_to="2026-03-31", config=cfg)
    rows = {r["code"]: r for r in out["rows"]}
    # W1: 0.7 × 1.0 + 0.3 × (4.5 − 1) / 4 = 0.7 + 0.2625 = 0.9625
    assert rows["W1"]["composite"] == pytest.approx(0.9625) and rows["W1"]["rank"] == 1
    # W2: 0.7 × 0.75 + 0.3 × (3 − 1) / 4 = 0.525 + 0.15 = 0.675
    assert (rows["W2"]["due"], rows["W2"]["closed_on_time"]) == (4, 3)
    assert rows["W2"]["composite"] == pytest.approx(0.675) and rows["W2"]["rank"] == 2
    # W3: one case, scored on the on-time rate alone, not ranked
    assert (rows["W3"]["composite"], rows["W3"]["basis"], rows["W3"]["rank"]) == (1.0, "on_time_only", None)
    assert "fewer than 3" in rows["W3"]["note"]
    assert [u["code"] for u in out["red_list"]] == ["W1"] and [u["code"] for u in out["black_list"]] == ["W2"]
    assert [r["code"] for r in out["rows"]] == ["W1", "W2", "W3"]


def test_scorecards_thresholds_and_levels(sessionmaker, scored):
    with sessionmaker() as s:
        strict = scorecards(s, SYSTEM, level="worker", date_from="2026-03-01", date_to="2026-03-31",
                            config=ScorecardConfig(red_min=0.99, black_max=0.5, min_due=1))
        # with min_due 1, W3's 1.0 on one case beats W1's 0.9625; only W3 reaches 0.99, nobody is down to 0.5
        assert [u["code"] for u in strict["red_list"]] == ["W3"] and strict["black_list"] == []
        assert [r["code"] for r in strict["rows"]] == ["W3", "W1", "W2"]
        cells = scorecards(s, SYSTEM, level="community", date_from="2026-03-01", date_to="2026-03-31",
                           config=ScorecardConfig(min_due=1))
        nw = next(r for r in cells["rows"] if r["code"] == "330999001001")
        # 8 cases due, 7 on time; satisfaction (5+5+4+4+3+3+3+3)/8 = 3.75 → 0.7 × 0.875 + 0.3 × 0.6875
        assert (nw["due"], nw["closed_on_time"]) == (8, 7)
        assert nw["composite"] == pytest.approx(0.7 * 0.875 + 0.3 * 0.6875, abs=1e-4)  # rounded to 4 places
        empty = scorecards(s, SYSTEM, level="cell", date_from="2025-01-01", date_to="2025-01-31")
        assert empty["rows"] == [] and "nothing to rank" in empty["message"]
    assert composite(None, 4.0, ScorecardConfig()) == (None, "no_cases_due")
    with pytest.raises(AnalysisError, match="weight_on_time"):
        ScorecardConfig(weight_on_time=2).check()


# ----------------------------------------------------------------------------- export

def test_export_cases_and_hazards_in_three_formats(sessionmaker, loaded_city, cats, tmp_path):
    import pyogrio

    from gridmap.analysis.export import export
    from gridmap.hazards import service as hz

    with transaction(sessionmaker) as s:
        add_cases(s, cats["litter"], [(NW[0], 122.005, 30.035, at(3)), ("330999002001001", 122.045, 30.035, at(4))])
        hz.create_hazard(s, {"type": "fire", "title": "楼道堆物", "lon": 122.005, "lat": 30.035}, SYSTEM, now=at(3))
        _, west = make_user(s, "west", "street", area_code="330999001")
    with sessionmaker() as s:
        data, mime, name, n = export(s, SYSTEM, kind="cases", fmt="csv", filters={"from": "2026-03-01"})
        assert data.startswith("\ufeff".encode()) and n == 2 and mime.startswith("text/csv")
        text = data.decode("utf-8-sig").splitlines()
        assert text[0].startswith("id,number,source,category,category_name") and "reporter" not in text[0]
        assert len(text) == 3 and "2026-03-03T10:00:00+08:00" in text[1]
        data, _, _, n = export(s, west, kind="cases", fmt="geojson")
        fc = json.loads(data)
        assert n == 1 and fc["features"][0]["geometry"]["coordinates"] == [122.005, 30.035]
        data, _, name, n = export(s, SYSTEM, kind="hazards", fmt="gpkg")
        assert name.endswith(".gpkg") and n == 1
        p = tmp_path / "h.gpkg"
        p.write_bytes(data)
        df = pyogrio.read_dataframe(p)
        assert list(df["title"]) == ["楼道堆物"] and df.crs.to_epsg() == 4326
        with pytest.raises(AnalysisError, match="format must be one of"):
            export(s, SYSTEM, kind="cases", fmt="xls")
        with pytest.raises(AnalysisError, match="unknown filter"):
            export(s, SYSTEM, kind="cases", fmt="csv", filters={"colour": "red"})


# ----------------------------------------------------------------------------- API

@pytest.fixture
def api(app, sessionmaker, loaded_city, cats):
    from gridmap.web.analysis_api import bp

    if "analysis_api" not in app.blueprints:
        app.register_blueprint(bp)
    with transaction(sessionmaker) as s:
        items = []
        for code, n in {NW[0]: 12, NW[1]: 10, NW[3]: 11}.items():
            x, y = centre(loaded_city, code)
            items += [(code, x, y, at(3))] * n
        add_cases(s, cats["litter"], items)
        make_user(s, "city1", "city")
        make_user(s, "east", "street", area_code="330999002")
        tokens = {u: make_token(s, u) for u in ("city1", "east")}
    return app.test_client(), tokens


def test_api_hotspots_rates_trend_repeats_density(api):
    client, tok = api
    q = "from=2026-03-01&to=2026-03-31"
    fc = client.get(f"/api/v1/hotspots?level=cell&category=city&{q}&permutations=99", headers=auth(tok["city1"]))
    assert fc.status_code == 200
    fc = fc.get_json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 16
    f0 = fc["features"][0]
    assert f0["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert set(f0["properties"]) >= {"gi_z", "p_value", "class", "count"}
    east = client.get(f"/api/v1/hotspots?{q}", headers=auth(tok["east"])).get_json()
    assert east["features"] == [] and "no cases" in east["message"]  # the east street has none
    r = client.get(f"/api/v1/rates?level=community&{q}", headers=auth(tok["city1"])).get_json()
    assert r["rows"][0] == {"id": r["rows"][0]["id"], "code": "330999001001", "name": "西北社区", "households": 1210,
                            "count": 33, "per_1000_households": 27.273}
    t = client.get(f"/api/v1/trend?period=week&{q}", headers=auth(tok["city1"])).get_json()
    assert sum(t["series"][0]["counts"]) == 33
    rp = client.get(f"/api/v1/repeats?{q}&min_count=10", headers=auth(tok["city1"])).get_json()
    assert rp["count"] == 3
    d = client.get(f"/api/v1/density?{q}&cell_m=200&bandwidth_m=400", headers=auth(tok["city1"])).get_json()
    assert d["total"] == 33 and d["points"]
    for bad in ("/api/v1/hotspots?level=planet", "/api/v1/rates?from=2026-13-01", "/api/v1/trend?period=hour",
                "/api/v1/repeats?radius_m=abc", "/api/v1/hotspots?colour=red", "/api/v1/rates?category=nope"):
        resp = client.get(bad, headers=auth(tok["city1"]))
        assert resp.status_code == 400 and resp.get_json()["error"], bad
    assert client.get("/api/v1/hotspots").status_code == 401


def test_api_scorecards_and_export(api, app):
    client, tok = api
    sc = client.get("/api/v1/scorecards?level=cell&from=2026-03-01&to=2026-03-31", headers=auth(tok["city1"]))
    assert sc.status_code == 200 and "red_list" in sc.get_json() and "definitions" in sc.get_json()
    app.config["GRIDMAP_SCORECARD_TOP_N"] = 2
    cfg = client.get("/api/v1/scorecards?min_due=1", headers=auth(tok["city1"])).get_json()["config"]
    assert (cfg["top_n"], cfg["min_due"]) == (2, 1)
    assert client.get("/api/v1/scorecards?red_min=2", headers=auth(tok["city1"])).status_code == 400
    r = client.get("/api/v1/export?kind=cases&format=csv&street=330999001", headers=auth(tok["city1"]))
    assert r.status_code == 200 and r.headers["X-Gridmap-Rows"] == "33"
    assert "attachment" in r.headers["Content-Disposition"]
    r = client.get("/api/v1/export?kind=cases&format=geojson", headers=auth(tok["east"]))
    assert r.status_code == 200 and json.loads(r.data)["count"] == 0  # scoped: none in the east street
    r = client.get("/api/v1/export?kind=hazards&format=gpkg", headers=auth(tok["city1"]))
    assert r.status_code == 200 and r.data[:16] == b"SQLite format 3\x00"
    assert client.get("/api/v1/export?kind=people", headers=auth(tok["city1"])).status_code == 400

