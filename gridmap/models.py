"""Imports every table module so that Base.metadata knows the whole schema (for Alembic and tests)."""
from gridmap.boundaries.models import Area, AreaGeometry  # noqa: F401
from gridmap.assign.models import Absence, CalendarDay, Department, Responsibility, Worker  # noqa: F401
from gridmap.accounts.models import ApiToken, LoginFailure, User, UserSession  # noqa: F401
from gridmap.audit import AuditEntry  # noqa: F401
from gridmap.registry.models import (AccessLog, Address, Building, Household, Organisation, Person,  # noqa: F401
                                     PersonTag, Tag)
from gridmap.incidents.models import Case, CaseEvent, CasePhoto, Category  # noqa: F401
from gridmap.redraw.models import BoundaryDraft, BoundaryDraftArea  # noqa: F401
from gridmap.hazards.models import (Hazard, HazardCase, HazardEvent, HazardPhoto, HazardType,  # noqa: F401
                                    InspectionSchedule, InspectionTask)
from gridmap.fieldwork.models import IdempotencyKey, NotificationMark  # noqa: F401
