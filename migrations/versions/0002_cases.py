"""Cases, categories, workers, responsibilities, roster, calendar, accounts, address register.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry

import gridmap.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('addresses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=60), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('normalized', sa.String(length=300), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('cell_code', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_addresses')),
    sa.UniqueConstraint('code', name=op.f('uq_addresses_code'))
    )
    op.create_index('ix_addresses_normalized', 'addresses', ['normalized'], unique=False)
    op.create_table('calendar_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=True),
    sa.CheckConstraint("kind IN ('holiday','workday')", name=op.f('ck_calendar_days_kind')),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_calendar_days'))
    )
    op.create_table('departments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_departments_area_id_areas')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments')),
    sa.UniqueConstraint('code', name=op.f('uq_departments_code'))
    )
    op.create_table('categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('name_en', sa.String(length=120), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('limit_value', sa.Float(), nullable=True),
    sa.Column('limit_unit', sa.String(length=20), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_categories_department_id_departments')),
    sa.ForeignKeyConstraint(['parent_id'], ['categories.id'], name=op.f('fk_categories_parent_id_categories')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_categories')),
    sa.UniqueConstraint('code', name=op.f('uq_categories_code'))
    )
    op.create_index('ix_categories_parent_id', 'categories', ['parent_id'], unique=False)
    op.create_table('workers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('employment', sa.String(length=20), nullable=True),
    sa.Column('area_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', gridmap.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("role IN ('worker','head','community','street','district','department')", name=op.f('ck_workers_role')),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_workers_area_id_areas')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_workers_department_id_departments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workers')),
    sa.UniqueConstraint('code', name=op.f('uq_workers_code'))
    )
    op.create_index('ix_workers_area_id', 'workers', ['area_id'], unique=False)
    op.create_table('absences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=False),
    sa.Column('start', gridmap.db.UTCDateTime(), nullable=False),
    sa.Column('end', gridmap.db.UTCDateTime(), nullable=False),
    sa.Column('substitute_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['substitute_id'], ['workers.id'], name=op.f('fk_absences_substitute_id_workers')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_absences_worker_id_workers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_absences'))
    )
    op.create_index('ix_absences_worker_id', 'absences', ['worker_id'], unique=False)
    op.create_table('responsibilities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=False),
    sa.Column('cell_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.CheckConstraint("role IN ('primary','backup')", name=op.f('ck_responsibilities_role')),
    sa.ForeignKeyConstraint(['cell_id'], ['areas.id'], name=op.f('fk_responsibilities_cell_id_areas')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_responsibilities_worker_id_workers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_responsibilities'))
    )
    op.create_index('ix_responsibilities_cell_id', 'responsibilities', ['cell_id'], unique=False)
    op.create_index('ix_responsibilities_worker_id', 'responsibilities', ['worker_id'], unique=False)
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('display_name', sa.String(length=120), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=True),
    sa.Column('worker_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('language', sa.String(length=10), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', gridmap.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_users_area_id_areas')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_users_department_id_departments')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_users_worker_id_workers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=True),
    sa.Column('created_at', gridmap.db.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', gridmap.db.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', gridmap.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_index(op.f('ix_api_tokens_user_id'), 'api_tokens', ['user_id'], unique=False)
    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=120), nullable=True),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('supervised', sa.Boolean(), nullable=False),
    sa.Column('reporter_name', sa.String(length=80), nullable=True),
    sa.Column('reporter_phone', sa.String(length=40), nullable=True),
    sa.Column('reporter_user_id', sa.Integer(), nullable=True),
    sa.Column('geom', Geometry('POINT', srid=4326, spatial_index=True), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('input_crs', sa.String(length=20), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('address_id', sa.Integer(), nullable=True),
    sa.Column('address_score', sa.Float(), nullable=True),
    sa.Column('placement', sa.String(length=20), nullable=False),
    sa.Column('cell_id', sa.Integer(), nullable=True),
    sa.Column('community_id', sa.Integer(), nullable=True),
    sa.Column('street_id', sa.Integer(), nullable=True),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.Column('snapped', sa.Boolean(), nullable=False),
    sa.Column('distance_m', sa.Float(), nullable=True),
    sa.Column('assignee_worker_id', sa.Integer(), nullable=True),
    sa.Column('assignee_department_id', sa.Integer(), nullable=True),
    sa.Column('assignee_level', sa.String(length=20), nullable=True),
    sa.Column('route_reason', sa.String(length=300), nullable=True),
    sa.Column('escalation_level', sa.Integer(), nullable=False),
    sa.Column('duplicate_of_id', sa.Integer(), nullable=True),
    sa.Column('reported_at', gridmap.db.UTCDateTime(), nullable=False),
    sa.Column('filed_at', gridmap.db.UTCDateTime(), nullable=True),
    sa.Column('dispatched_at', gridmap.db.UTCDateTime(), nullable=True),
    sa.Column('accepted_at', gridmap.db.UTCDateTime(), nullable=True),
    sa.Column('deadline_at', gridmap.db.UTCDateTime(), nullable=True),
    sa.Column('handled_at', gridmap.db.UTCDateTime(), nullable=True),
    sa.Column('closed_at', gridmap.db.UTCDateTime(), nullable=True),
    sa.Column('evaluated_at', gridmap.db.UTCDateTime(), nullable=True),
    sa.Column('handled_by_worker_id', sa.Integer(), nullable=True),
    sa.Column('self_handled', sa.Boolean(), nullable=False),
    sa.Column('overdue', sa.Boolean(), nullable=False),
    sa.Column('closed_on_time', sa.Boolean(), nullable=True),
    sa.Column('extension_count', sa.Integer(), nullable=False),
    sa.Column('extension_pending', sa.Boolean(), nullable=False),
    sa.Column('rework_count', sa.Integer(), nullable=False),
    sa.Column('return_count', sa.Integer(), nullable=False),
    sa.Column('satisfaction', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', gridmap.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['address_id'], ['addresses.id'], name=op.f('fk_cases_address_id_addresses')),
    sa.ForeignKeyConstraint(['assignee_department_id'], ['departments.id'], name=op.f('fk_cases_assignee_department_id_departments')),
    sa.ForeignKeyConstraint(['assignee_worker_id'], ['workers.id'], name=op.f('fk_cases_assignee_worker_id_workers')),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_cases_category_id_categories')),
    sa.ForeignKeyConstraint(['cell_id'], ['areas.id'], name=op.f('fk_cases_cell_id_areas')),
    sa.ForeignKeyConstraint(['community_id'], ['areas.id'], name=op.f('fk_cases_community_id_areas')),
    sa.ForeignKeyConstraint(['district_id'], ['areas.id'], name=op.f('fk_cases_district_id_areas')),
    sa.ForeignKeyConstraint(['duplicate_of_id'], ['cases.id'], name=op.f('fk_cases_duplicate_of_id_cases')),
    sa.ForeignKeyConstraint(['handled_by_worker_id'], ['workers.id'], name=op.f('fk_cases_handled_by_worker_id_workers')),
    sa.ForeignKeyConstraint(['reporter_user_id'], ['users.id'], name=op.f('fk_cases_reporter_user_id_users')),
    sa.ForeignKeyConstraint(['street_id'], ['areas.id'], name=op.f('fk_cases_street_id_areas')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('number', name=op.f('uq_cases_number')),
    sa.UniqueConstraint('source', 'external_id', name='uq_cases_source_external_id')
    )
    op.create_index('ix_cases_assignee_worker_id', 'cases', ['assignee_worker_id'], unique=False)
    op.create_index('ix_cases_category_id', 'cases', ['category_id'], unique=False)
    op.create_index('ix_cases_cell_id', 'cases', ['cell_id'], unique=False)
    op.create_index('ix_cases_community_id', 'cases', ['community_id'], unique=False)
    op.create_index('ix_cases_deadline_at', 'cases', ['deadline_at'], unique=False)
    op.create_index('ix_cases_reported_at', 'cases', ['reported_at'], unique=False)
    op.create_index('ix_cases_status', 'cases', ['status'], unique=False)
    op.create_index('ix_cases_street_id', 'cases', ['street_id'], unique=False)
    op.create_table('case_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=30), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=True),
    sa.Column('at', gridmap.db.UTCDateTime(), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor_worker_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=120), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('data', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_case_events_actor_user_id_users')),
    sa.ForeignKeyConstraint(['actor_worker_id'], ['workers.id'], name=op.f('fk_case_events_actor_worker_id_workers')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_events_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_events')),
    sa.UniqueConstraint('case_id', 'seq', name='uq_case_events_case_id_seq')
    )
    op.create_index('ix_case_events_at', 'case_events', ['at'], unique=False)
    op.create_table('case_photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=60), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('stored_path', sa.String(length=300), nullable=False),
    sa.Column('created_at', gridmap.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_photos_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['case_events.id'], name=op.f('fk_case_photos_event_id_case_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_photos'))
    )
    op.create_index('ix_case_photos_case_id', 'case_photos', ['case_id'], unique=False)


def downgrade() -> None:
    for t in ("case_photos", "case_events", "cases", "api_tokens", "users", "responsibilities", "absences",
              "workers", "categories", "departments", "calendar_days", "addresses"):
        op.drop_table(t)
