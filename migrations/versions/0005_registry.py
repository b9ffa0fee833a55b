"""The base registry (一标三实): standard addresses gain their parts and cells; buildings, households,
residents (identity numbers and phones as digest + ciphertext + mask only), tags, organisations and
the access log of personal data.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry

from gridmap.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

AREA_COLS = ("cell_id", "community_id", "street_id", "district_id")
def _area_columns(table: str):
    return [sa.Column(c, sa.Integer, sa.ForeignKey("areas.id", name=f"fk_{table}_{c}_areas")) for c in AREA_COLS]


def _placed_indexes(table: str) -> None:
    for c in ("cell_id", "community_id", "address_id"):
        op.create_index(f"ix_{table}_{c}", table, [c])


def upgrade() -> None:
    for name, type_ in (("road", sa.String(80)), ("number", sa.String(20)), ("building", sa.String(20)),
                        ("unit", sa.String(20)), ("room", sa.String(20)), ("updated_at", UTCDateTime())):
        op.add_column("addresses", sa.Column(name, type_))
    for c in AREA_COLS:  # plain columns (SQLite cannot add a foreign key to an existing table)
        op.add_column("addresses", sa.Column(c, sa.Integer))
    op.create_index("ix_addresses_cell_id", "addresses", ["cell_id"])
    op.create_index("ix_addresses_community_id", "addresses", ["community_id"])

    op.create_table(
        "registry_buildings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(60), nullable=False),
        sa.Column("address_id", sa.Integer, sa.ForeignKey("addresses.id", name="fk_registry_buildings_address_id_addresses"),
                  nullable=False),
        sa.Column("name", sa.String(120)),
        sa.Column("floors", sa.Integer),
        sa.Column("kind", sa.String(40)),
        sa.Column("footprint", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)),
        sa.Column("updated_at", UTCDateTime()),
        *_area_columns("registry_buildings"),
        sa.UniqueConstraint("code", name="uq_registry_buildings_code"),
    )
    _placed_indexes("registry_buildings")
    op.create_table(
        "registry_households",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(60), nullable=False),
        sa.Column("address_id", sa.Integer,
                  sa.ForeignKey("addresses.id", name="fk_registry_households_address_id_addresses"), nullable=False),
        sa.Column("building_id", sa.Integer,
                  sa.ForeignKey("registry_buildings.id", name="fk_registry_households_building_id_registry_buildings")),
        sa.Column("room", sa.String(40)),
        sa.Column("size", sa.Integer),
        sa.Column("use", sa.String(10), nullable=False),
        sa.Column("updated_at", UTCDateTime()),
        *_area_columns("registry_households"),
        sa.CheckConstraint("use IN ('own','rent','vacant')", name=op.f("ck_registry_households_use")),
        sa.UniqueConstraint("code", name="uq_registry_households_code"),
    )
    _placed_indexes("registry_households")
    op.create_table(
        "registry_persons",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("id_digest", sa.String(64), nullable=False),
        sa.Column("id_cipher", sa.String(120), nullable=False),
        sa.Column("id_masked", sa.String(18), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("gender", sa.String(1)),
        sa.Column("birth_date", sa.Date),
        sa.Column("phone_digest", sa.String(64)),
        sa.Column("phone_cipher", sa.String(120)),
        sa.Column("phone_masked", sa.String(20)),
        sa.Column("household_id", sa.Integer,
                  sa.ForeignKey("registry_households.id", name="fk_registry_persons_household_id_registry_households"),
                  nullable=False),
        sa.Column("residence", sa.String(12), nullable=False),
        sa.Column("moved_out_on", sa.Date),
        sa.Column("updated_at", UTCDateTime()),
        *_area_columns("registry_persons"),
        sa.CheckConstraint("gender IN ('M','F')", name=op.f("ck_registry_persons_gender")),
        sa.CheckConstraint("residence IN ('registered','floating','overseas')",
                           name=op.f("ck_registry_persons_residence")),
        sa.UniqueConstraint("id_digest", name="uq_registry_persons_id_digest"),
    )
    for c in ("cell_id", "community_id", "household_id", "phone_digest"):
        op.create_index(f"ix_registry_persons_{c}", "registry_persons", [c])
    op.create_table(  # the default groups are added by gridmap.registry.service.ensure_tags
        "registry_tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("name_en", sa.String(80)),
        sa.UniqueConstraint("code", name="uq_registry_tags_code"),
        sa.UniqueConstraint("name", name="uq_registry_tags_name"),
    )
    op.create_table(
        "registry_person_tags",
        sa.Column("person_id", sa.Integer,
                  sa.ForeignKey("registry_persons.id", name="fk_registry_person_tags_person_id_registry_persons",
                                ondelete="CASCADE"), primary_key=True),
        sa.Column("tag_id", sa.Integer, sa.ForeignKey("registry_tags.id", name="fk_registry_person_tags_tag_id_registry_tags"),
                  primary_key=True),
    )
    op.create_index("ix_registry_person_tags_tag_id", "registry_person_tags", ["tag_id"])
    op.create_table(
        "registry_organisations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40)),
        sa.Column("address_id", sa.Integer,
                  sa.ForeignKey("addresses.id", name="fk_registry_organisations_address_id_addresses"), nullable=False),
        sa.Column("contact", sa.String(80)),
        sa.Column("phone_digest", sa.String(64)),
        sa.Column("phone_cipher", sa.String(120)),
        sa.Column("phone_masked", sa.String(20)),
        sa.Column("updated_at", UTCDateTime()),
        *_area_columns("registry_organisations"),
        sa.UniqueConstraint("credit_code", name="uq_registry_organisations_credit_code"),
    )
    _placed_indexes("registry_organisations")
    op.create_table(
        "registry_access_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_name", sa.String(120), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", name="fk_registry_access_log_user_id_users")),
        sa.Column("action", sa.String(12), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("record_id", sa.Integer),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sa.CheckConstraint("action IN ('view_full','export')", name=op.f("ck_registry_access_log_action")),
    )
    op.create_index("ix_registry_access_log_at", "registry_access_log", ["at"])
    op.create_index("ix_registry_access_log_record", "registry_access_log", ["kind", "record_id"])


def downgrade() -> None:
    for t in ("registry_access_log", "registry_organisations", "registry_person_tags", "registry_tags",
              "registry_persons", "registry_households", "registry_buildings"):
        op.drop_table(t)
    op.drop_index("ix_addresses_community_id", "addresses")
    op.drop_index("ix_addresses_cell_id", "addresses")
    with op.batch_alter_table("addresses") as b:
        for c in ("road", "number", "building", "unit", "room", "updated_at") + AREA_COLS:
            b.drop_column(c)
