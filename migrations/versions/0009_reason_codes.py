"""Routing reasons and system comments as codes with parameters (rendered per language).

cases.route_reason_code / route_reason_params (JSON) beside the English route_reason, which stays
(old rows keep only the text and are shown as stored); case_events.comment_code / comment_params
beside the comment.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # in place, not in a batch: a batch copy of cases would drop SpatiaLite's geometry registration
    op.add_column("cases", sa.Column("route_reason_code", sa.String(40), nullable=True))
    op.add_column("cases", sa.Column("route_reason_params", sa.Text, nullable=True))
    with op.batch_alter_table("case_events") as batch:
        batch.add_column(sa.Column("comment_code", sa.String(40), nullable=True))
        batch.add_column(sa.Column("comment_params", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_events") as batch:
        batch.drop_column("comment_params")
        batch.drop_column("comment_code")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("route_reason_params")
        batch.drop_column("route_reason_code")
