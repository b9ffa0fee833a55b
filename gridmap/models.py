"""Imports every table module so that Base.metadata knows the whole schema (for Alembic and tests)."""
from gridmap.boundaries.models import Area, AreaGeometry  # noqa: F401
