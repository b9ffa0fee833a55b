"""Reading and writing boundary files: encodings, formats, CRSs, fields, bad features.

Real files written to tmp_path with real GDAL (pyogrio); nothing is mocked.
"""
from __future__ import annotations

import json
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gridmap.boundaries.io import (
    BoundaryFileError,
    BoundaryLayer,
    Problem,
    detect_dbf_encoding,
    read_boundary_file,
)
from gridmap.boundaries.export import write_boundary_file
from gridmap.geo import coords, measure
from tests.fixtures_boundaries import (
    ZHOUSHAN,
    bowtie,
    frame,
    ldid,
    make_city,
    make_grid,
    max_vertex_distance_m,
    same_geometries,
    street_frame,
    write_shapefile,
    zip_shapefile,
)

NAMES = ["解放街道", "东港街道第一网格"]


def _gbk_shapefile(tmp_path, *, cpg=False, ldid_byte=0x4D, name="streets.shp"):
    shp = write_shapefile(street_frame(), tmp_path / name, encoding="GBK", cpg=cpg, ldid_byte=ldid_byte)
    raw = shp.with_suffix(".dbf").read_bytes()
    assert "解放街道".encode("gbk") in raw  # really GBK bytes on disk
    assert "解放街道".encode("utf-8") not in raw
    return shp


# ------------------------------------------------------------------ encodings


def test_gbk_shapefile_without_cpg_uses_the_dbf_language_driver(tmp_path):
    shp = _gbk_shapefile(tmp_path)
    assert not shp.with_suffix(".cpg").exists()
    assert ldid(shp.with_suffix(".dbf")) == 0x4D
    assert detect_dbf_encoding(shp) == ("GBK", "dbf-language-driver")
    assert detect_dbf_encoding(shp.with_suffix(".dbf")) == ("GBK", "dbf-language-driver")

    layer = read_boundary_file(shp, "street")
    assert isinstance(layer, BoundaryLayer)
    assert list(layer.features["name"]) == NAMES
    assert list(layer.features["code"]) == ["330902001", "330902002"]
    assert (layer.encoding, layer.encoding_source) == ("GBK", "dbf-language-driver")
    assert layer.problems == []


def test_esri_ldid_0x7a_is_gbk_too(tmp_path):
    shp = _gbk_shapefile(tmp_path, ldid_byte=0x7A)
    assert detect_dbf_encoding(shp) == ("GBK", "dbf-language-driver")
    assert list(read_boundary_file(shp, "street").features["name"]) == NAMES


def test_gbk_shapefile_with_cpg(tmp_path):
    shp = _gbk_shapefile(tmp_path, cpg="GBK", ldid_byte=0)
    layer = read_boundary_file(shp, "street")
    assert list(layer.features["name"]) == NAMES
    assert (layer.encoding, layer.encoding_source) == ("GBK", "cpg")


@pytest.mark.parametrize(
    "text, expected",
    [("GBK", "GBK"), ("CP936", "GBK"), ("936", "GBK"), ("ANSI 936", "GBK"), ("gb2312", "GBK"),
     ("UTF-8", "UTF-8"), ("utf8", "UTF-8"), ("65001", "UTF-8"), ("\ufeffUTF-8\r\n", "UTF-8"), ("950", "BIG5")],
)
def test_cpg_names(tmp_path, text, expected):
    shp = write_shapefile(street_frame(), tmp_path / "s.shp", encoding="UTF-8", cpg=text)
    assert detect_dbf_encoding(shp) == (expected, "cpg")


