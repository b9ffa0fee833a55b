"""Hazards (隐患): types, the register with point or area geometry, its history, links to cases,
inspection schedules and tasks.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry

from gridmap.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hazard_types",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("name_en", sa.String(120)),
        sa.Column("category_code", sa.String(60)),
        sa.Column("rectify_limit_value", sa.Float, nullable=False),
        sa.Column("rectify_limit_unit", sa.String(20), nullable=False),
        sa.Column("inspection_interval_days", sa.Integer),
        sa.Column("severity_limits", sa.Text),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.UniqueConstraint("code", name="uq_hazard_types_code"),
    )
    op.create_table(
        "hazards",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.String(40)),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("external_id", sa.String(120)),
        sa.Column("type_id", sa.Integer, sa.ForeignKey("hazard_types.id", name="fk_hazards_type_id_hazard_types"),
                  nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False),
        sa.Column("geom_kind", sa.String(6), nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("address", sa.String(300)),
        sa.Column("cell_id", sa.Integer, sa.ForeignKey("areas.id", name="fk_hazards_cell_id_areas")),
        sa.Column("community_id", sa.Integer, sa.ForeignKey("areas.id", name="fk_hazards_community_id_areas")),
        sa.Column("street_id", sa.Integer, sa.ForeignKey("areas.id", name="fk_hazards_street_id_areas")),
        sa.Column("district_id", sa.Integer, sa.ForeignKey("areas.id", name="fk_hazards_district_id_areas")),
        sa.Column("responsible_unit", sa.String(200)),
        sa.Column("responsible_person", sa.String(80)),
        sa.Column("responsible_worker_id", sa.Integer,
                  sa.ForeignKey("workers.id", name="fk_hazards_responsible_worker_id_workers")),
        sa.Column("route_reason", sa.String(300)),
        sa.Column("found_at", UTCDateTime(), nullable=False),
        sa.Column("rectify_deadline", UTCDateTime()),
        sa.Column("rectified_at", UTCDateTime()),
        sa.Column("verified_at", UTCDateTime()),
        sa.Column("closed_at", UTCDateTime()),
        sa.Column("rework_count", sa.Integer, nullable=False),
        sa.Column("reported_by", sa.String(120)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("severity IN ('low','medium','high','major')", name=op.f("ck_hazards_severity")),
        sa.CheckConstraint("status IN ('open','rectified','verified','closed')", name=op.f("ck_hazards_status")),
        sa.CheckConstraint("geom_kind IN ('point','area')", name=op.f("ck_hazards_geom_kind")),
        sa.UniqueConstraint("number", name="uq_hazards_number"),
        sa.UniqueConstraint("source", "external_id", name="uq_hazards_source_external_id"),
    )
    for col in ("status", "type_id", "cell_id", "community_id", "street_id", "found_at", "responsible_worker_id"):
        op.create_index(f"ix_hazards_{col}", "hazards", [col])
    op.create_table(
        "hazard_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hazard_id", sa.Integer,
                  sa.ForeignKey("hazards.id", ondelete="CASCADE", name="fk_hazard_events_hazard_id_hazards"),
                  nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("from_status", sa.String(12)),
        sa.Column("to_status", sa.String(12)),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_user_id", sa.Integer, sa.ForeignKey("users.id", name="fk_hazard_events_actor_user_id_users")),
        sa.Column("actor_worker_id", sa.Integer,
                  sa.ForeignKey("workers.id", name="fk_hazard_events_actor_worker_id_workers")),
        sa.Column("actor_name", sa.String(120)),
        sa.Column("comment", sa.Text),
        sa.Column("data", sa.Text),
        sa.UniqueConstraint("hazard_id", "seq", name="uq_hazard_events_hazard_id_seq"),
    )
    op.create_index("ix_hazard_events_at", "hazard_events", ["at"])
    op.create_table(
        "hazard_cases",
        sa.Column("hazard_id", sa.Integer,
                  sa.ForeignKey("hazards.id", ondelete="CASCADE", name="fk_hazard_cases_hazard_id_hazards"),
                  primary_key=True),
        sa.Column("case_id", sa.Integer,
                  sa.ForeignKey("cases.id", ondelete="CASCADE", name="fk_hazard_cases_case_id_cases"),
                  primary_key=True),
        sa.Column("relation", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_hazard_cases_case_id", "hazard_cases", ["case_id"])
    op.create_table(
        "inspection_schedules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hazard_id", sa.Integer,
                  sa.ForeignKey("hazards.id", ondelete="CASCADE", name="fk_inspection_schedules_hazard_id_hazards")),
        sa.Column("cell_id", sa.Integer, sa.ForeignKey("areas.id", name="fk_inspection_schedules_cell_id_areas")),
        sa.Column("title", sa.String(200)),
        sa.Column("interval_days", sa.Integer, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(120)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("interval_days > 0", name=op.f("ck_inspection_schedules_interval_days")),
        sa.CheckConstraint("end_date IS NULL OR end_date >= start_date", name=op.f("ck_inspection_schedules_end_date")),
        sa.CheckConstraint("hazard_id IS NOT NULL OR cell_id IS NOT NULL", name=op.f("ck_inspection_schedules_target")),
    )
    op.create_index("ix_inspection_schedules_hazard_id", "inspection_schedules", ["hazard_id"])
    op.create_index("ix_inspection_schedules_cell_id", "inspection_schedules", ["cell_id"])
    op.create_table(
        "inspection_tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("schedule_id", sa.Integer,
                  sa.ForeignKey("inspection_schedules.id", ondelete="CASCADE",
                                name="fk_inspection_tasks_schedule_id_inspection_schedules"), nullable=False),
        sa.Column("hazard_id", sa.Integer,
                  sa.ForeignKey("hazards.id", ondelete="CASCADE", name="fk_inspection_tasks_hazard_id_hazards")),
        sa.Column("cell_id", sa.Integer, sa.ForeignKey("areas.id", name="fk_inspection_tasks_cell_id_areas")),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("worker_id", sa.Integer, sa.ForeignKey("workers.id", name="fk_inspection_tasks_worker_id_workers")),
        sa.Column("assign_reason", sa.String(300)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime()),
        sa.Column("done_by_worker_id", sa.Integer,
                  sa.ForeignKey("workers.id", name="fk_inspection_tasks_done_by_worker_id_workers")),
        sa.Column("done_by", sa.String(120)),
        sa.Column("result", sa.String(10)),
        sa.Column("note", sa.Text),
        sa.UniqueConstraint("schedule_id", "due_date", name="uq_inspection_tasks_schedule_id_due_date"),
        sa.CheckConstraint("result IS NULL OR result IN ('ok','issue','absent')", name=op.f("ck_inspection_tasks_result")),
    )
    for col in ("due_date", "worker_id", "cell_id", "hazard_id"):
        op.create_index(f"ix_inspection_tasks_{col}", "inspection_tasks", [col])


def downgrade() -> None:
    for t in ("inspection_tasks", "inspection_schedules", "hazard_cases", "hazard_events", "hazards",
              "hazard_types"):
        op.drop_table(t)
