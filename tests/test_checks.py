"""Hierarchy checks: sibling overlaps, children outside their parent, gaps, unknown parents."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest
import shapely

from gridmap.boundaries.checks import check_layer
from gridmap.boundaries.io import read_boundary_file
from gridmap.geo import measure
from tests.fixtures_boundaries import (
    M_LAT,
    M_LON,
    ZHOUSHAN,
    bowtie,
    frame,
    make_city,
    make_grid,
    write_shapefile,
)


def _replace(gdf, i, geom):
    out = gdf.copy()
    geoms = list(out.geometry.values)
    geoms[i] = geom
    return out.set_geometry(geoms, crs=4326)


def _area_in(message: str) -> float:
    m = re.search(r"([\d.]+) m²", message)
    assert m, message
    return float(m.group(1))


def _kinds(problems):
    return sorted((p.severity, p.kind) for p in problems)


@pytest.fixture()
def city():
    return make_city(2, 2, 2, 2)


def test_valid_two_level_coverage_has_no_problems(city):
    communities, cells = city
    assert check_layer(cells, communities, level="cell") == []
    street = frame(["330902001"], ["解放街道"], [shapely.box(*ZHOUSHAN)])
    assert check_layer(communities, street, level="community") == []
    assert check_layer(cells, None, level="cell") == []


def test_overlap_between_two_sibling_cells(city):
    communities, cells = city
    x0, y0, x1, y1 = cells.geometry.values[0].bounds
    grown = shapely.box(x0, y0, x1 + 20 * M_LON, y1)  # 20 m into its east neighbour, same community
    bad = _replace(cells, 0, grown)
    problems = check_layer(bad, communities, level="cell", source="cells.shp")
    assert _kinds(problems) == [("error", "overlap")]
    (p,) = problems
    a, b = cells["code"][0], cells["code"][1]
    assert p.codes == (a, b)
    expected = measure.areas_m2(shapely.intersection(grown, cells.geometry.values[1]))[0]
    assert 21_000 < expected < 23_000  # ~20 m x 1.1 km
    assert _area_in(p.message) == pytest.approx(expected, rel=1e-4)
    assert p.message.startswith(f"cells.shp: cells {a} {cells['name'][0]} and {b} {cells['name'][1]} overlap by ")
    assert x1 < p.lon < x1 + 20 * M_LON and y0 < p.lat < y1
    assert f"{p.lon:.6f} {p.lat:.6f}" in p.message


def test_slivers_thinner_than_the_tolerance_are_not_reported(city):
    communities, cells = city
    x0, y0, x1, y1 = cells.geometry.values[0].bounds
    bad = _replace(cells, 0, shapely.box(x0, y0, x1 + 0.2 * M_LON, y1))  # 0.2 m x 2.2 km = ~440 m²
    assert check_layer(bad, communities, level="cell") == []
    strict = check_layer(bad, communities, level="cell", tolerance_m=0.1)
    assert _kinds(strict) == [("error", "overlap")]


def test_gap_inside_a_community(city):
    communities, cells = city
    cell = cells.geometry.values[5]
    hole = shapely.box(*cell.centroid.buffer(25 * M_LAT).bounds)  # ~50 m square
    holed = _replace(cells, 5, cell.difference(hole))
    problems = check_layer(holed, communities, level="cell", source="cells.shp")
    assert _kinds(problems) == [("error", "gap")]
    (p,) = problems
    parent = cells["parent_code"][5]
    assert p.codes == (parent,)
    assert f"in community {parent} 第{parent[-1]}社区 not covered by any of its cells" in p.message
    assert _area_in(p.message) == pytest.approx(measure.areas_m2(hole)[0], rel=1e-4)
    assert cells["code"][5] in p.message  # next to the cell around it
    assert shapely.Point(p.lon, p.lat).within(hole)


def test_missing_cell_is_a_gap_and_flat_import_ignores_notches(city):
    communities, cells = city
    corner = cells.drop(index=0).reset_index(drop=True)  # the city's south-west corner cell
    problems = check_layer(corner, communities, level="cell")
    assert _kinds(problems) == [("error", "gap")]
    assert problems[0].codes == (cells["parent_code"][0],)
    # without parents a notch open to the outside is no gap
    assert check_layer(corner, None, level="cell") == []


def test_flat_import_reports_enclosed_holes():
    geoms = make_grid(4, 4, ZHOUSHAN)
    codes = [f"c{k:02d}" for k in range(16)]
    cells = frame(codes, codes, geoms)
    assert check_layer(cells, None, level="cell") == []
    inner = cells.drop(index=5).reset_index(drop=True)  # column 1, row 1: surrounded on all sides
    problems = check_layer(inner, None, level="cell", source="cells.geojson")
    assert _kinds(problems) == [("error", "gap")]
    (p,) = problems
    assert set(p.codes) >= {"c01", "c04", "c06", "c09"}
    assert _area_in(p.message) == pytest.approx(measure.areas_m2(geoms[5])[0], rel=1e-4)
    assert shapely.Point(p.lon, p.lat).within(geoms[5])
    notch = cells.drop(index=0).reset_index(drop=True)
    assert check_layer(notch, None, level="cell") == []


def test_child_sticking_out_of_its_parent(city):
    communities, cells = city
    x0, y0, x1, y1 = cells.geometry.values[0].bounds  # south-west cell of the city
    grown = shapely.box(x0 - 15 * M_LON, y0, x1, y1)  # 15 m west, outside everything
    problems = check_layer(_replace(cells, 0, grown), communities, level="cell", source="cells.shp")
    assert _kinds(problems) == [("error", "outside_parent")]
    (p,) = problems
    child, parent = cells["code"][0], cells["parent_code"][0]
    assert p.codes == (child, parent)
    assert f"cell {child} {cells['name'][0]} sticks out of its community {parent} 第1社区 by " in p.message
    out_area = measure.areas_m2(shapely.box(x0 - 15 * M_LON, y0, x0, y1))[0]
    assert _area_in(p.message) == pytest.approx(out_area, rel=1e-4)
    assert x0 - 15 * M_LON < p.lon < x0


def test_child_in_the_wrong_parent_and_unknown_parent(city):
    communities, cells = city
    wrong = cells.copy()
    wrong.loc[0, "parent_code"] = communities["code"][3]
    problems = check_layer(wrong, communities, level="cell")
    out = [p for p in problems if p.kind == "outside_parent"]
    assert len(out) == 1 and out[0].codes == (cells["code"][0], communities["code"][3])
    assert f"lies outside its community {communities['code'][3]} 第4社区 (" in out[0].message
    assert f"; it lies in {communities['code'][0]} 第1社区)" in out[0].message
    gaps = [p for p in problems if p.kind == "gap"]
    assert [g.codes for g in gaps] == [(communities["code"][0],)]

    unknown = cells.copy()
    unknown.loc[2, "parent_code"] = "330902001999"
    problems = check_layer(unknown, communities, level="cell")
    (u,) = [p for p in problems if p.kind == "unknown_parent"]
    assert u.severity == "error" and u.codes == (cells["code"][2],)
    assert "community 330902001999 does not exist among the communities" in u.message


def test_parents_without_children_are_a_warning(city):
    communities, cells = city
    some = cells[cells["parent_code"] != communities["code"][3]].reset_index(drop=True)
    problems = check_layer(some, communities, level="cell")
    assert _kinds(problems) == [("warning", "gap")]
    assert problems[0].codes == (communities["code"][3],)
    assert "1 communities have no cells" in problems[0].message


def test_invalid_children_are_skipped_not_crashed_on(city):
    communities, cells = city
    x0, y0, x1, y1 = cells.geometry.values[0].bounds
    bad = _replace(cells, 0, bowtie(x0, y0, x1 - x0))
    problems = check_layer(bad, communities, level="cell")
    assert not [p for p in problems if p.kind in ("overlap", "outside_parent")]
    # the parts a repaired bow-tie leaves open are real gaps in its community
    assert {p.codes for p in problems} <= {(cells["parent_code"][0],)}


def test_checks_on_a_file_read_from_disk(tmp_path, city):
    communities, cells = city
    x0, y0, x1, y1 = cells.geometry.values[0].bounds
    shp = write_shapefile(_replace(cells, 0, shapely.box(x0, y0, x1 + 20 * M_LON, y1)), tmp_path / "cells.shp")
    layer = read_boundary_file(shp, "cell")
    assert layer.errors == []
    problems = check_layer(layer.features, communities, level="cell", source="cells.shp")
    assert [p.kind for p in problems] == ["overlap"]
    assert problems[0].row == 1


def _jitter(xy: np.ndarray, metres: float) -> np.ndarray:
    """Move each vertex up to ``metres``, by a function of its coordinates (rings stay closed)."""
    phase = xy[:, 0] * 7.3e6 + xy[:, 1] * 3.1e6
    return xy + np.column_stack([np.sin(phase) * metres * M_LON, np.cos(phase * 1.7) * metres * M_LAT])


def _big_city(segment_m: float | None = None):
    """400 communities of 8 cells (3,200 cells). With ``segment_m``, every boundary is densified
    to about that vertex spacing, alternately a bit finer or coarser, and every vertex moved by
    up to 5 cm: neighbours' shared edges no longer match (not a valid coverage: the slow path),
    and thousands of sub-tolerance slivers appear that must not be reported."""
    bounds = (122.0, 29.9, 122.3, 30.1)
    communities, cells = make_city(20, 20, 2, 4, bounds)
    if segment_m:
        step = segment_m * M_LAT * np.where(np.arange(len(cells)) % 2 == 0, 1.0, 1.37)
        g = shapely.segmentize(cells.geometry.values, step)
        cells = cells.set_geometry(shapely.transform(g, lambda xy: _jitter(xy, 0.05)), crs=4326)
        g = shapely.segmentize(communities.geometry.values, segment_m * 1.21 * M_LAT)
        communities = communities.set_geometry(shapely.transform(g, lambda xy: _jitter(xy, 0.05)), crs=4326)
    return communities, cells


@pytest.mark.parametrize("segment_m", [pytest.param(None, id="exact-coverage"),
                                       pytest.param(10.0, id="densified", marks=pytest.mark.slow)])
def test_runtime_for_a_3000_cell_city(segment_m, capsys):
    communities, cells = _big_city(segment_m)
    assert len(cells) == 3200 and len(communities) == 400
    nverts = int(shapely.get_num_coordinates(cells.geometry.values).sum())
    t0 = time.perf_counter()
    problems = check_layer(cells, communities, level="cell")
    elapsed = time.perf_counter() - t0
    assert problems == []
    assert shapely.is_valid(cells.geometry.values).all()
    assert bool(shapely.coverage_is_valid(cells.geometry.values[:8])) == (segment_m is None)
    # one overlap and one gap injected: exactly those two are found
    g = cells.geometry.values
    x0, y0, x1, y1 = g[100].bounds
    bad = _replace(cells, 100, shapely.box(x0, y0, x1 + 10 * M_LON, y1)).drop(index=1000).reset_index(drop=True)
    t1 = time.perf_counter()
    found = check_layer(bad, communities, level="cell")
    elapsed2 = time.perf_counter() - t1
    assert sorted(p.kind for p in found) == ["gap", "overlap"]
    assert [p.codes for p in found if p.kind == "overlap"] == [(cells["code"][100], cells["code"][101])]
    with capsys.disabled():
        print(f"\ncheck_layer, 3,200 cells / 400 communities ({nverts} cell vertices, {segment_m or 'exact'}): "
              f"clean {elapsed:.2f} s, with an overlap and a gap {elapsed2:.2f} s")


# ------------------------------------------------------------------ spikes (thin spurs of a ring)
def _with_spike(cell, length_m: float, width_m: float, *, up: bool = True):
    """``cell`` (a box on the city's edge) with a rectangular spur out of the middle of its top edge."""
    x0, y0, x1, y1 = cell.bounds
    xm = (x0 + x1) / 2
    w, ln = width_m * M_LON, length_m * M_LAT
    return shapely.Polygon([(x0, y0), (x1, y0), (x1, y1), (xm + w, y1), (xm + w, y1 + ln), (xm, y1 + ln),
                            (xm, y1), (x0, y1)])


def _top_cell(cells):
    tops = cells.geometry.bounds["maxy"].to_numpy()
    return int(np.flatnonzero(tops == tops.max())[0])


def test_a_drawn_spike_is_a_warning_with_its_size_and_place(city):
    communities, cells = city
    i = _top_cell(cells)
    spiky = _with_spike(cells.geometry.values[i], 260.0, 0.02)
    assert spiky.is_valid
    problems = check_layer(_replace(cells, i, spiky), communities, level="cell", source="cells.shp")
    # 2 cm wide: thinner than the tolerance, so no coverage check sees it; only the spike check does
    assert _kinds(problems) == [("warning", "spike")]
    (p,) = problems
    assert p.codes == (cells["code"][i],)
    assert p.params["length_m"] == pytest.approx(260.0, rel=0.03)
    assert p.params["width_m"] == pytest.approx(0.02, rel=0.2)
    top = cells.geometry.values[i].bounds[3]
    assert p.lat == pytest.approx(top + 260.0 * M_LAT, abs=2 * M_LAT)  # the far end of the needle
    assert p.message.startswith(f"cells.shp: cell {cells['code'][i]} {cells['name'][i]} has a spike")


def test_spike_check_runs_on_any_level_and_on_flat_layers(city):
    communities, cells = city
    k = _top_cell(communities)
    spiky = _with_spike(communities.geometry.values[k], 40.0, 0.5)
    problems = check_layer(_replace(communities, k, spiky), None, level="community")
    assert [(p.kind, p.codes) for p in problems] == [("spike", (communities["code"][k],))]


def test_corners_short_stubs_and_wide_arms_are_not_spikes(city):
    communities, cells = city
    i = _top_cell(cells)
    x0, y0, x1, y1 = cells.geometry.values[i].bounds
    # a wedge: its 8° tip reaches only ~7 m out of its body
    a = np.radians(8)
    wedge = shapely.Polygon([(x0, y0), (x0 + 200 * M_LON, y0),
                             (x0 + 200 * np.cos(a) * M_LON, y0 + 200 * np.sin(a) * M_LAT)])
    for geom in (_with_spike(cells.geometry.values[i], 6.0, 0.02),    # a stub shorter than 10 m
                 _with_spike(cells.geometry.values[i], 300.0, 5.0),   # an arm 5 m wide is a shape, not a spike
                 wedge):
        assert [p for p in check_layer(_replace(cells, i, geom), None, level="cell") if p.kind == "spike"] == []


def test_the_demo_cells_have_no_spike():
    from gridmap.boundaries.checks import find_spikes
    from gridmap.demo import REPO

    for name in ("zhoushan_cells.shp", "zhoushan_communities.shp"):
        layer = read_boundary_file(str(REPO / "data" / "shapefiles" / name), "cell")
        gdf = layer.features
        assert len(gdf) > 400
        assert find_spikes(gdf.geometry.values, gdf["code"].to_numpy()) == []
