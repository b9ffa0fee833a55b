"""Domain fidelity: standard category codes, on-site verification before filing (核实), filing
criteria (立案标准), handling judged at handling (按期处置), timeliness of each step.

- categories: ``std_code`` (GB/T 30428 / CJ/T 214 layout: 2-digit main class, 4-digit subclass),
  ``std_source`` ('standard' or 'local'), ``confirm_first`` and its own time limit
  (``confirm_limit_value``/``_unit``), ``filing_criteria``;
- cases: ``confirm_worker_id`` (who verifies on site), ``confirm_deadline_at``, ``confirmed_at``,
  ``handled_on_time`` (handled_at <= deadline_at, judged at handling);
- case_events: ``on_time`` (for the steps that have a time limit: confirm, file, dispatch, check).

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

from gridmap.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("categories") as b:
        b.add_column(sa.Column("std_code", sa.String(4)))
        b.add_column(sa.Column("std_source", sa.String(8)))
        b.add_column(sa.Column("confirm_first", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("confirm_limit_value", sa.Float))
        b.add_column(sa.Column("confirm_limit_unit", sa.String(20)))
        b.add_column(sa.Column("filing_criteria", sa.Text))
        b.create_index("ix_categories_std_code", ["std_code"])
    # cases holds a SpatiaLite geometry column: a batch "move and copy" would drop its registration
    # and spatial index, so the columns are added in place (SQLite cannot add a foreign key that way:
    # there the reference is the model's only)
    fk = ([sa.ForeignKey("workers.id", name="fk_cases_confirm_worker_id_workers")]
          if op.get_bind().dialect.name == "postgresql" else [])
    op.add_column("cases", sa.Column("confirm_worker_id", sa.Integer, *fk))
    op.add_column("cases", sa.Column("confirm_deadline_at", UTCDateTime()))
    op.add_column("cases", sa.Column("confirmed_at", UTCDateTime()))
    op.add_column("cases", sa.Column("handled_on_time", sa.Boolean()))
    with op.batch_alter_table("case_events") as b:
        b.add_column(sa.Column("on_time", sa.Boolean()))


def downgrade() -> None:
    with op.batch_alter_table("case_events") as b:
        b.drop_column("on_time")
    with op.batch_alter_table("cases") as b:
        b.drop_column("handled_on_time")
        b.drop_column("confirmed_at")
        b.drop_column("confirm_deadline_at")
        b.drop_column("confirm_worker_id")
    with op.batch_alter_table("categories") as b:
        b.drop_index("ix_categories_std_code")
        for c in ("filing_criteria", "confirm_limit_unit", "confirm_limit_value", "confirm_first", "std_source",
                  "std_code"):
            b.drop_column(c)
