"""Drawn input: what a user hands in, read and checked before any operation.

Owns: :func:`parse_geometry` (WKT, GeoJSON geometry, Feature or FeatureCollection, or the path of
a file holding one), :func:`drawn_polygon` and :func:`drawn_line` (refusing self-intersecting
polygons and coordinates that are not lon/lat), and :func:`read_features` (the features of an
uploaded boundary file or GeoJSON, for replacing a community's cells).
"""
from __future__ import annotations

import json
import os
import re
from typing import Any

import pandas as pd
import shapely
import shapely.errors
import shapely.ops

from gridmap.boundaries.io import BoundaryFileError, BoundaryLayer, read_boundary_file
from gridmap.geo.shapes import as_multi, fmt_at, where
from gridmap.redraw.problems import DraftProblem, RedrawError


def parse_geometry(value: Any, what: str = "geometry"):
    """A shapely geometry from a shapely geometry, WKT, GeoJSON (geometry, Feature or
    FeatureCollection; a dict or text) or the path of a file holding one of those."""
    if isinstance(value, shapely.Geometry):
        return value
    if isinstance(value, dict):
        return _from_geojson(value, what)
    if not isinstance(value, (str, os.PathLike)):
        raise RedrawError(f"{what}: expected WKT, GeoJSON or a file, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise RedrawError(f"{what} is empty")
    if not text.startswith("{") and not text.upper().startswith(("POINT", "LINESTRING", "POLYGON", "MULTI",
                                                                   "GEOMETRYCOLLECTION")):
        if os.path.isfile(text):
            try:
                with open(text, encoding="utf-8-sig") as fh:
                    text = fh.read().strip()
            except OSError as e:
                raise RedrawError(f"{what}: cannot read {value}: {e}") from None
        else:
            raise RedrawError(f"{what}: {text[:60]!r} is neither WKT, GeoJSON nor an existing file")
    if text.startswith("{"):
        try:
            return _from_geojson(json.loads(text), what)
        except json.JSONDecodeError as e:
            raise RedrawError(f"{what}: not valid GeoJSON ({e})") from None
    try:
        return shapely.from_wkt(text)
    except Exception as e:  # noqa: BLE001 - GEOS parse errors
        raise RedrawError(f"{what}: not valid WKT ({e})") from None


def _from_geojson(obj: dict, what: str):
    t = obj.get("type")
    try:
        if t == "FeatureCollection":
            geoms = [shapely.geometry.shape(f["geometry"]) for f in obj.get("features", []) if f.get("geometry")]
            if not geoms:
                raise RedrawError(f"{what}: the FeatureCollection has no geometry")
            if len(geoms) == 1:
                return geoms[0]
            kinds = {g.geom_type.replace("Multi", "") for g in geoms}
            if kinds == {"LineString"}:
                return shapely.ops.linemerge(shapely.MultiLineString(
                    [p for g in geoms for p in shapely.get_parts(g)]))
            return shapely.GeometryCollection(geoms)
        if t == "Feature":
            if not obj.get("geometry"):
                raise RedrawError(f"{what}: the Feature has no geometry")
            return shapely.geometry.shape(obj["geometry"])
        return shapely.geometry.shape(obj)
    except RedrawError:
        raise
    except Exception as e:  # noqa: BLE001
        raise RedrawError(f"{what}: not a GeoJSON geometry ({e})") from None


def _check_lonlat(g, what: str) -> None:
    x0, y0, x1, y1 = g.bounds
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= 90 and -90 <= y1 <= 90):
        raise RedrawError(f"{what}: coordinates out of range ({x0:.3f} {y0:.3f} … {x1:.3f} {y1:.3f}); draw in "
                          f"WGS84 longitude/latitude")


def drawn_polygon(value: Any, what: str = "polygon"):
    """A drawn polygon, refused with the reason when it is not a valid (Multi)Polygon."""
    g = parse_geometry(value, what)
    if shapely.get_type_id(g) == 7:
        g = as_multi(g) or g
    if shapely.get_type_id(g) not in (3, 6) or g.is_empty:
        raise RedrawError(f"{what}: expected a polygon, got {g.geom_type}")
    _check_lonlat(g, what)
    if not g.is_valid:
        reason = shapely.is_valid_reason(g)

        m = re.search(r"\[(-?[\d.e+-]+)\s+(-?[\d.e+-]+)\]", reason)
        lon, lat = (float(m.group(1)), float(m.group(2))) if m else where(g)
        kind = reason.split("[")[0].strip()
        hint = " (its edges cross each other: draw the outline without crossing it)" if "elf" in kind else ""
        raise RedrawError(f"{what} is not a valid polygon: {kind} at {lon:.6f} {lat:.6f}{hint}",
                          [DraftProblem("error", "invalid_drawing", f"{what}: {kind}{hint}", (), lon, lat,
                                        shapely.Point(lon, lat))])
    return as_multi(g)


def drawn_line(value: Any, what: str = "line"):
    g = parse_geometry(value, what)
    if shapely.get_type_id(g) == 5:
        g = shapely.ops.linemerge(g)
    if shapely.get_type_id(g) != 1 or g.is_empty:
        raise RedrawError(f"{what}: expected one continuous line, got {g.geom_type}")
    _check_lonlat(g, what)
    if not g.is_simple:
        lon, lat = where(g)
        raise RedrawError(f"{what} crosses itself {fmt_at(lon, lat)}: draw it without loops",
                          [DraftProblem("error", "invalid_drawing", f"{what} crosses itself", (), lon, lat, g)])
    return g


def read_features(source: Any, *, crs=None, code_field=None, name_field=None) -> list[dict]:

    if isinstance(source, (str, os.PathLike)):
        try:
            source = read_boundary_file(str(source), "cell", crs=crs, code_field=code_field, name_field=name_field)
        except BoundaryFileError as e:
            raise RedrawError(str(e)) from None
        except Exception as e:  # noqa: BLE001 - coordinate system errors and the like
            raise RedrawError(f"{source}: {e}") from None
    if isinstance(source, BoundaryLayer):
        errs = source.errors
        if errs:
            raise RedrawError(f"{source.path}: {len(errs)} errors, first: {errs[0].message}",
                              [DraftProblem("error", p.kind, p.message, tuple(p.codes), p.lon, p.lat)
                               for p in errs])
        out = []
        for f in source.features.itertuples(index=False):
            out.append({"code": f.code if isinstance(f.code, str) and f.code.strip() else None,
                        "name": f.name if isinstance(f.name, str) and f.name.strip() else None,
                        "kind": f.kind if isinstance(f.kind, str) and f.kind else None,
                        "households": None if isna(f.households) else int(f.households),
                        "population": None if isna(f.population) else int(f.population),
                        "geometry": f.geometry})
        return out
    out = []
    for f in source:
        g = f.get("geometry")
        out.append({**f, "geometry": parse_geometry(g) if g is not None and not isinstance(g, shapely.Geometry) else g})
    if not out:
        raise RedrawError("the source holds no cells")
    return out


def isna(v) -> bool:
    try:

        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False
