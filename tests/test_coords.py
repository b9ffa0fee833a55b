"""Coordinate systems: GCJ-02 / BD-09 exact inverses, CRS parsing, Gauss-Krüger zones."""
import numpy as np
import pytest

from gridmap.geo import coords
from gridmap.geo.coords import CRSError, parse_crs


def _metres(dlon, dlat, lat=30.0):
    return np.hypot(dlon * 111320 * np.cos(np.radians(lat)), dlat * 110540)


def test_gcj02_inverse_is_exact_to_a_centimetre():
    rng = np.random.default_rng(1)
    lon = rng.uniform(73.6, 134.7, 200_000)
    lat = rng.uniform(18.2, 53.5, 200_000)
    g_lon, g_lat = coords.wgs84_to_gcj02(lon, lat)
    w_lon, w_lat = coords.gcj02_to_wgs84(g_lon, g_lat)
    err = _metres(w_lon - lon, w_lat - lat, lat)
    assert err.max() < 0.01


def test_one_step_inverse_would_be_metres_off():
    """The reason the iteration exists: the naive inverse is off by metres somewhere in China."""
    rng = np.random.default_rng(2)
    lon = rng.uniform(73.6, 134.7, 100_000)
    lat = rng.uniform(18.2, 53.5, 100_000)
    g_lon, g_lat = coords.wgs84_to_gcj02(lon, lat)
    f_lon, f_lat = coords.wgs84_to_gcj02(g_lon, g_lat)
    naive_lon, naive_lat = g_lon - (f_lon - g_lon), g_lat - (f_lat - g_lat)
    assert _metres(naive_lon - lon, naive_lat - lat, lat).max() > 1.0


def test_zhoushan_offset_is_hundreds_of_metres():
    g_lon, g_lat = coords.wgs84_to_gcj02(122.2, 30.0)
    shift = _metres(g_lon - 122.2, g_lat - 30.0)
    assert 300 < float(shift) < 700


def test_bd09_round_trip():
    lon = np.array([122.106, 121.47, 116.39])
    lat = np.array([30.016, 31.23, 39.9])
    b = coords.wgs84_to_bd09(lon, lat)
    w = coords.bd09_to_wgs84(*b)
    assert _metres(w[0] - lon, w[1] - lat).max() < 0.01
    # Baidu adds a further offset beyond GCJ-02
    g = coords.wgs84_to_gcj02(lon, lat)
    assert _metres(b[0] - g[0], b[1] - g[1]).min() > 100


@pytest.mark.parametrize("name,kind", [("wgs84", "wgs84"), ("WGS84", "wgs84"), ("EPSG:4326", "wgs84"),
                                       ("cgcs2000", "cgcs2000"), ("EPSG:4490", "cgcs2000"), ("gcj02", "gcj02"),
                                       ("GCJ-02", "gcj02"), ("bd09", "bd09"), ("EPSG:4550", "epsg"),
                                       (None, "wgs84")])
def test_parse_crs(name, kind):
    assert parse_crs(name).kind == kind


@pytest.mark.parametrize("bad", ["mars", "EPSG:999999", "epsg:", "wgs 84"])
def test_parse_crs_refuses_unknown(bad):
    with pytest.raises(CRSError):
        parse_crs(bad)


def test_epsg_axis_order_is_lon_lat():
    # EPSG:4550 (CGCS2000 / 3-degree GK CM 123E): a point on the central meridian has easting 500 km
    x, y = coords.from_wgs84(123.0, 30.0, "EPSG:4550")
    assert abs(float(x) - 500000) < 0.01
    lon, lat = coords.to_wgs84(x, y, "EPSG:4550")
    assert abs(float(lon) - 123.0) < 1e-9 and abs(float(lat) - 30.0) < 1e-9


@pytest.mark.parametrize("lon,epsg", [(122.2, 4550), (121.4, 4549), (116.4, 4548), (75.0, 4534), (135.0, 4554)])
def test_gk_zone(lon, epsg):
    assert coords.gk_zone_epsg(lon) == epsg
