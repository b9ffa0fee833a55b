"""Boundary hierarchy: areas (identity) and area_geometries (versioned geometry).

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry

from gridmap.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "areas",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("areas.id", name="fk_areas_parent_id_areas")),
        sa.Column("kind", sa.String(20)),
        sa.Column("households", sa.Integer),
        sa.Column("population", sa.Integer),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime()),
        sa.CheckConstraint("level IN ('district','street','community','cell')", name="ck_areas_level"),
        sa.UniqueConstraint("code", name="uq_areas_code"),
    )
    op.create_index("ix_areas_parent_id", "areas", ["parent_id"])
    op.create_index("ix_areas_level", "areas", ["level"])
    op.create_table(
        "area_geometries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "area_id",
            sa.Integer,
            sa.ForeignKey("areas.id", ondelete="CASCADE", name="fk_area_geometries_area_id_areas"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False),
        sa.Column("area_m2", sa.Float, nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_to", UTCDateTime()),
    )
    op.create_index("ix_area_geometries_area_id", "area_geometries", ["area_id"])
    op.create_index(
        "uq_area_geometries_current",
        "area_geometries",
        ["area_id"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
        sqlite_where=sa.text("valid_to IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("area_geometries")
    op.drop_table("areas")
