"""Backups of the whole database and their restore: ``gridmap db backup`` / ``gridmap db restore``.

Owns: how each backend is copied. PostGIS: ``pg_dump`` in its custom format (compressed, restorable
table by table) and ``pg_restore --clean --if-exists --single-transaction`` (all or nothing; the
PostGIS extension itself is not part of the dump's restore: it is created when missing). The
embedded SpatiaLite file: SQLite's online backup API, which copies a consistent snapshot while the
app keeps running. A backup is written to a temporary file beside the target and renamed at the
end, so a failed run never leaves half a backup under the real name; an existing file is replaced
only with ``force``. A restore over a database that holds a gridmap schema needs ``force`` too.
The binaries come from PATH, GRIDMAP_PG_BIN, or /usr/lib/postgresql/<newest>/bin.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine, make_url

from gridmap.db import _sqlite_module, is_sqlite

PG_MAGIC = b"PGDMP"
SQLITE_MAGIC = b"SQLite format 3\x00"


class BackupError(Exception):
    pass


@dataclass
class Result:
    path: Path
    bytes: int
    backend: str


# ----------------------------------------------------------------------------- helpers
def _sqlite_path(engine: Engine) -> Path:
    db = engine.url.database
    if not db or db == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(db)


def pg_binary(name: str, pg_bin: str | None = None) -> str:
    """Path of pg_dump / pg_restore: GRIDMAP_PG_BIN, then PATH, then the newest Debian install."""
    candidates = []
    if pg_bin:
        candidates.append(os.path.join(pg_bin, name))
    found = shutil.which(name)
    if found:
        candidates.append(found)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]) if
                      p.split("/")[-2].isdecimal() else 0, reverse=True)
    candidates += [os.path.join(v, name) for v in versions]
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise BackupError(f"{name} not found: install postgresql-client or set GRIDMAP_PG_BIN")


def _pg_env(engine: Engine) -> tuple[dict, str]:
    """Environment for libpq (the password goes in PGPASSWORD, never on the command line) and the db name."""
    url = make_url(str(engine.url.render_as_string(hide_password=False)))
    env = dict(os.environ)
    for var, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password)):
        if value is not None:
            env[var] = str(value)
    if not url.database:
        raise BackupError("the database URL names no database")
    return env, url.database


def _run(cmd: list[str], env: dict) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise BackupError(f"{os.path.basename(cmd[0])} failed: " + ("; ".join(msg[-3:]) or f"exit {proc.returncode}"))


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise BackupError(f"{out} exists: choose another name or give --force to replace it")
    if out.exists() and out.is_dir():
        raise BackupError(f"{out} is a directory")
    if not out.parent.is_dir():
        raise BackupError(f"no directory {out.parent}")


def has_schema(engine: Engine) -> bool:
    """Whether the database holds a gridmap schema (an Alembic version table)."""
    return "alembic_version" in inspect(engine).get_table_names()


# ----------------------------------------------------------------------------- backup
def backup(engine: Engine, out: str | os.PathLike, *, force: bool = False, pg_bin: str | None = None) -> Result:
    """Write a backup of the engine's database to ``out``."""
    out = Path(out).expanduser().resolve()
    _check_target(out, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    try:
        if is_sqlite(engine):
            backend = "spatialite"
            src_path = _sqlite_path(engine)
            if not src_path.exists():
                raise BackupError(f"no database file {src_path}")
            mod = _sqlite_module()
            src, dst = mod.connect(str(src_path)), mod.connect(tmp)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
        else:
            backend = "postgis"
            env, name = _pg_env(engine)
            _run([pg_binary("pg_dump", pg_bin), "--format=custom", "--no-owner", "--no-privileges",
                  f"--file={tmp}", name], env)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return Result(out, out.stat().st_size, backend)


# ----------------------------------------------------------------------------- restore
def restore(engine: Engine, src: str | os.PathLike, *, force: bool = False, pg_bin: str | None = None) -> Result:
    """Replace the engine's database with the backup in ``src``."""
    src = Path(src).expanduser().resolve()
    if not src.is_file():
        raise BackupError(f"no backup file {src}")
    with open(src, "rb") as fh:
        head = fh.read(16)
    sqlite = is_sqlite(engine)
    if sqlite and head != SQLITE_MAGIC:
        raise BackupError(f"{src} is not a SQLite backup (this database is SpatiaLite)")
    if not sqlite and not head.startswith(PG_MAGIC):
        raise BackupError(f"{src} is not a pg_dump custom-format backup (this database is PostGIS)")
    if has_schema(engine) and not force:
        raise BackupError("the database holds a gridmap schema: give --force to replace it with the backup")
    engine.dispose()  # no pooled connection keeps the old tables (or file pages)
    if sqlite:
        mod = _sqlite_module()
        source = mod.connect(f"file:{src}?mode=ro", uri=True)
        try:
            if source.execute("SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'").fetchone()[0] == 0:
                raise BackupError(f"{src} holds no gridmap schema")
            dest = mod.connect(str(_sqlite_path(engine)))
            try:
                source.backup(dest)
            finally:
                dest.close()
        finally:
            source.close()
        backend = "spatialite"
    else:
        backend = "postgis"
        env, name = _pg_env(engine)
        restore_bin = pg_binary("pg_restore", pg_bin)
        listing = subprocess.run([restore_bin, "--list", str(src)], env=env, capture_output=True, text=True)
        if listing.returncode != 0:
            raise BackupError(f"pg_restore cannot read {src}: {listing.stderr.strip()[:200]}")
        # the extension belongs to the server's installation: keep it out of the restore
        keep = [ln for ln in listing.stdout.splitlines() if " EXTENSION " not in ln]
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        engine.dispose()
        with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as fh:
            fh.write("\n".join(keep) + "\n")
            list_path = fh.name
        try:
            _run([restore_bin, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                  "--exit-on-error", f"--use-list={list_path}", f"--dbname={name}", str(src)], env)
        finally:
            os.unlink(list_path)
    engine.dispose()
    return Result(src, src.stat().st_size, backend)
