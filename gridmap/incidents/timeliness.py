"""Timeliness of the steps around handling: on-site verification (核实), filing (立案), dispatch (派遣)
and the check after handling (核查).

Owns: the time limit of each step (``GRIDMAP_FILING_LIMIT``, ``GRIDMAP_DISPATCH_LIMIT``,
``GRIDMAP_CHECK_LIMIT`` as "VALUE UNIT"; verification has the category's own ``confirm_limit``),
where each step's clock starts, and the judgement "on time" that ``lifecycle`` writes on the
step's history event (``case_events.on_time``), from which the indicators 按时立案率, 按时派遣率,
按时核查率 and 按时核实率 are counted.

Clocks: filing from the on-site verification when the case needed one, else from the report;
dispatch from filing, or from the last return (回退) when the case came back; the check from the
(last) handling. A step whose deadline cannot be computed (a year without calendar data and no
fallback) is not judged (``on_time`` None) and says why in ``warning``: the step itself goes on.
"""
from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.assign.calendar import CalendarGap, add_limit
from gridmap.config import setting
from gridmap.incidents.models import Case, CaseEvent, LIMIT_UNITS

#: step → the setting that holds its limit
STEP_SETTINGS = {"file": "FILING_LIMIT", "dispatch": "DISPATCH_LIMIT", "check": "CHECK_LIMIT"}


class Judgement(NamedTuple):
    on_time: bool | None
    deadline: dt.datetime | None
    start: dt.datetime | None
    warning: str | None = None

    def details(self, step: str) -> dict:
        out = {f"{step}_deadline": self.deadline, f"{step}_on_time": self.on_time}
        if self.warning:
            out["calendar_warning"] = self.warning
        return out


def parse_limit(text: str, what: str = "limit") -> tuple[float, str]:
    """``"1 working_hours"`` → (1.0, "working_hours"); ValueError naming ``what`` otherwise."""
    parts = str(text or "").split()
    if len(parts) != 2 or parts[1] not in LIMIT_UNITS:
        raise ValueError(f"{what} must be 'VALUE UNIT' with UNIT one of {', '.join(LIMIT_UNITS)}, got {text!r}")
    try:
        value = float(parts[0])
    except ValueError:
        raise ValueError(f"{what}: {parts[0]!r} is not a number") from None
    if not value > 0:
        raise ValueError(f"{what} must be more than 0, got {value:g}")
    return value, parts[1]


def step_limit(step: str) -> tuple[float, str]:
    key = STEP_SETTINGS[step]
    return parse_limit(setting(key), f"GRIDMAP_{key}")


def _clock_start(session: Session, case: Case, step: str) -> dt.datetime | None:
    if step == "file":
        return case.confirmed_at or case.reported_at
    if step == "dispatch":
        last_return = session.scalar(select(CaseEvent.at).where(CaseEvent.case_id == case.id,
                                                                CaseEvent.action == "return")
                                     .order_by(CaseEvent.seq.desc()).limit(1))
        starts = [t for t in (case.filed_at, last_return) if t is not None]
        return max(starts) if starts else None
    if step == "check":
        return case.handled_at
    raise ValueError(f"unknown step {step!r}")


def judge(session: Session, case: Case, step: str, now: dt.datetime, *, start: dt.datetime | None = None
          ) -> Judgement:
    """Whether ``step`` done at ``now`` on ``case`` is within its limit (see the module docstring)."""
    start = start or _clock_start(session, case, step)
    if start is None:
        return Judgement(None, None, None)
    value, unit = step_limit(step)
    try:
        deadline = add_limit(session, start, value, unit)
    except CalendarGap as e:
        return Judgement(None, None, start, str(e))
    return Judgement(now <= deadline, deadline, start)


def judge_confirm(case: Case, now: dt.datetime) -> Judgement:
    """On-site verification: within the deadline set at intake (none: not judged)."""
    if case.confirm_deadline_at is None:
        return Judgement(None, None, case.reported_at)
    return Judgement(now <= case.confirm_deadline_at, case.confirm_deadline_at, case.reported_at)
