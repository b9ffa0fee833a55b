"""Writing boundary files: one level of boundaries out to Shapefile (plain or zipped, UTF-8 with
a .cpg), GeoJSON, GeoPackage or KML, in EPSG:4326, replacing an existing file.

Owns: :func:`write_boundary_file`. The formats and their extensions are those that
:mod:`gridmap.boundaries.io` reads.
"""
from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridmap.boundaries.io import FORMATS

__all__ = ["write_boundary_file"]

_SHP_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml")


def _export_frame(gdf: gpd.GeoDataFrame, *, shapefile: bool) -> gpd.GeoDataFrame:
    for col in ("code", "name"):
        if col not in gdf.columns:
            raise ValueError(f"cannot write boundaries without a {col!r} column")
    geom = gdf.geometry
    if geom.crs is None:
        geom = geom.set_crs(4326)
    elif geom.crs.to_epsg() != 4326:
        geom = geom.to_crs(4326)
    garr = np.asarray(geom.values, dtype=object)
    single = shapely.get_type_id(garr) == 3
    if single.any():
        garr = garr.copy()
        garr[single] = shapely.multipolygons(garr[single], indices=np.arange(int(single.sum())))

    def col(name: str, dtype: str = "object") -> pd.Series:
        if name in gdf.columns:
            return gdf[name].reset_index(drop=True).astype(dtype)
        return pd.Series([None] * len(gdf), dtype=dtype)

    def text(name: str) -> pd.Series:
        s = col(name)
        return s.where(s.isna(), s.astype(str)).astype(object)

    data = {
        "code": text("code"),
        "name": text("name"),
        ("parent" if shapefile else "parent_code"): text("parent_code"),
        "kind": text("kind"),
        "households": col("households", "Int64"),
        "population": col("population", "Int64"),
    }
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(garr, crs=4326), crs=4326)


def _remove_shapefile(shp: Path) -> None:
    stem = shp.with_suffix("")
    for ext in _SHP_SIDECARS:
        for cand in (Path(f"{stem}{ext}"), Path(f"{stem}{ext.upper()}")):
            if cand.exists():
                cand.unlink()


def _write_shapefile(frame: gpd.GeoDataFrame, shp: Path) -> None:
    _remove_shapefile(shp)
    pyogrio.write_dataframe(
        frame, shp, driver="ESRI Shapefile", encoding="UTF-8", geometry_type="MultiPolygon",
        promote_to_multi=True,
    )
    cpg = shp.with_suffix(".cpg")
    if not cpg.exists():
        cpg.write_text("UTF-8")


def write_boundary_file(gdf: gpd.GeoDataFrame, path: str | Path, *, layer_name: str | None = None) -> None:
    """Write boundaries (the columns of :attr:`BoundaryLayer.features`; ``row`` ignored) to
    ``path``, format by extension: .shp (UTF-8 with a .cpg), .zip (zipped shapefile),
    .geojson/.json, .gpkg, .kml. Coordinates in EPSG:4326. Replaces an existing file.

    Shapefile fields: code, name, parent, kind, households, population (≤ 10 characters);
    other formats call the parent field parent_code.
    """
    p = Path(path)
    ext = p.suffix.lower()
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise ValueError(f"cannot write {p.name}: use .shp, .zip, .geojson, .json, .gpkg or .kml")
    frame = _export_frame(gdf, shapefile=fmt in ("shapefile", "zip"))
    name = layer_name or p.stem
    if fmt == "shapefile":
        _write_shapefile(frame, p)
        return
    if fmt == "zip":
        with tempfile.TemporaryDirectory(prefix="gridmap-zip-") as tmp:
            shp = Path(tmp) / f"{name}.shp"
            _write_shapefile(frame, shp)
            tmp_zip = p.with_name(p.name + ".tmp")
            with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(Path(tmp).iterdir()):
                    zf.write(f, arcname=f.name)
            tmp_zip.replace(p)
        return
    if p.exists():
        p.unlink()
    if fmt == "geojson":
        pyogrio.write_dataframe(frame, p, driver="GeoJSON", layer=name, promote_to_multi=True)
    elif fmt == "gpkg":
        pyogrio.write_dataframe(frame, p, driver="GPKG", layer=name, promote_to_multi=True,
                                geometry_type="MultiPolygon")
    else:  # kml
        drivers = pyogrio.list_drivers(write=True)
        driver = "LIBKML" if "LIBKML" in drivers else "KML"
        pyogrio.write_dataframe(frame, p, driver=driver, layer=name, promote_to_multi=True)
