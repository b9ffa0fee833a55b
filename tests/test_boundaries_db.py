"""Boundary import into the database (PostGIS and SpatiaLite), history, checks and export."""
import datetime as dt
import json

import numpy as np
import pytest
import shapely
from sqlalchemy import func, select

from gridmap.boundaries.io import read_boundary_file
from gridmap.boundaries.lookup import get_index, locate_one
from gridmap.boundaries.models import Area, AreaGeometry
from gridmap.boundaries.service import check_stored, counts, import_layer, load_level
from gridmap.db import transaction
from tests.conftest import city_features, write_geojson


def _import(sessionmaker, path, level, **kw):
    layer = read_boundary_file(str(path), level, **kw)
    with transaction(sessionmaker) as s:
        rep = import_layer(s, layer)
        if not rep.ok:
            s.rollback()
    return rep


def test_city_imports_with_hierarchy(sessionmaker, loaded_city):
    with sessionmaker() as s:
        assert counts(s) == {"district": 1, "street": 2, "community": 4, "cell": 16}
        cell = s.scalar(select(Area).where(Area.code == "330999002001001"))
        assert cell.parent.code == "330999002001" and cell.parent.parent.code == "330999002"
        assert cell.parent.parent.parent.code == "330999" and cell.households == 301
        g = s.scalar(select(AreaGeometry).where(AreaGeometry.area_id == cell.id))
        # 0.02° × 0.01° at 30°N ≈ 1,928 m × 1,109 m: computed in CGCS2000 GK, not in degrees
        assert 2.0e6 < g.area_m2 < 2.3e6
        assert g.valid_to is None and g.version == 1
        assert not [p for p in check_stored(s) if p.severity == "error"]


def test_locate_after_import_gives_hierarchy(sessionmaker, loaded_city):
    with sessionmaker() as s:
        out = locate_one(s, 122.005, 30.035)
    assert out["cell"] == {"code": "330999001001001", "name": "西北社区第1网格"}
    assert out["community"]["code"] == "330999001001"
    assert out["street"] == {"code": "330999001", "name": "西街道"}
    assert out["district"] == {"code": "330999", "name": "测试区"}


def test_reimport_changed_geometry_keeps_identity_and_history(sessionmaker, loaded_city, tmp_path):
    """Moving the edge between two cells: same ids and codes, a new version, the old one kept."""
    feats = city_features()["cell"]
    a = next(f for f in feats if f["code"] == "330999001001001")
    b = next(f for f in feats if f["code"] == "330999001001002")
    x0, y0, x1, y1 = a["geometry"].bounds
    _, _, bx1, _ = b["geometry"].bounds
    mid = x1 + 0.005  # move the shared edge 0.005° east
    a2 = dict(a, geometry=shapely.box(x0, y0, mid, y1))
    b2 = dict(b, geometry=shapely.box(mid, y0, bx1, y1))
    with sessionmaker() as s:
        before_ids = dict(s.execute(select(Area.code, Area.id)).all())
        idx_before = get_index(s)
    rep = _import(sessionmaker, write_geojson(tmp_path / "edit.geojson", [a2, b2]), "cell", parent_field="parent")
    assert rep.ok, [p.message for p in rep.errors]
    assert rep.updated == 2 and rep.created == 0
    with sessionmaker() as s:
        assert dict(s.execute(select(Area.code, Area.id)).all()) == before_ids
        versions = s.execute(select(AreaGeometry.version, AreaGeometry.valid_to, AreaGeometry.valid_from)
                             .where(AreaGeometry.area_id == before_ids["330999001001001"])
                             .order_by(AreaGeometry.version)).all()
        assert [v[0] for v in versions] == [1, 2]
        assert versions[0][1] is not None and versions[1][1] is None
        # the index was rebuilt: a point between the old and the new edge moved to cell 001
        idx_after = get_index(s)
        assert idx_after is not idx_before
        out = locate_one(s, x1 + 0.002, (y0 + y1) / 2)
        assert out["cell"]["code"] == "330999001001001"
        # as of before the change, the same point was in cell 002
        past = versions[0][2] + (versions[0][1] - versions[0][2]) / 2  # while version 1 was valid
        assert locate_one(s, x1 + 0.002, (y0 + y1) / 2, at=past)["cell"]["code"] == "330999001001002"
        assert not [p for p in check_stored(s) if p.severity == "error"]


