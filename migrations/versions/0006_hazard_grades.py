"""Hazard grades 一般 / 重大 (安监总局令第16号 第三条), the accident grade kept apart, hazard
supervision (督办), extensions, re-opening and rectification photos.

- ``hazards.severity`` (the four accident grades low/medium/high/major) becomes ``hazards.grade``
  (``general`` 一般事故隐患 / ``major`` 重大事故隐患); the old value is kept in the new nullable
  ``hazards.accident_grade`` (general/larger/major/especially_major: 一般/较大/重大/特别重大, the
  grade of the accident the hazard could cause) so nothing is lost. Mapping: high and major
  (重大, 特别重大) → major hazard; low and medium → general hazard.
- ``hazard_types.severity_limits`` becomes ``grade_limits`` (keys general/major; the old high or
  major limit becomes the major one; ``gridmap hazards types`` reloads the new defaults).
- New columns: supervised, supervised_at, supervised_by (督办), extension_count, reopen_count.
- New table ``hazard_photos`` (photos sent with a rectification, or on their own).

SQLite cannot alter a CHECK constraint; the table-level CHECK is rewritten in ``sqlite_schema``
by the procedure SQLite documents for changes that leave the stored rows untouched
(https://www.sqlite.org/lang_altertable.html#otheralter), BEFORE the rows are converted, so the
rows written afterwards are checked against the new rule. Recreating the table (batch mode)
would lose SpatiaLite's geometry registration and spatial index of ``hazards.geom``.

Revision ID: 0006
Revises: 0005
"""
import json

from alembic import op
import sqlalchemy as sa

from gridmap.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OLD_CHECK = "severity IN ('low','medium','high','major')"
NEW_GRADE_CHECK = "grade IN ('general','major')"
ACCIDENT_CHECK = "accident_grade IS NULL OR accident_grade IN ('general','larger','major','especially_major')"


def _sqlite_rewrite_table_sql(conn, table: str, edit) -> None:
    """Replace the CREATE TABLE text of ``table`` by ``edit(text)`` (SQLite's documented procedure)."""
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)).scalar()
    new = edit(sql)
    if new == sql:
        raise RuntimeError(f"migration 0006: the schema of {table} is not the expected one:\n{sql}")
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar()
    conn.exec_driver_sql("PRAGMA writable_schema=ON")
    conn.exec_driver_sql("UPDATE sqlite_master SET sql=? WHERE type='table' AND name=?", (new, table))
    conn.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema=OFF")


def _replace_check(sql: str, old_name: str, old_expr: str, new_items: list[tuple[str, str]]) -> str:
    """Replace ``CONSTRAINT old_name CHECK (old_expr)`` by the ``new_items`` (name, expression)."""
    import re

    pat = re.compile(r"CONSTRAINT\s+\"?" + re.escape(old_name) + r"\"?\s+CHECK\s*\(\s*" +
                     re.escape(old_expr).replace(r"\ ", r"\s*").replace(",", r",\s*") + r"\s*\)", re.I)
    repl = ", ".join(f"CONSTRAINT {n} CHECK ({e})" for n, e in new_items)
    out, n = pat.subn(repl, sql)
    return out if n == 1 else sql


def upgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    # new columns (ADD COLUMN works natively on both databases)
    op.add_column("hazards", sa.Column("accident_grade", sa.String(20)))
    op.add_column("hazards", sa.Column("supervised", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("hazards", sa.Column("supervised_at", UTCDateTime()))
    op.add_column("hazards", sa.Column("supervised_by", sa.String(120)))
    op.add_column("hazards", sa.Column("extension_count", sa.Integer, nullable=False, server_default="0"))
    op.add_column("hazards", sa.Column("reopen_count", sa.Integer, nullable=False, server_default="0"))
    # severity → grade (a plain rename on both: SQLite >= 3.25 renames inside CHECKs too)
    if sqlite:
        conn.exec_driver_sql("ALTER TABLE hazards RENAME COLUMN severity TO grade")
        conn.exec_driver_sql("ALTER TABLE hazard_types RENAME COLUMN severity_limits TO grade_limits")
        _sqlite_rewrite_table_sql(conn, "hazards", lambda s: _replace_check(
            s, "ck_hazards_severity", "grade IN ('low','medium','high','major')",
            [("ck_hazards_grade", NEW_GRADE_CHECK), ("ck_hazards_accident_grade", ACCIDENT_CHECK)]))
    else:
        op.drop_constraint(op.f("ck_hazards_severity"), "hazards", type_="check")
        op.alter_column("hazards", "severity", new_column_name="grade")
        op.alter_column("hazard_types", "severity_limits", new_column_name="grade_limits")
    # the rows: the old four-level value is the accident grade; 重大/特别重大 make a major hazard
    conn.execute(sa.text(
        "UPDATE hazards SET accident_grade = CASE grade WHEN 'low' THEN 'general' WHEN 'medium' THEN 'larger' "
        "WHEN 'high' THEN 'major' WHEN 'major' THEN 'especially_major' END, "
        "grade = CASE WHEN grade IN ('high', 'major') THEN 'major' ELSE 'general' END"))
    for tid, raw in conn.execute(sa.text("SELECT id, grade_limits FROM hazard_types WHERE grade_limits IS NOT NULL")
                                 ).all():
        old = json.loads(raw) if raw else {}
        lim = old.get("high") or old.get("major")
        conn.execute(sa.text("UPDATE hazard_types SET grade_limits = :v WHERE id = :i"),
                     {"v": json.dumps({"major": lim}, ensure_ascii=False) if lim else None, "i": tid})
    if not sqlite:
        op.create_check_constraint(op.f("ck_hazards_grade"), "hazards", NEW_GRADE_CHECK)
        op.create_check_constraint(op.f("ck_hazards_accident_grade"), "hazards", ACCIDENT_CHECK)
    op.create_index("ix_hazards_grade", "hazards", ["grade"])
    op.create_table(
        "hazard_photos",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hazard_id", sa.Integer,
                  sa.ForeignKey("hazards.id", ondelete="CASCADE", name="fk_hazard_photos_hazard_id_hazards"),
                  nullable=False),
        sa.Column("event_id", sa.Integer,
                  sa.ForeignKey("hazard_events.id", name="fk_hazard_photos_event_id_hazard_events")),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(60), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("stored_path", sa.String(300), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_hazard_photos_hazard_id", "hazard_photos", ["hazard_id"])


def downgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    op.drop_index("ix_hazard_photos_hazard_id", "hazard_photos")
    op.drop_table("hazard_photos")
    op.drop_index("ix_hazards_grade", "hazards")
    if sqlite:
        _sqlite_rewrite_table_sql(conn, "hazards", lambda s: _replace_check(
            _replace_check(s, "ck_hazards_accident_grade", ACCIDENT_CHECK, []).replace(", ,", ","),
            "ck_hazards_grade", NEW_GRADE_CHECK, [("ck_hazards_severity", "grade IN ('low','medium','high','major')")]))
    else:
        op.drop_constraint(op.f("ck_hazards_accident_grade"), "hazards", type_="check")
        op.drop_constraint(op.f("ck_hazards_grade"), "hazards", type_="check")
    conn.execute(sa.text(
        "UPDATE hazards SET grade = CASE accident_grade WHEN 'general' THEN 'low' WHEN 'larger' THEN 'medium' "
        "WHEN 'major' THEN 'high' WHEN 'especially_major' THEN 'major' ELSE "
        "CASE grade WHEN 'major' THEN 'high' ELSE 'low' END END"))
    if sqlite:
        conn.exec_driver_sql("ALTER TABLE hazards RENAME COLUMN grade TO severity")
        conn.exec_driver_sql("ALTER TABLE hazard_types RENAME COLUMN grade_limits TO severity_limits")
    else:
        op.alter_column("hazards", "grade", new_column_name="severity")
        op.alter_column("hazard_types", "grade_limits", new_column_name="severity_limits")
        op.create_check_constraint(op.f("ck_hazards_severity"), "hazards", OLD_CHECK)
    for col in ("reopen_count", "extension_count", "supervised_by", "supervised_at", "supervised", "accident_grade"):
        if sqlite:
            conn.exec_driver_sql(f"ALTER TABLE hazards DROP COLUMN {col}")
        else:
            op.drop_column("hazards", col)