def test_utf8_shapefile_with_cpg(tmp_path):
    shp = write_shapefile(street_frame(), tmp_path / "u.shp", encoding="UTF-8")
    assert shp.with_suffix(".cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    layer = read_boundary_file(shp, "street")
    assert list(layer.features["name"]) == NAMES
    assert (layer.encoding, layer.encoding_source) == ("UTF-8", "cpg")


def test_gbk_without_any_hint_falls_back_from_utf8_with_a_warning(tmp_path):
    shp = _gbk_shapefile(tmp_path, cpg=False, ldid_byte=0)
    assert detect_dbf_encoding(shp) == (None, "none")
    layer = read_boundary_file(shp, "street")
    assert list(layer.features["name"]) == NAMES
    assert layer.encoding == "GBK" and layer.encoding_source == "default"
    warn = [p for p in layer.problems if p.kind == "encoding"]
    assert len(warn) == 1 and warn[0].severity == "warning" and "GBK" in warn[0].message
    assert layer.errors == []


def test_wrong_cpg_is_caught_and_option_overrides_everything(tmp_path):
    shp = _gbk_shapefile(tmp_path, cpg="UTF-8", ldid_byte=0)
    fallback = read_boundary_file(shp, "street")
    assert list(fallback.features["name"]) == NAMES
    assert any(p.kind == "encoding" and ".cpg says UTF-8" in p.message for p in fallback.problems)

    given = read_boundary_file(shp, "street", encoding="cp936")
    assert list(given.features["name"]) == NAMES
    assert (given.encoding, given.encoding_source) == ("GBK", "option")
    assert given.problems == []

    with pytest.raises(BoundaryFileError, match="UTF-8"):
        read_boundary_file(shp, "street", encoding="UTF-8")


def test_chinese_field_names_in_a_gbk_dbf(tmp_path):
    g = street_frame().rename(columns={"code": "编码", "name": "名称", "parent_code": "上级编码", "households": "户数"})
    g = g.drop(columns=["population"])
    shp = write_shapefile(g, tmp_path / "zh.shp", encoding="GBK", cpg=False, ldid_byte=0x4D)
    layer = read_boundary_file(shp, "street")
    f = layer.features
    assert list(f["name"]) == NAMES
    assert list(f["parent_code"]) == ["330902", "330902"]
    assert f["households"].tolist()[0] == 1200 and pd.isna(f["households"].tolist()[1])
    assert str(f["households"].dtype) == "Int64"


# ------------------------------------------------------------------ formats


def test_zipped_gbk_shapefile_detects_encoding_from_the_dbf(tmp_path):
    (tmp_path / "src").mkdir()
    shp = _gbk_shapefile(tmp_path / "src")
    z = zip_shapefile(shp, tmp_path / "streets.zip", folder="数据")
    layer = read_boundary_file(z, "street")
    assert list(layer.features["name"]) == NAMES
    assert layer.encoding_source == "dbf-language-driver"
    assert layer.path == str(z)
    assert layer.features.crs.to_epsg() == 4326


def test_zip_without_shapefile_is_a_file_error(tmp_path):
    z = tmp_path / "empty.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    with pytest.raises(BoundaryFileError, match=r"empty\.zip.*readme\.txt"):
        read_boundary_file(z, "cell")


def test_geojson_geopackage_kml(tmp_path):
    g = street_frame()
    pyogrio.write_dataframe(g, tmp_path / "s.geojson", driver="GeoJSON")
    pyogrio.write_dataframe(g, tmp_path / "s.gpkg", driver="GPKG", layer="streets")
    pyogrio.write_dataframe(g, tmp_path / "s.kml", driver="KML")
    for name in ("s.geojson", "s.gpkg", "s.kml"):
        layer = read_boundary_file(tmp_path / name, "street")
        assert list(layer.features["code"]) == ["330902001", "330902002"], name
        assert list(layer.features["name"]) == NAMES, name
        assert layer.encoding is None and layer.encoding_source == "n/a"
        assert set(shapely.get_type_id(layer.features.geometry.values)) == {6}, name
        assert layer.errors == [], (name, layer.problems)


def test_geopackage_layer_choice(tmp_path):
    gpkg = tmp_path / "many.gpkg"
    pts = gpd.GeoDataFrame({"code": ["p"], "name": ["点"]}, geometry=[shapely.Point(122.1, 30)], crs=4326)
    pyogrio.write_dataframe(pts, gpkg, layer="poi")
    communities, cells = make_city()
    pyogrio.write_dataframe(communities, gpkg, layer="communities", append=False)
    pyogrio.write_dataframe(cells, gpkg, layer="cells")
    assert [str(n) for n in pyogrio.list_layers(gpkg)[:, 0]] == ["poi", "communities", "cells"]

    first = read_boundary_file(gpkg, "community")
    assert list(first.features["code"]) == list(communities["code"])
    assert any(p.kind == "file" and "cells" in p.message for p in first.problems)

    chosen = read_boundary_file(gpkg, "cell", layer="cells")
    assert list(chosen.features["code"]) == list(cells["code"])
    assert list(chosen.features["parent_code"]) == list(cells["parent_code"])

    with pytest.raises(BoundaryFileError, match="no layer 'nope'.*communities"):
        read_boundary_file(gpkg, "cell", layer="nope")


def test_points_only_file_is_rejected(tmp_path):
    pts = gpd.GeoDataFrame({"code": ["1", "2"], "name": ["甲", "乙"]},
                           geometry=[shapely.Point(122.1, 30), shapely.Point(122.2, 30)], crs=4326)
    path = tmp_path / "points.geojson"
    pyogrio.write_dataframe(pts, path)
    with pytest.raises(BoundaryFileError, match=r"points\.geojson: no polygon features \(found Point ×2\)"):
        read_boundary_file(path, "cell")


def test_a_point_among_polygons_is_a_feature_error(tmp_path):
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "1", "name": "甲"},
         "geometry": shapely.geometry.mapping(shapely.box(122.1, 30.0, 122.11, 30.01))},
        {"type": "Feature", "properties": {"code": "2", "name": "乙"},
         "geometry": {"type": "Point", "coordinates": [122.2, 30.0]}},
        {"type": "Feature", "properties": {"code": "3", "name": "丙"}, "geometry": None},
    ]}
    path = tmp_path / "mixed.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    layer = read_boundary_file(path, "cell")
    assert list(layer.features["code"]) == ["1"]
    kinds = {(p.kind, p.row) for p in layer.errors}
    assert kinds == {("not_polygon", 2), ("empty_geometry", 3)}
    assert "mixed.geojson row 2 (2 乙): geometry is a Point" in layer.errors[0].message


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "a.csv").write_text("code,name\n1,x\n")
    with pytest.raises(BoundaryFileError, match="unknown format '.csv'"):
        read_boundary_file(tmp_path / "a.csv", "cell")
    with pytest.raises(BoundaryFileError, match="no such file"):
        read_boundary_file(tmp_path / "missing.shp", "cell")
    with pytest.raises(ValueError, match="unknown level"):
        read_boundary_file(tmp_path / "a.csv", "province")


