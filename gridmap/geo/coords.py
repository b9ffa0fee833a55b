"""Coordinate systems gridmap accepts, and conversion of any of them to WGS84.

Owns: the names users give a coordinate system (``wgs84``, ``cgcs2000``, ``gcj02``,
``bd09``, ``EPSG:<n>``), the GCJ-02 (Amap, Tencent) and BD-09 (Baidu) offsets with
exact iterative inverses, and the choice of a CGCS2000 3-degree Gauss-Krüger zone for
metric work (areas, lengths, snap distances). Everything is vectorized over numpy
arrays; nothing here touches a database.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 obfuscation.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0

#: names accepted for each system (lower-cased)
ALIASES = {
    "wgs84": "wgs84", "epsg:4326": "wgs84", "4326": "wgs84", "gps": "wgs84",
    "cgcs2000": "cgcs2000", "epsg:4490": "cgcs2000", "4490": "cgcs2000",
    "gcj02": "gcj02", "gcj-02": "gcj02", "amap": "gcj02", "tencent": "gcj02",
    "bd09": "bd09", "bd-09": "bd09", "baidu": "bd09",
}


class CRSError(ValueError):
    """An unknown or unusable coordinate system name."""


@dataclass(frozen=True)
class CRS:
    """A parsed coordinate-system name: ``kind`` is wgs84, cgcs2000, gcj02, bd09 or epsg."""

    kind: str
    epsg: int | None = None

    def __str__(self) -> str:
        return f"EPSG:{self.epsg}" if self.kind == "epsg" else self.kind


def parse_crs(name: str | int | None) -> CRS:
    """Parse a user-given CRS name; raise CRSError with the accepted names otherwise."""
    if name is None or name == "":
        return CRS("wgs84")
    key = str(name).strip().lower()
    if key in ALIASES:
        return CRS(ALIASES[key])
    m = re.fullmatch(r"(?:epsg:)?(\d{4,6})", key)
    if m:
        code = int(m.group(1))
        try:
            _pyproj_crs(code)
        except Exception as exc:  # pyproj raises its own CRSError
            raise CRSError(f"unknown coordinate system EPSG:{code}") from exc
        if code == 4326:
            return CRS("wgs84")
        if code == 4490:
            return CRS("cgcs2000")
        return CRS("epsg", code)
    raise CRSError(
        f"unknown coordinate system {name!r}: use wgs84, cgcs2000, gcj02, bd09 or EPSG:<code>"
    )


@lru_cache(maxsize=64)
def _pyproj_crs(code: int):
    from pyproj import CRS as PCRS

    return PCRS.from_epsg(code)


@lru_cache(maxsize=64)
def transformer(src: int | str, dst: int | str):
    """A cached always_xy pyproj Transformer between two CRSs (EPSG codes or WKT/PROJ)."""
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)


def _transform_lat(x, y):
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x, y):
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _gcj_offset(lon, lat):
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat):
    """The published GCJ-02 forward offset (applied everywhere: callers decide where it applies)."""
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon, lat, iterations: int = 30, tol_deg: float = 1e-11):
    """Exact inverse of :func:`wgs84_to_gcj02` by fixed-point iteration.

    The one-step formula (subtract the offset at the GCJ point) is off by up to ~4 m;
    iterating ``w <- w - (f(w) - g)`` converges to well below a millimetre in ~10 steps.
    """
    g_lon = np.asarray(lon, dtype="float64")
    g_lat = np.asarray(lat, dtype="float64")
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(iterations):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = f_lon - g_lon, f_lat - g_lat
        w_lon = w_lon - e_lon
        w_lat = w_lat - e_lat
        if np.nanmax(np.abs(e_lon), initial=0.0) < tol_deg and np.nanmax(np.abs(e_lat), initial=0.0) < tol_deg:
            break
    return w_lon, w_lat


def gcj02_to_bd09(lon, lat):
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon, lat, iterations: int = 30, tol_deg: float = 1e-11):
    """Exact inverse of :func:`gcj02_to_bd09` by fixed-point iteration."""
    b_lon = np.asarray(lon, dtype="float64")
    b_lat = np.asarray(lat, dtype="float64")
    g_lon, g_lat = b_lon - 0.0065, b_lat - 0.006
    for _ in range(iterations):
        f_lon, f_lat = gcj02_to_bd09(g_lon, g_lat)
        e_lon, e_lat = f_lon - b_lon, f_lat - b_lat
        g_lon = g_lon - e_lon
        g_lat = g_lat - e_lat
        if np.nanmax(np.abs(e_lon), initial=0.0) < tol_deg and np.nanmax(np.abs(e_lat), initial=0.0) < tol_deg:
            break
    return g_lon, g_lat


def wgs84_to_bd09(lon, lat):
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat):
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(x, y, crs: str | CRS | None = "wgs84"):
    """Convert coordinates (x = lon/easting, y = lat/northing) in ``crs`` to WGS84 lon, lat.

    Accepts scalars or arrays; returns float64 arrays. For EPSG codes the axis order is
    always x/lon first, y/lat second, whatever the CRS's official order.
    """
    c = crs if isinstance(crs, CRS) else parse_crs(crs)
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    if c.kind in ("wgs84", "cgcs2000"):
        return x, y
    if c.kind == "gcj02":
        return gcj02_to_wgs84(x, y)
    if c.kind == "bd09":
        return bd09_to_wgs84(x, y)
    t = transformer(c.epsg, 4326)
    lon, lat = t.transform(x, y)
    return np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")


def from_wgs84(lon, lat, crs: str | CRS | None = "wgs84"):
    """Inverse of :func:`to_wgs84`."""
    c = crs if isinstance(crs, CRS) else parse_crs(crs)
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    if c.kind in ("wgs84", "cgcs2000"):
        return lon, lat
    if c.kind == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if c.kind == "bd09":
        return wgs84_to_bd09(lon, lat)
    t = transformer(4326, c.epsg)
    x, y = t.transform(lon, lat)
    return np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")


def gk_zone_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone (no zone prefix) for a longitude.

    EPSG:4534 has central meridian 75°E, each next code 3° further east up to
    EPSG:4554 at 135°E. Zhoushan (122–123°E) falls in EPSG:4550 (CM 123°E).
    """
    if not (72.0 <= lon <= 137.0):
        # outside China's zones: fall back to the nearest one rather than fail
        lon = min(max(lon, 73.5), 136.5)
    cm = int(round(lon / 3.0)) * 3
    cm = min(max(cm, 75), 135)
    return 4534 + (cm - 75) // 3


def valid_lonlat_mask(lon, lat):
    """True where lon/lat are finite and within -180..180 / -90..90."""
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    return np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
