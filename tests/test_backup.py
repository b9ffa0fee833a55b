"""`gridmap db backup` / `gridmap db restore`: a round trip on both backends restores every row and
geometry; existing files and databases are replaced only with --force; wrong files are refused."""
from __future__ import annotations

import hashlib

from sqlalchemy import func, select, text

from gridmap.audit import AuditEntry, record
from gridmap.boundaries.models import AreaGeometry
from gridmap.db import transaction
from tests.casehelpers import make_token, make_user


def _fingerprint(engine) -> dict:
    """Row counts of every table of the schema and a digest of areas, geometries, users and the audit log."""
    from gridmap.db import Base
    import gridmap.models  # noqa: F401

    out = {}
    with engine.connect() as c:
        for t in Base.metadata.sorted_tables:
            out[t.name] = c.execute(select(func.count()).select_from(t)).scalar()
        h = hashlib.sha256()
        for row in c.execute(text("SELECT code, name, level, parent_id FROM areas ORDER BY id")):
            h.update(repr(tuple(row)).encode())
        for (wkb,) in c.execute(select(func.ST_AsBinary(AreaGeometry.geom)).order_by(AreaGeometry.id)):
            h.update(bytes(wkb))
        for row in c.execute(text("SELECT username, role, password_hash FROM users ORDER BY id")):
            h.update(repr(tuple(row)).encode())
        for row in c.execute(text("SELECT action, target FROM audit_log ORDER BY id")):
            h.update(repr(tuple(row)).encode())
        out["digest"] = h.hexdigest()
    return out


def test_backup_restore_round_trip(app, runner, loaded_city, sessionmaker, engine, tmp_path, backend):
    with transaction(sessionmaker) as s:
        make_user(s, "city", "city")
        make_token(s, "city")
        record(s, "boundary.publish", actor_name="tester", target="330999")
    before = _fingerprint(engine)
    assert before["areas"] > 0 and before["users"] == 1 and before["audit_log"] >= 2
    out = tmp_path / "gridmap.backup"
    r = runner.invoke(args=["db", "backup", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 0 and f"{backend} backup written" in r.output
    assert out.read_bytes()[:5] == (b"PGDMP" if backend == "postgis" else b"SQLit")
    assert not list(tmp_path.glob(".gridmap.backup.*"))          # no temporary file left behind
    # an existing backup is not overwritten without --force
    again = runner.invoke(args=["db", "backup", "-o", str(out)])
    assert again.exit_code != 0 and "--force" in again.output
    # the database changes after the backup
    with transaction(sessionmaker) as s:
        s.execute(text("DELETE FROM api_tokens"))
        s.execute(text("DELETE FROM users"))
        make_user(s, "intruder", "admin")
        s.execute(text("DELETE FROM area_geometries WHERE id = (SELECT max(id) FROM area_geometries)"))
    assert _fingerprint(engine) != before
    refused = runner.invoke(args=["db", "restore", str(out)])
    assert refused.exit_code != 0 and "--force" in refused.output
    assert _fingerprint(engine)["users"] == 1                     # nothing was touched
    r = runner.invoke(args=["db", "restore", str(out), "--force"])
    assert r.exit_code == 0, r.output
    assert _fingerprint(engine) == before
    with sessionmaker() as s:                                     # the app's own sessions work on it
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == before["audit_log"]
    # and the app still answers with the restored data
    assert app.test_client().get("/healthz").status_code == 200
    r = runner.invoke(args=["db", "backup", "-o", str(out), "--force"])
    assert r.exit_code == 0, r.output


def test_restore_refuses_the_wrong_file(runner, db, tmp_path, backend):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"this is not a backup at all" * 10)
    r = runner.invoke(args=["db", "restore", str(junk), "--force"])
    assert r.exit_code != 0 and "not a" in r.output
    r = runner.invoke(args=["db", "backup", "-o", str(tmp_path / "no-such-dir" / "x.backup")])
    assert r.exit_code != 0 and "no directory" in r.output
