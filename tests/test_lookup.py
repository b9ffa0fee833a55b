"""The in-memory cell index: inside, shared edges and vertices, snapping, CRSs, bad coordinates."""
import numpy as np
import pytest
import shapely

from gridmap.boundaries.lookup import CellIndex
from gridmap.geo import coords
from tests.conftest import XS, YS, city_features


@pytest.fixture(scope="module")
def index():
    cells = city_features()["cell"]
    comm = [c["parent"] for c in cells]
    return CellIndex([c["code"] for c in cells], [c["name"] for c in cells], [c["geometry"] for c in cells],
                     {"community": (np.array(comm, dtype=object), np.array(comm, dtype=object))})


def _code(index, res, i=0):
    k = res.cell[i]
    return None if k < 0 else index.codes[k]


def test_point_inside_a_cell(index):
    res = index.locate([122.005], [30.035])
    assert _code(index, res) == "330999001001001"
    assert not res.snapped[0] and res.distance_m[0] == 0


def test_shared_edge_goes_to_smallest_code(index):
    # x = XS[2] is the edge between the first two cells of 330999001001 (north-west community)
    res = index.locate([XS[2]], [30.035])
    assert _code(index, res) == "330999001001001"
    # the street boundary x = XS[4]: west street (330999001…) beats east street (330999002…)
    res = index.locate([XS[4]], [30.035])
    assert _code(index, res) == "330999001001002"


def test_shared_vertex_of_four_cells(index):
    # the vertex where 4 communities meet (XS[4], YS[2]): the smallest covering code wins
    res = index.locate([XS[4]], [YS[2]])
    covering = sorted(c["code"] for c in city_features()["cell"]
                      if shapely.covers(c["geometry"], shapely.Point(XS[4], YS[2])))
    assert len(covering) == 4
    assert _code(index, res) == covering[0]


def test_every_point_of_a_dense_lattice_gets_exactly_one_cell(index):
    # a lattice that hits every edge and vertex of the city: all inside points resolve, none twice
    gx, gy = np.meshgrid(np.linspace(122.0, 122.08, 161), np.linspace(30.0, 30.04, 81))
    res = index.locate(gx.ravel(), gy.ravel(), snap_m=0)
    assert (res.cell >= 0).all()
    # and agrees with a brute-force covers + min code, computed independently
    geoms = index.geoms
    pts = shapely.points(gx.ravel(), gy.ravel())
    cov = shapely.covers(geoms[:, None], pts[None, :])
    expect = np.argmax(cov, axis=0)  # first True = smallest code (index sorted by code)
    assert (res.cell == expect).all()


def test_snapping_within_distance(index):
    # 50 m south of the southern edge, below cell 330999001002004's... any southern cell
    lat = 30.0 - 50 / 110540
    res = index.locate([122.015], [lat], snap_m=100)
    assert res.cell[0] >= 0 and res.snapped[0]
    assert 49 < res.distance_m[0] < 51
    res = index.locate([122.015], [lat], snap_m=30)
    assert res.cell[0] == -1 and not res.snapped[0] and np.isnan(res.distance_m[0])


def test_far_away_point_gets_no_cell(index):
    res = index.locate([121.0], [31.0])
    assert res.cell[0] == -1


def test_gcj02_input_is_converted_before_lookup(index):
    lon, lat = 122.038, 30.025  # 200 m west of a cell edge; GCJ-02 shifts ~420 m east here
    g_lon, g_lat = coords.wgs84_to_gcj02(lon, lat)
    plain = index.locate([lon], [lat])
    as_gcj = index.locate([g_lon], [g_lat], crs="gcj02")
    as_wgs = index.locate([g_lon], [g_lat], crs="wgs84", snap_m=0)
    assert _code(index, as_gcj) == _code(index, plain)
    assert _code(index, as_wgs) != _code(index, plain)  # unconverted, the offset lands in the next cell


def test_bd09_and_projected_input(index):
    lon, lat = 122.075, 30.005
    expect = _code(index, index.locate([lon], [lat]))
    b = coords.wgs84_to_bd09(lon, lat)
    assert _code(index, index.locate([b[0]], [b[1]], crs="bd09")) == expect
    x, y = coords.from_wgs84(lon, lat, "EPSG:4550")
    assert _code(index, index.locate([x], [y], crs="EPSG:4550")) == expect


def test_bad_coordinates_are_not_located(index):
    res = index.locate([np.nan, 200.0, 122.005], [30.0, 30.0, 30.035])
    assert list(res.valid) == [False, False, True]
    assert res.cell[0] == -1 and res.cell[1] == -1 and res.cell[2] >= 0


def test_describe_shape(index):
    res = index.locate([122.005, 0.0], [30.035, 0.0])
    d = index.describe(res, 0)
    assert d["cell"]["code"] == "330999001001001"
    assert d["community"]["code"] == "330999001001"
    assert d["snapped"] is False and d["distance_m"] == 0
    none = index.describe(res, 1)
    assert none["cell"] is None and none["distance_m"] is None


@pytest.mark.parametrize("kind", ["grid", "voronoi"])
def test_bucket_path_agrees_with_brute_force(kind):
    """The bulk path (bucket table) gives exactly what covers + smallest code gives, edges included."""
    rng = np.random.default_rng(7)
    if kind == "grid":
        xs, ys = np.linspace(122.0, 122.1, 11), np.linspace(30.0, 30.1, 11)
        geoms = np.array([shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(10) for i in range(10)])
    else:
        env = shapely.box(122.0, 30.0, 122.1, 30.1)
        seeds = shapely.multipoints(rng.uniform([122.0, 30.0], [122.1, 30.1], (200, 2)))
        geoms = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=env)), env)
    codes = [f"C{i:04d}" for i in range(len(geoms))]
    idx = CellIndex(codes, codes, geoms)
    idx.BUCKET_MIN_POINTS = 0
    # random points, GPS-rounded, plus every vertex of every cell (edge and vertex cases)
    lon = np.round(rng.uniform(121.99, 122.11, 30000), 6)
    lat = np.round(rng.uniform(29.99, 30.11, 30000), 6)
    verts = shapely.get_coordinates(geoms)
    lon, lat = np.r_[lon, verts[:, 0]], np.r_[lat, verts[:, 1]]
    res = idx.locate(lon, lat, snap_m=0)
    pts = shapely.points(lon, lat)
    cov = shapely.covers(idx.geoms[:, None], pts[None, :])
    expect = np.where(cov.any(axis=0), np.argmax(cov, axis=0), -1)
    assert (res.cell == expect).all()
    assert idx._buckets is not None and (idx._buckets[-1] >= 0).mean() > 0.5  # the table did resolve most buckets