def test_overlap_is_refused_naming_both_codes_and_nothing_written(sessionmaker, loaded_city, tmp_path):
    feats = city_features()["cell"]
    a = next(f for f in feats if f["code"] == "330999001001001")
    x0, y0, x1, y1 = a["geometry"].bounds
    grown = dict(a, geometry=shapely.box(x0, y0, x1 + 0.003, y1))  # eats 300 m into cell 002
    with sessionmaker() as s:
        n_geoms = s.scalar(select(func.count()).select_from(AreaGeometry))
    rep = _import(sessionmaker, write_geojson(tmp_path / "bad.geojson", [grown]), "cell", parent_field="parent")
    assert not rep.ok and not rep.written
    overlap = [p for p in rep.errors if p.kind == "overlap"]
    assert overlap and set(overlap[0].codes) == {"330999001001001", "330999001001002"}
    assert "330999001001001" in overlap[0].message and "330999001001002" in overlap[0].message
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(AreaGeometry)) == n_geoms


def test_one_bad_feature_blocks_the_whole_file(sessionmaker, loaded_city, tmp_path):
    """All features in one transaction or none: a new valid cell is not written beside a bad one."""
    bow = shapely.Polygon([(122.1, 30.0), (122.11, 30.01), (122.11, 30.0), (122.1, 30.01), (122.1, 30.0)])
    feats = [{"code": "330999009", "name": "新街道", "parent": "330999", "kind": "street",
              "geometry": shapely.box(122.08, 30.0, 122.09, 30.01)},
             {"code": "330999010", "name": "坏街道", "parent": "330999", "kind": "street", "geometry": bow}]
    rep = _import(sessionmaker, write_geojson(tmp_path / "s.geojson", feats), "street", parent_field="parent")
    assert not rep.ok
    assert any(p.kind == "invalid" and p.row == 2 for p in rep.errors)
    with sessionmaker() as s:
        assert s.scalar(select(Area).where(Area.code == "330999009")) is None


def test_parents_by_containment_and_flat_cells(sessionmaker, tmp_path):
    feats = city_features()
    _import(sessionmaker, write_geojson(tmp_path / "d.geojson", feats["district"]), "district")
    no_parent = [{k: v for k, v in f.items() if k != "parent"} for f in feats["street"]]
    rep = _import(sessionmaker, write_geojson(tmp_path / "s.geojson", no_parent), "street")
    assert rep.ok and rep.created == 2
    with sessionmaker() as s:
        assert s.scalar(select(Area).where(Area.code == "330999002")).parent.code == "330999"


def test_flat_cell_import_without_upper_levels(sessionmaker, tmp_path):
    cells = [{k: v for k, v in f.items() if k != "parent"} for f in city_features()["cell"]]
    rep = _import(sessionmaker, write_geojson(tmp_path / "c.geojson", cells), "cell")
    assert rep.ok and rep.created == 16
    with sessionmaker() as s:
        out = locate_one(s, 122.005, 30.035)
    assert out["cell"]["code"] == "330999001001001" and out["community"] is None


def test_dry_run_writes_nothing(sessionmaker, city_files):
    layer = read_boundary_file(str(city_files["district"]), "district")
    with transaction(sessionmaker) as s:
        rep = import_layer(s, layer, dry_run=True)
    assert rep.ok and rep.created == 1 and not rep.written
    with sessionmaker() as s:
        assert counts(s)["district"] == 0


def test_check_stored_finds_a_gap(sessionmaker, loaded_city, engine):
    """A cell shrunk behind the import's back (a raw UPDATE) leaves a gap that `check` reports."""
    with sessionmaker() as s:
        cid = s.scalar(select(Area.id).where(Area.code == "330999002002004"))
        small = shapely.box(*shapely.box(*[0, 0, 1, 1]).bounds)  # placeholder replaced below
        g = s.scalar(select(AreaGeometry).where(AreaGeometry.area_id == cid))
        cur = shapely.from_wkb(bytes(s.scalar(select(func.ST_AsBinary(AreaGeometry.geom)).where(AreaGeometry.id == g.id))))
        x0, y0, x1, y1 = cur.bounds
        small = shapely.MultiPolygon([shapely.box(x0, y0, x1 - 0.004, y1)])
        from geoalchemy2.shape import from_shape
        g.geom = from_shape(small, srid=4326)
        s.commit()
        errs = [p for p in check_stored(s, "cell") if p.severity == "error"]
    assert any(p.kind == "gap" and "330999002002" in p.message for p in errs)


def test_export_round_trip(sessionmaker, loaded_city, tmp_path):
    from gridmap.boundaries.export import write_boundary_file

    with sessionmaker() as s:
        gdf = load_level(s, "cell")
    out = tmp_path / "cells.shp"
    write_boundary_file(gdf[["code", "name", "parent_code", "kind", "households", "population", "geometry"]], str(out))
    assert (tmp_path / "cells.cpg").read_text().strip().upper().replace("-", "") == "UTF8"
    back = read_boundary_file(str(out), "cell")
    assert sorted(back.features["code"]) == sorted(gdf["code"])
    assert set(back.features["name"]) == set(gdf["name"])
