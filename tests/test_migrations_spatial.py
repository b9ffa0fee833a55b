"""Every migration keeps SpatiaLite's geometry columns registered and indexed: a batch "move and
copy" of a table with a geometry (cases, hazards, areas …) silently drops both, and every bbox
query then finds nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import text

GEOMETRY_TABLES = ("area_geometries", "cases", "hazards")


@pytest.mark.parametrize("table", GEOMETRY_TABLES)
def test_geometry_columns_stay_registered_and_indexed_at_head(engine, backend, table):
    if backend == "postgis":
        with engine.connect() as c:
            idx = c.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = :t AND indexdef ILIKE '%gist%'"),
                            {"t": table}).scalars().all()
        assert idx, f"{table}: no GiST index"
        return
    with engine.connect() as c:
        reg = c.execute(text("SELECT f_geometry_column, spatial_index_enabled FROM geometry_columns "
                             "WHERE f_table_name = :t"), {"t": table}).all()
        assert reg and all(r[1] == 1 for r in reg), f"{table}: geometry not registered or not indexed: {reg}"
        for col, _ in reg:
            assert c.execute(text(f"SELECT CheckSpatialIndex('{table}', '{col}')")).scalar() == 1
