"""Engine, sessions, the declarative base and shared column types.

Owns: the one place that knows PostGIS from SpatiaLite. SQLite URLs get the pysqlite3 driver
(Debian's and pyenv's sqlite3 module cannot load extensions), mod_spatialite loaded on every
connection with a WGS84-only spatial_ref_sys, foreign keys on and WAL. Everything else talks
SQLAlchemy 2.0 and does not care which database is behind it.
"""
from __future__ import annotations

import datetime as dt
import os
from contextlib import contextmanager

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored as UTC on both databases (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


#: the largest id gridmap takes from outside (a path, JSON, a CSV): ids are INTEGER columns, 32-bit
#: on PostgreSQL, where a larger one makes the query itself fail (``session.get(Case, 2**40)``)
MAX_ID = 2**31 - 1


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def is_sqlite(url_or_engine) -> bool:
    url = str(url_or_engine.url) if isinstance(url_or_engine, Engine) else str(url_or_engine)
    return url.startswith("sqlite")


def _sqlite_module():
    try:
        import pysqlite3.dbapi2 as mod  # bundles a SQLite that can load extensions
        return mod
    except ImportError:  # pragma: no cover - platforms without the wheel
        import sqlite3 as mod

        if not hasattr(mod.Connection, "enable_load_extension"):
            raise RuntimeError(
                "this Python's sqlite3 cannot load SpatiaLite; install pysqlite3-binary"
            )
        return mod


def _on_sqlite_connect(dbapi_conn, _record):
    from geoalchemy2.admin.dialects.sqlite import init_spatialite, load_spatialite_driver

    os.environ.setdefault("SPATIALITE_LIBRARY_PATH", "mod_spatialite")
    try:
        load_spatialite_driver(dbapi_conn)
    except Exception as exc:
        raise RuntimeError(
            "cannot load SpatiaLite (mod_spatialite). On Debian/Ubuntu: "
            "apt-get install libsqlite3-mod-spatialite"
        ) from exc
    dbapi_conn.execute("PRAGMA foreign_keys=ON")
    dbapi_conn.execute("PRAGMA busy_timeout=30000")
    mode = dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0]
    if mode.lower() not in ("wal", "memory"):
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
    init_spatialite(dbapi_conn, transaction=True, init_mode="WGS84")
    have = {r[0] for r in dbapi_conn.execute("SELECT srid FROM spatial_ref_sys WHERE srid IN (4490, 4550)")}
    for srid in (4490, 4550):
        if srid not in have:
            dbapi_conn.execute(f"SELECT InsertEpsgSrid({srid})")
    dbapi_conn.commit()


def _begin_before_savepoint(conn, _name) -> None:
    """Open the real transaction before a SAVEPOINT on SQLite.

    The sqlite3 driver begins a transaction lazily, at the first write. A SAVEPOINT issued
    before any write then starts the transaction itself, and its RELEASE commits it: a later
    rollback of the outer transaction would not undo a finished begin_nested(). Reads stay
    outside transactions until the first write, which keeps concurrent requests from failing
    with SQLITE_BUSY when a read transaction would have to upgrade to a write.
    """
    dbapi = conn.connection.dbapi_connection
    if not dbapi.in_transaction:
        dbapi.execute("BEGIN")


def _bind_bundled_geo_libraries() -> None:
    """Load the GEOS, PROJ and GDAL that shapely, pyproj and pyogrio bundle BEFORE SpatiaLite.

    SQLite loads an extension with RTLD_GLOBAL, so mod_spatialite puts the system's libsqlite3,
    libgeos_c and libproj into the process's global symbol scope. A bundled library loaded after
    that binds its sqlite3_*/GEOS*/proj_* calls to the system copies (global scope is searched
    first) and crashes, e.g. pyogrio writing a GeoPackage segfaults. Loaded first (Python
    dlopens extensions with RTLD_NOW), they are bound to their own copies for good.
    """
    import pyogrio._io  # noqa: F401
    import pyogrio._ogr  # noqa: F401
    import pyproj  # noqa: F401
    import pyproj._transformer  # noqa: F401
    import shapely  # noqa: F401


def make_engine(url: str, **kw) -> Engine:
    """An Engine for a PostGIS or SpatiaLite URL (sqlite:///path.sqlite)."""
    if is_sqlite(url):
        _bind_bundled_geo_libraries()
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(url, module=_sqlite_module(), connect_args={"timeout": 30}, **kw)
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "savepoint", _begin_before_savepoint)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, **kw)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def bulk_insert(session: Session, table, rows: list[dict]) -> None:
    """Insert many rows in the session's transaction: COPY on PostgreSQL, executemany elsewhere.

    Values are what the ORM would bind (aware datetimes, dates, EWKT text for a geometry); every
    row has the keys of the first."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        for i in range(0, len(rows), 50_000):
            session.execute(table.insert(), rows[i:i + 50_000])
        return
    cols = list(rows[0])
    col_list = ", ".join('"' + c + '"' for c in cols)
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur:
        with cur.copy(f'COPY "{table.name}" ({col_list}) FROM STDIN') as cp:
            for r in rows:  # psycopg formats each row in C (dates, numbers, NULLs, escapes)
                cp.write_row([r[c] for c in cols])


def in_list(session: Session, col, values: list):
    """``col IN (values)``: one array parameter on PostgreSQL (``= ANY``: the query text stays the
    same whatever the length, so long lists cost no parsing), an IN list elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        return col == any_(bindparam(None, list(values), type_=ARRAY(col.type)))
    return col.in_(list(values))


def allocate_ids(session: Session, table, n: int) -> list[int]:
    """``n`` fresh ids of ``table``'s ``id`` column: from its sequence on PostgreSQL; on SQLite (one
    writer at a time) after the largest id."""
    from sqlalchemy import func, select, text

    if n <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
                                         "FROM generate_series(1, :n)"), {"n": n}))
    top = session.scalar(select(func.max(table.c.id))) or 0
    return list(range(top + 1, top + 1 + n))


@contextmanager
def transaction(sm: sessionmaker[Session]):
    """A session that commits on success and rolls back on any error."""
    with sm() as session:
        with session.begin():
            yield session
