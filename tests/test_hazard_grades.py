"""Migration 0006 on both backends: hazards graded with the four accident grades become general /
major hazards (一般 / 重大事故隐患), the old value kept as the accident grade; the database refuses an
accident grade as a hazard grade afterwards; downgrade gives the old values back."""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from gridmap import migrate
from gridmap.db import make_engine


@pytest.fixture(params=["postgis", "spatialite"])
def fresh_engine(request, tmp_path):
    """An EMPTY database (no migration applied), dropped afterwards."""
    if request.param == "spatialite":
        eng = make_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
        yield eng
        eng.dispose()
        return
    url = os.environ.get("GRIDMAP_TEST_DATABASE_URL")
    if not url:
        pytest.fail("GRIDMAP_TEST_DATABASE_URL is not set", pytrace=False)
    base = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"gm_m_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng = make_engine(base.set(database=name).render_as_string(hide_password=False))
    with eng.begin() as c:
        c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    yield eng
    eng.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


HAZARD_SQL = ("INSERT INTO hazards (id, source, type_id, title, {grade}, status, geom, geom_kind, lon, lat, found_at, "
              "rework_count, version, created_at, updated_at) VALUES (:id, 'manual', 1, :t, :g, 'open', "
              "ST_GeomFromText('POINT(122.005 30.035)', 4326), 'point', 122.005, 30.035, :now, 0, 1, :now, :now)")


def test_0006_converts_the_grades_and_keeps_the_accident_grade(fresh_engine):
    import datetime as dt

    eng = fresh_engine
    now = dt.datetime(2026, 3, 2, 1, 0)
    migrate.upgrade(eng, "0004")
    with eng.begin() as c:
        c.execute(text("INSERT INTO hazard_types (id, code, name, rectify_limit_value, rectify_limit_unit, "
                       "severity_limits, active) VALUES (1, 'gas', '燃气', 3, 'natural_days', "
                       "'{\"high\": {\"value\": 24, \"unit\": \"urgent_hours\"}, \"major\": {\"value\": 4, "
                       "\"unit\": \"urgent_hours\"}}', :t)"), {"t": True})
        for i, sev in enumerate(("low", "medium", "high", "major"), start=1):
            c.execute(text(HAZARD_SQL.format(grade="severity")), {"id": i, "t": sev, "g": sev, "now": now})
    migrate.upgrade(eng, "0006")
    with eng.connect() as c:
        rows = c.execute(text("SELECT title, grade, accident_grade, supervised, reopen_count FROM hazards "
                              "ORDER BY id")).all()
        limits = c.execute(text("SELECT grade_limits FROM hazard_types")).scalar()
    assert [tuple(r) for r in rows] == [("low", "general", "general", False, 0),
                                        ("medium", "general", "larger", False, 0),
                                        ("high", "major", "major", False, 0),
                                        ("major", "major", "especially_major", False, 0)]
    assert '"major"' in limits and "high" not in limits
    # the new rule holds in the database: an accident grade is no hazard grade
    for bad in ("high", "medium"):
        with pytest.raises(IntegrityError), eng.begin() as c:
            c.execute(text(HAZARD_SQL.format(grade="grade")), {"id": 9, "t": "x", "g": bad, "now": now})
    with pytest.raises(IntegrityError), eng.begin() as c:
        c.execute(text(HAZARD_SQL.format(grade="grade") .replace("'open', ", "'open', ")),
                  {"id": 9, "t": "x", "g": "general", "now": now})
        c.execute(text("UPDATE hazards SET accident_grade = 'huge' WHERE id = 9"))
    with eng.begin() as c:
        c.execute(text(HAZARD_SQL.format(grade="grade")), {"id": 9, "t": "ok", "g": "major", "now": now})
    if eng.dialect.name == "sqlite":  # the rewritten schema is sound
        with eng.connect() as c:
            assert c.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert c.exec_driver_sql("SELECT CheckSpatialIndex('hazards', 'geom')").scalar() == 1
    migrate.upgrade(eng, "0006")  # already there: nothing to do
    from alembic import command

    cfg = migrate.alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    with eng.connect() as c:
        back = c.execute(text("SELECT title, severity FROM hazards WHERE id < 9 ORDER BY id")).all()
    assert [tuple(r) for r in back] == [("low", "low"), ("medium", "medium"), ("high", "high"), ("major", "major")]
