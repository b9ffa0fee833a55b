"""Imports every table module so that Base.metadata knows the whole schema (for Alembic and tests)."""
from gridmap.boundaries.models import Area, AreaGeometry  # noqa: F401
from gridmap.assign.models import Absence, CalendarDay, Department, Responsibility, Worker  # noqa: F401
from gridmap.accounts.models import ApiToken, User  # noqa: F401
from gridmap.incidents.models import Address, Case, CaseEvent, CasePhoto, Category  # noqa: F401
from gridmap.redraw.models import BoundaryDraft, BoundaryDraftArea  # noqa: F401
from gridmap.hazards.models import Hazard, HazardCase, HazardEvent, HazardType, InspectionSchedule, InspectionTask  # noqa: F401,E501
