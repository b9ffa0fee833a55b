"""Builders of boundary geometries and real boundary files for the boundary tests.

Everything is made in lon/lat around Zhoushan (122.1°E, 30.0°N, CGCS2000 GK zone EPSG:4550)
and written with real GDAL through pyogrio. Grids are built from one set of np.linspace
edges so that neighbouring boxes share exactly the same vertex coordinates (a valid
coverage); ``box(x0 + i * dx, ...)`` would not be one.
"""
from __future__ import annotations

import math
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import Polygon

from gridmap.geo import measure

#: a ~3.9 km x 4.4 km block of Zhoushan (Dinghai)
ZHOUSHAN = (122.10, 29.98, 122.14, 30.02)
M_LAT = 1.0 / 110_574.0  # degrees of latitude per metre near 30°N
M_LON = 1.0 / (111_320.0 * math.cos(math.radians(30.0)))  # degrees of longitude per metre


def make_grid(n: int, m: int, bounds: tuple[float, float, float, float]) -> list[Polygon]:
    """n columns x m rows of boxes covering ``bounds`` exactly, row by row from the south-west.

    The edges are computed once (np.linspace), so shared edges have identical coordinates.
    """
    x0, y0, x1, y1 = bounds
    xs = np.linspace(x0, x1, n + 1)
    ys = np.linspace(y0, y1, m + 1)
    return [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(m) for i in range(n)]


def frame(codes, names, geoms, parent_codes=None, **columns) -> gpd.GeoDataFrame:
    data = {"code": list(codes), "name": list(names)}
    if parent_codes is not None:
        data["parent_code"] = list(parent_codes)
    data.update({k: (v if isinstance(v, pd.api.extensions.ExtensionArray) else list(v)) for k, v in columns.items()})
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs="EPSG:4326")


def make_city(
    comm_x: int = 2,
    comm_y: int = 2,
    cells_x: int = 2,
    cells_y: int = 2,
    bounds: tuple[float, float, float, float] = ZHOUSHAN,
    street_code: str = "330902001",
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(communities, cells): a valid two-level coverage.

    Community k has code ``street_code + f"{k+1:03d}"`` (12 digits) and name 第k社区;
    its cells have 15-digit codes and names 第k社区第j网格.
    """
    comm_geoms = make_grid(comm_x, comm_y, bounds)
    ccodes = [f"{street_code}{k + 1:03d}" for k in range(len(comm_geoms))]
    cnames = [f"第{k + 1}社区" for k in range(len(comm_geoms))]
    communities = frame(ccodes, cnames, comm_geoms, [street_code] * len(ccodes))
    codes, names, parents, geoms = [], [], [], []
    for code, name, g in zip(ccodes, cnames, comm_geoms):
        for j, cell in enumerate(make_grid(cells_x, cells_y, g.bounds)):
            codes.append(f"{code}{j + 1:03d}")
            names.append(f"{name}第{j + 1}网格")
            parents.append(code)
            geoms.append(cell)
    cells = frame(codes, names, geoms, parents)
    return communities, cells


def bowtie(x: float, y: float, d: float) -> Polygon:
    """A self-intersecting 'bow-tie' square of side d at (x, y): crosses at the centre."""
    return Polygon([(x, y), (x + d, y + d), (x + d, y), (x, y + d), (x, y)])


def ldid(dbf: Path | str) -> int:
    with open(dbf, "rb") as fh:
        return fh.read(32)[29]


def set_ldid(dbf: Path | str, value: int) -> None:
    """Set the DBF language-driver byte (offset 29)."""
    with open(dbf, "r+b") as fh:
        fh.seek(29)
        fh.write(bytes([value]))


def write_shapefile(
    gdf: gpd.GeoDataFrame,
    path: Path | str,
    *,
    encoding: str = "UTF-8",
    cpg: bool | str = True,
    ldid_byte: int | None = None,
    prj: bool = True,
) -> Path:
    """Write ``gdf`` as a shapefile whose DBF text is in ``encoding``.

    ``cpg``: True keeps what GDAL wrote, False deletes the .cpg, a string writes that text.
    ``ldid_byte`` sets DBF byte 29; ``prj=False`` deletes the .prj.
    """
    path = Path(path)
    with warnings.catch_warnings():  # GDAL launders parent_code to parent_cod, as real files have it
        warnings.filterwarnings("ignore", message="Normalized/laundered field name")
        pyogrio.write_dataframe(gdf, path, driver="ESRI Shapefile", encoding=encoding)
    cpg_path = path.with_suffix(".cpg")
    if cpg is False:
        cpg_path.unlink(missing_ok=True)
    elif isinstance(cpg, str):
        cpg_path.write_text(cpg)
    if ldid_byte is not None:
        set_ldid(path.with_suffix(".dbf"), ldid_byte)
    if not prj:
        path.with_suffix(".prj").unlink()
    return path


def zip_shapefile(shp: Path | str, zip_path: Path | str, folder: str = "") -> Path:
    """Zip a shapefile and all its sidecar files (optionally inside ``folder``)."""
    shp = Path(shp)
    zip_path = Path(zip_path)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(shp.parent.glob(shp.stem + ".*")):
            zf.write(f, arcname=f"{folder}/{f.name}" if folder else f.name)
    return zip_path


def street_frame() -> gpd.GeoDataFrame:
    """Two streets with Chinese names, codes with a leading-zero-free 9 digits."""
    geoms = make_grid(2, 1, ZHOUSHAN)
    return frame(
        ["330902001", "330902002"],
        ["解放街道", "东港街道第一网格"],
        geoms,
        ["330902", "330902"],
        households=pd.array([1200, None], dtype="Int64"),
        population=pd.array([3400, 56], dtype="Int64"),
    )


def max_vertex_distance_m(a, b) -> float:
    """Largest (discrete, vertex-based) Hausdorff distance in metres between corresponding
    lon/lat geometries of two lists; also asserts they have the same numbers of vertices."""
    ga, gb = _multi(a), _multi(b)
    assert len(ga) == len(gb)
    assert (shapely.get_num_coordinates(ga) == shapely.get_num_coordinates(gb)).all()
    epsg = measure.metric_crs_for(ga)
    return float(shapely.hausdorff_distance(measure.to_metric(ga, epsg), measure.to_metric(gb, epsg)).max())


def _multi(geoms) -> np.ndarray:
    arr = np.asarray(geoms, dtype=object)
    single = shapely.get_type_id(arr) == 3
    arr = arr.copy()
    if single.any():
        arr[single] = shapely.multipolygons(arr[single], indices=np.arange(int(single.sum())))
    return arr


def same_geometries(a, b, tolerance: float = 1e-9) -> bool:
    """True when two geometry lists match pairwise: same types and vertex counts, and every
    vertex within ``tolerance`` (degrees) of the other geometry's vertices (ring orientation and
    start vertex do not matter; Polygon equals a 1-part MultiPolygon)."""
    ga, gb = _multi(a), _multi(b)
    return (
        len(ga) == len(gb)
        and bool((shapely.get_type_id(ga) == shapely.get_type_id(gb)).all())
        and bool((shapely.get_num_coordinates(ga) == shapely.get_num_coordinates(gb)).all())
        and bool((shapely.hausdorff_distance(ga, gb) <= tolerance).all())
    )