# ------------------------------------------------------------------ coordinate systems


def test_shapefile_without_prj_needs_crs(tmp_path):
    shp = write_shapefile(street_frame(), tmp_path / "noprj.shp", prj=False)
    with pytest.raises(BoundaryFileError, match=r"noprj\.shp: .*no coordinate system.*--crs"):
        read_boundary_file(shp, "street")
    layer = read_boundary_file(shp, "street", crs="EPSG:4326")
    assert list(layer.features["name"]) == NAMES
    assert "given by --crs" in layer.source_crs
    assert same_geometries(layer.features.geometry.values, street_frame().geometry.values, 1e-12)


def test_bad_crs_name_is_a_file_error(tmp_path):
    shp = write_shapefile(street_frame(), tmp_path / "s.shp")
    with pytest.raises(BoundaryFileError, match="unknown coordinate system"):
        read_boundary_file(shp, "street", crs="mars2000")


def test_gauss_krueger_file_comes_back_in_lonlat(tmp_path):
    truth = street_frame()
    projected = truth.to_crs(4550)
    assert projected.total_bounds[0] > 100_000  # metres, not degrees
    shp = write_shapefile(projected, tmp_path / "gk.shp")
    layer = read_boundary_file(shp, "street")
    assert "EPSG:4550" in layer.source_crs
    minx, miny, maxx, maxy = layer.features.total_bounds
    assert 122.0 < minx < maxx < 122.2 and 29.9 < miny < maxy < 30.1
    assert max_vertex_distance_m(layer.features.geometry.values, truth.geometry.values) < 0.001


def test_projected_coordinates_labelled_wgs84_are_refused(tmp_path):
    wrong = street_frame().to_crs(4550).set_crs(4326, allow_override=True)
    path = tmp_path / "wrong.gpkg"
    pyogrio.write_dataframe(wrong, path)
    with pytest.raises(BoundaryFileError, match="not longitude/latitude.*--crs"):
        read_boundary_file(path, "street")


