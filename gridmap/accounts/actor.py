"""Who is acting: the one identity every service function receives.

Owns: the ``Actor`` value (a user, a worker, or the system) and the ``SYSTEM`` actor used by
automatic steps (auto-dispatch on intake, escalation, re-routing).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    name: str
    role: str  # worker, head, community, street, district, city, admin, department, system
    user_id: int | None = None
    worker_id: int | None = None
    area_id: int | None = None  # root of the user's scope (None for city/admin/system)
    department_id: int | None = None

    @property
    def is_system(self) -> bool:
        return self.role == "system"


SYSTEM = Actor(name="system", role="system")
