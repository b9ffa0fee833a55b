"""Sessions and tokens that end, login throttling every process sees, the audit log.

Adds ``api_tokens.expires_at`` (tokens issued before this migration expire 90 days after it runs)
and ``api_tokens.audited_at``, and the tables ``user_sessions``, ``login_failures`` and ``audit_log``.

Revision ID: 0008
Revises: 0007
"""
import datetime as dt

from alembic import op
import sqlalchemy as sa

from gridmap.db import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as b:
        b.add_column(sa.Column("expires_at", UTCDateTime()))
        b.add_column(sa.Column("audited_at", UTCDateTime()))
    grace = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=90)
    tokens = sa.table("api_tokens", sa.column("expires_at", UTCDateTime()))
    op.execute(tokens.update().where(tokens.c.expires_at.is_(None)).values(expires_at=grace))

    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE",
                                                       name="fk_user_sessions_user_id_users"), nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("end_reason", sa.String(20)),
        sa.Column("address", sa.String(64)),
        sa.UniqueConstraint("session_hash", name="uq_user_sessions_session_hash"),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])

    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(80), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_login_failures_username_at", "login_failures", ["username", "at"])
    op.create_index("ix_login_failures_address_at", "login_failures", ["address", "at"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor_user_id", sa.Integer),
        sa.Column("actor_name", sa.String(120)),
        sa.Column("target", sa.String(200)),
        sa.Column("detail", sa.Text),
        sa.Column("address", sa.String(64)),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_actor_user_id", "audit_log", ["actor_user_id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("login_failures")
    op.drop_table("user_sessions")
    with op.batch_alter_table("api_tokens") as b:
        b.drop_column("audited_at")
        b.drop_column("expires_at")