@pytest.mark.parametrize("system, forward", [("gcj02", coords.wgs84_to_gcj02), ("bd09", coords.wgs84_to_bd09)])
def test_gcj02_and_bd09_files_are_converted_exactly(tmp_path, system, forward):
    communities, _ = make_city(3, 3, 1, 1)
    truth = communities.geometry.values

    def fwd(xy):
        x, y = forward(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    shifted = shapely.transform(np.asarray(truth, dtype=object), fwd)
    assert max_vertex_distance_m(shifted, truth) > 100  # the offset is hundreds of metres
    g = communities.set_geometry(list(shifted))
    path = tmp_path / f"{system}.geojson"
    pyogrio.write_dataframe(g, path)
    layer = read_boundary_file(path, "community", crs=system)
    assert max_vertex_distance_m(layer.features.geometry.values, truth) < 0.01
    assert layer.source_crs.startswith(system)
    assert layer.problems == []


# ------------------------------------------------------------------ fields and values


def test_numeric_codes_become_strings_without_dot_zero(tmp_path):
    geoms = make_grid(3, 1, ZHOUSHAN)
    g = frame([0, 0, 0], ["甲", "乙", "丙"], geoms)
    g["code"] = [330902001001003.0, 330902001001004.0, 330902001001005.0]
    g["parent"] = [330902001001.0] * 3
    assert g["code"].dtype == "float64"
    shp = write_shapefile(g, tmp_path / "num.shp")
    assert pyogrio.read_info(shp)["dtypes"][0].startswith("float")
    layer = read_boundary_file(shp, "cell")
    assert list(layer.features["code"]) == ["330902001001003", "330902001001004", "330902001001005"]
    assert list(layer.features["parent_code"]) == ["330902001001"] * 3


def test_string_codes_keep_leading_zeros_and_explicit_fields(tmp_path):
    g = frame(["x", "y"], ["a", "b"], make_grid(2, 1, ZHOUSHAN))
    g["BH"] = ["0012", "0013"]
    g["MC"] = ["一网格", "二网格"]
    path = tmp_path / "f.geojson"
    pyogrio.write_dataframe(g.drop(columns=["code", "name"]), path)
    with pytest.raises(BoundaryFileError, match=r"no code field found.*fields: BH, MC"):
        read_boundary_file(path, "cell")
    layer = read_boundary_file(path, "cell", code_field="bh")
    assert list(layer.features["code"]) == ["0012", "0013"]
    assert list(layer.features["name"]) == ["一网格", "二网格"]  # "mc" is a name candidate
    with pytest.raises(BoundaryFileError, match="no field 'nope'"):
        read_boundary_file(path, "cell", code_field="BH", name_field="nope")


def test_missing_code_field_lists_the_fields(tmp_path):
    g = frame(["1"], ["甲"], make_grid(1, 1, ZHOUSHAN)).rename(columns={"code": "bianhao"})
    shp = write_shapefile(g, tmp_path / "nocode.shp")
    with pytest.raises(BoundaryFileError, match=r"nocode\.shp: no code field.*fields: bianhao, name"):
        read_boundary_file(shp, "cell")


def test_duplicate_codes_name_both_rows(tmp_path):
    g = frame(["a1", "a2", "a1", "a3"], ["一", "二", "三", "四"], make_grid(4, 1, ZHOUSHAN))
    shp = write_shapefile(g, tmp_path / "dup.shp")
    layer = read_boundary_file(shp, "cell")
    (err,) = layer.errors
    assert err.kind == "duplicate_code" and err.codes == ("a1",)
    assert "dup.shp rows 1 and 3: duplicate code a1 (一; 三)" in err.message
    assert len(layer.features) == 4  # kept, the error blocks the import


def test_empty_code_and_bad_counts(tmp_path):
    g = frame(["c1", "", "c3", "c4"], ["一", "二", "三", "四"], make_grid(4, 1, ZHOUSHAN))
    g["households"] = ["10", "5", "-3", "2.5"]
    g["population"] = [100.0, None, 7.0, 8.0]
    path = tmp_path / "vals.gpkg"
    pyogrio.write_dataframe(g, path)
    layer = read_boundary_file(path, "cell")
    errs = {(p.row, p.kind) for p in layer.errors}
    assert errs == {(2, "missing_field"), (3, "bad_value"), (4, "bad_value")}
    assert any("row 3 (c3 三): households must be a whole number ≥ 0, not '-3'" in p.message for p in layer.errors)
    f = layer.features
    assert list(f["code"]) == ["c1", "c3", "c4"]
    assert list(f["row"]) == [1, 3, 4]
    assert f["households"].tolist()[0] == 10 and pd.isna(f["households"].tolist()[1])
    assert f["population"].tolist() == [100, 7, 8]


# ------------------------------------------------------------------ geometry


def test_invalid_bowtie_is_an_error_then_repaired_with_fix(tmp_path):
    x0, y0, x1, y1 = ZHOUSHAN
    ok = make_grid(2, 1, (x0, y0, x0 + 0.01, y0 + 0.01))
    bad = bowtie(x0 + 0.02, y0, 0.01)
    g = frame(["330902001001001", "330902001001002", "330902001001003"], ["一网格", "二网格", "解放一网格"],
              ok + [bad])
    shp = write_shapefile(g, tmp_path / "cells.shp")

    layer = read_boundary_file(shp, "cell")
    (err,) = layer.errors
    assert err.kind == "invalid" and err.row == 3
    assert err.message.startswith("cells.shp row 3 (330902001001003 解放一网格): invalid geometry: Self-intersection at ")
    assert err.lon == pytest.approx(x0 + 0.025, abs=1e-9) and err.lat == pytest.approx(y0 + 0.005, abs=1e-9)
    assert len(layer.features) == 3 and not layer.features.geometry.values[2].is_valid

    fixed = read_boundary_file(shp, "cell", fix=True)
    assert fixed.errors == []
    (rep,) = fixed.problems
    assert rep.severity == "repair" and rep.kind == "repaired" and rep.row == 3
    assert "Self-intersection" in rep.message and "m² after" in rep.message
    geom = fixed.features.geometry.values[2]
    assert geom.geom_type == "MultiPolygon" and geom.is_valid and len(geom.geoms) == 2
    square = shapely.box(x0 + 0.02, y0, x0 + 0.03, y0 + 0.01)
    assert measure.areas_m2(geom)[0] == pytest.approx(measure.areas_m2(square)[0] / 2, rel=1e-4)


def test_polygons_become_multipolygons_in_wgs84(tmp_path):
    layer = read_boundary_file(write_shapefile(street_frame(), tmp_path / "s.shp"), "street")
    f = layer.features
    assert list(f.columns) == ["row", "code", "name", "parent_code", "kind", "households", "population", "geometry"]
    assert f.crs.to_epsg() == 4326
    assert (shapely.get_type_id(f.geometry.values) == 6).all()
    assert f["kind"].isna().all()


def test_problem_as_dict():
    p = Problem("error", "overlap", "x", codes=("a", "b"), row=3, lon=122.0, lat=30.0)
    assert p.as_dict() == {"severity": "error", "kind": "overlap", "message": "x", "codes": ["a", "b"],
                           "row": 3, "lon": 122.0, "lat": 30.0, "params": {}}
    json.dumps(p.as_dict())


# ------------------------------------------------------------------ writing


@pytest.mark.parametrize("ext", [".shp", ".zip", ".geojson", ".json", ".gpkg", ".kml"])
def test_write_then_read_round_trip(tmp_path, ext):
    _, cells = make_city(2, 1, 2, 2)
    cells["kind"] = ["base"] * (len(cells) - 1) + ["special"]
    cells["households"] = pd.array([10, None, 30, 40, 50, 60, 70, 80], dtype="Int64")
    cells["population"] = pd.array([1, 2, 3, 4, 5, 6, 7, None], dtype="Int64")
    cells["name"] = ["东港街道第一网格"] + list(cells["name"][1:])
    path = tmp_path / f"out{ext}"
    write_boundary_file(cells, path)
    write_boundary_file(cells, path)  # replaces, does not append
    if ext == ".shp":
        assert path.with_suffix(".cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
        assert list(pyogrio.read_info(path)["fields"]) == ["code", "name", "parent", "kind", "households",
                                                          "population"]
    if ext == ".zip":
        with zipfile.ZipFile(path) as zf:
            assert sorted(n.rsplit(".", 1)[1] for n in zf.namelist()) == ["cpg", "dbf", "prj", "shp", "shx"]
    layer = read_boundary_file(path, "cell")
    f = layer.features
    assert layer.errors == [], layer.problems
    assert list(f["code"]) == list(cells["code"])
    assert list(f["name"]) == list(cells["name"])
    assert list(f["parent_code"]) == list(cells["parent_code"])
    assert list(f["kind"]) == list(cells["kind"])
    assert f["households"].astype(object).where(f["households"].notna(), None).tolist() == \
        [10, None, 30, 40, 50, 60, 70, 80]
    assert f["population"].tolist()[:7] == [1, 2, 3, 4, 5, 6, 7]
    tol = 1e-6 if ext == ".kml" else 1e-9
    assert same_geometries(f.geometry.values, cells.geometry.values, tol)
    assert not same_geometries(f.geometry.values, cells.geometry.values[::-1], tol)  # the check can fail
    assert f.crs.to_epsg() == 4326


def test_write_reprojects_to_wgs84(tmp_path):
    g = street_frame()
    write_boundary_file(g.to_crs(4550), tmp_path / "w.gpkg")
    back = read_boundary_file(tmp_path / "w.gpkg", "street")
    assert "EPSG:4326" in back.source_crs
    assert max_vertex_distance_m(back.features.geometry.values, g.geometry.values) < 0.001
