"""Boundary drafts: proposed redraws (draft → submitted → published | rejected) and the areas they touch.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry

from gridmap.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "boundary_drafts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("scope_area_id", sa.Integer,
                  sa.ForeignKey("areas.id", name="fk_boundary_drafts_scope_area_id_areas")),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_by_user_id", sa.Integer,
                  sa.ForeignKey("users.id", name="fk_boundary_drafts_created_by_user_id_users")),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("submitted_by", sa.String(120)),
        sa.Column("submitted_at", UTCDateTime()),
        sa.Column("published_by", sa.String(120)),
        sa.Column("published_by_user_id", sa.Integer,
                  sa.ForeignKey("users.id", name="fk_boundary_drafts_published_by_user_id_users")),
        sa.Column("published_at", UTCDateTime()),
        sa.Column("rejected_by", sa.String(120)),
        sa.Column("rejected_at", UTCDateTime()),
        sa.Column("reason", sa.Text),
        sa.Column("operations", sa.Text),
        sa.Column("problems", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("status IN ('draft','submitted','published','rejected')",
                           name="ck_boundary_drafts_status"),
    )
    op.create_index("ix_boundary_drafts_status", "boundary_drafts", ["status"])
    op.create_table(
        "boundary_draft_areas",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("draft_id", sa.Integer,
                  sa.ForeignKey("boundary_drafts.id", ondelete="CASCADE",
                                name="fk_boundary_draft_areas_draft_id_boundary_drafts"), nullable=False),
        sa.Column("area_id", sa.Integer, sa.ForeignKey("areas.id", name="fk_boundary_draft_areas_area_id_areas")),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_code", sa.String(32)),
        sa.Column("kind", sa.String(20)),
        sa.Column("households", sa.Integer),
        sa.Column("population", sa.Integer),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True),
        sa.Column("base_geometry_id", sa.Integer),
        sa.Column("base_version", sa.Integer),
        sa.Column("sources", sa.Text),
        sa.Column("fixed_figures", sa.Integer, nullable=False),
        sa.CheckConstraint("action IN ('create','change','retire')", name="ck_boundary_draft_areas_action"),
        sa.UniqueConstraint("draft_id", "code", name="uq_boundary_draft_areas_draft_id_code"),
    )
    op.create_index("ix_boundary_draft_areas_draft_id", "boundary_draft_areas", ["draft_id"])
    op.create_index("ix_boundary_draft_areas_area_id", "boundary_draft_areas", ["area_id"])
    op.create_index("ix_boundary_draft_areas_code", "boundary_draft_areas", ["code"])


def downgrade() -> None:
    op.drop_table("boundary_draft_areas")
    op.drop_table("boundary_drafts")
