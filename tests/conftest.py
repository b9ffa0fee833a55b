"""Shared fixtures: a real PostGIS and a real SpatiaLite database, each with the migrated schema.

PostGIS comes from GRIDMAP_TEST_DATABASE_URL (`make test` starts a throwaway cluster and sets it).
When it is missing or unreachable the PostGIS tests FAIL, they never skip.
"""
from __future__ import annotations

import json
import time
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
import shapely
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from gridmap.db import make_engine, make_sessionmaker
from gridmap import migrate

BACKENDS = ["postgis", "spatialite"]


def _postgis_admin_url() -> str:
    url = os.environ.get("GRIDMAP_TEST_DATABASE_URL")
    if not url:
        pytest.fail("GRIDMAP_TEST_DATABASE_URL is not set: run the suite with `make test`, which starts "
                    "PostGIS, or point it at a PostGIS database", pytrace=False)
    return url


@pytest.fixture(scope="session")
def postgis_url():
    """A fresh database on the PostGIS server, dropped at the end of the session."""
    base = make_url(_postgis_admin_url().replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"gm_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"cannot reach PostGIS at {base.render_as_string(hide_password=True)}: {e}", pytrace=False)
    url = base.set(database=name)
    eng = create_engine(url)
    with eng.begin() as c:
        try:
            c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"PostGIS extension missing on the test server: {e}", pytrace=False)
    eng.dispose()
    yield url.render_as_string(hide_password=False)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def spatialite_url(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('spatialite') / 'gridmap-test.sqlite'}"


@pytest.fixture(scope="session")
def _migrated(request):
    return {}


def _engine_for(request, backend, cache):
    if backend not in cache:
        url = request.getfixturevalue("postgis_url" if backend == "postgis" else "spatialite_url")
        eng = make_engine(url)
        migrate.upgrade(eng)
        cache[backend] = (url, eng)
    return cache[backend]


def _truncate(engine):
    from gridmap.db import Base
    import gridmap.models  # noqa: F401

    from sqlalchemy.exc import OperationalError

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    # A browser test's live server may still answer the page's last map request while the test
    # tears down; PostgreSQL then picks one of the two as a deadlock victim. Retry the cleanup.
    for attempt in range(5):
        try:
            with engine.begin() as c:
                if engine.dialect.name == "postgresql":
                    c.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
                else:
                    for t in tables:
                        c.execute(text(f'DELETE FROM "{t}"'))
            return
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def db(request, backend, _migrated):
    """(url, engine) of a migrated, empty database on the parametrized backend."""
    url, eng = _engine_for(request, backend, _migrated)
    _truncate(eng)
    yield url, eng
    _truncate(eng)


@pytest.fixture
def engine(db):
    return db[1]


@pytest.fixture
def sessionmaker(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def app(db, tmp_path):
    from gridmap import create_app

    app = create_app({"GRIDMAP_DATABASE_URL": db[0], "TESTING": True, "INSTANCE_PATH": str(tmp_path / "inst"),
                      "SECRET_KEY": "test-secret"})
    yield app
    app.extensions["gridmap.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# ------------------------------------------------------------------ a small test city
# district 330999 (box 122.00–122.08 E, 30.00–30.04 N) → 2 streets (west/east halves)
# → 2 communities each (north/south) → 2×2 cells each. Edges come from one linspace so every
# level is an exact coverage of its parent.
XS = np.linspace(122.00, 122.08, 9)   # 8 columns of 0.01°
YS = np.linspace(30.00, 30.04, 5)     # 4 rows of 0.01°


def _box(i0, i1, j0, j1):
    return shapely.box(XS[i0], YS[j0], XS[i1], YS[j1])


def city_features():
    """Dicts per level: code, name, parent, households, geometry (shapely)."""
    d = [{"code": "330999", "name": "测试区", "parent": None, "kind": "district", "geometry": _box(0, 8, 0, 4)}]
    streets, comms, cells = [], [], []
    for si, (i0, i1) in enumerate([(0, 4), (4, 8)]):
        scode = f"330999{si + 1:03d}"
        streets.append({"code": scode, "name": ["西街道", "东街道"][si], "parent": "330999", "kind": "street",
                        "geometry": _box(i0, i1, 0, 4)})
        for ci, (j0, j1) in enumerate([(2, 4), (0, 2)]):  # north first
            ccode = f"{scode}{ci + 1:03d}"
            comms.append({"code": ccode, "name": f"{['西', '东'][si]}{['北', '南'][ci]}社区", "parent": scode,
                          "kind": "residents", "geometry": _box(i0, i1, j0, j1)})
            seq = 0
            for j in range(j1 - 1, j0 - 1, -1):       # rows north → south
                for i in range(i0, i1, 2):             # columns west → east, 2 columns wide
                    seq += 1
                    cells.append({"code": f"{ccode}{seq:03d}", "name": f"{comms[-1]['name']}第{seq}网格",
                                  "parent": ccode, "kind": "base", "households": 300 + seq,
                                  "geometry": shapely.box(XS[i], YS[j], XS[i + 2], YS[j + 1])})
    return {"district": d, "street": streets, "community": comms, "cell": cells}


def write_geojson(path: Path, feats) -> Path:
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {k: v for k, v in f.items() if k != "geometry"},
         "geometry": shapely.geometry.mapping(f["geometry"])} for f in feats]}
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def city_files(tmp_path):
    feats = city_features()
    return {lvl: write_geojson(tmp_path / f"{lvl}.geojson", fs) for lvl, fs in feats.items()}


_CITY_SNAPSHOT: dict = {}


@pytest.fixture
def loaded_city(request, backend, sessionmaker, city_files):
    """The test city, imported through the ordinary import path.

    The first test on each backend imports the four files for real (reading, checks, writes);
    later tests restore the rows that import wrote (same ids, same geometry bytes), which keeps
    the suite fast. Tests of the import itself use ``city_files`` and import for real.
    """
    from gridmap.boundaries.io import read_boundary_file
    from gridmap.boundaries.models import Area, AreaGeometry
    from gridmap.boundaries.service import import_layer
    from gridmap.db import transaction

    snap = _CITY_SNAPSHOT.get(backend)
    if snap is None:
        for level in ("district", "street", "community", "cell"):
            layer = read_boundary_file(str(city_files[level]), level,
                                       parent_field="parent" if level != "district" else None)
            with transaction(sessionmaker) as s:
                rep = import_layer(s, layer)
                assert rep.ok, [p.message for p in rep.errors]
        with sessionmaker() as s:
            areas = [dict(r._mapping) for r in s.execute(select(Area.__table__).order_by(Area.id))]
            geoms = [dict(r._mapping) for r in s.execute(
                select(*[c for c in AreaGeometry.__table__.c if c.name != "geom"],
                       func.ST_AsBinary(AreaGeometry.geom).label("wkb")).order_by(AreaGeometry.id))]
        _CITY_SNAPSHOT[backend] = (areas, geoms)
    else:
        from geoalchemy2.elements import WKBElement

        areas, geoms = snap
        with transaction(sessionmaker) as s:
            s.execute(Area.__table__.insert(), areas)
            s.execute(AreaGeometry.__table__.insert(), [
                {**{k: v for k, v in g.items() if k != "wkb"}, "geom": WKBElement(bytes(g["wkb"]), srid=4326)}
                for g in geoms])
            if s.get_bind().dialect.name == "postgresql":
                for t in ("areas", "area_geometries"):
                    s.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"))
    return city_features()
