"""The working-day calendar and case deadlines.

Owns: deciding whether a day is a working day (Monday–Friday, unless ``calendar_days`` marks it a
holiday or a make-up working day 调休) and turning a time limit (urgent hours, working hours,
working days, natural days) into a deadline. Everything is computed in local time (Asia/Shanghai);
results are timezone-aware UTC datetimes. Holidays are data (``calendar_days``, loaded with
``gridmap.assign.service.import_calendar_csv``), never code.

A year without any calendar data cannot be trusted (its holidays are unknown): a working-time
deadline that needs one of its days raises ``CalendarGap`` naming the year, unless the fallback is
on (``GRIDMAP_CALENDAR_FALLBACK``, or ``fallback=True``): then Monday–Friday is assumed and a
warning naming the year is appended to ``warnings``. Office hours come from
``GRIDMAP_OFFICE_HOURS`` ("08:30-12:00,13:30-17:30").
"""
from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.assign.models import CalendarDay
from gridmap.config import setting

#: local time of the administration (China has no daylight saving time)
TIMEZONE = ZoneInfo("Asia/Shanghai")
#: working periods of a working day, local time: morning and afternoon (lunch break in between)
WORKING_PERIODS: tuple[tuple[dt.time, dt.time], ...] = (
    (dt.time(8, 30), dt.time(12, 0)),
    (dt.time(13, 30), dt.time(17, 30)),
)
#: Monday = 0 … Sunday = 6; the days that are working days unless calendar_days says otherwise
WORKING_WEEKDAYS = frozenset({0, 1, 2, 3, 4})
#: how far ahead a deadline may be searched for before the calendar is declared broken
MAX_SEARCH_DAYS = 3660

UNITS = ("urgent_hours", "working_hours", "working_days", "natural_days")


class CalendarGap(ValueError):
    """A working-time deadline needs a year for which no calendar data is loaded."""

    def __init__(self, year: int):
        self.year = year
        super().__init__(f"no working-day calendar for {year}: its holidays and make-up working days are unknown, "
                         f"so no working-day deadline can be set into {year}. Load it (gridmap calendar import "
                         f"data/calendar/cn-{year}.csv) or allow the Monday–Friday fallback "
                         f"(GRIDMAP_CALENDAR_FALLBACK=1)")


def parse_office_hours(text: str) -> tuple[tuple[dt.time, dt.time], ...]:
    """``"08:30-12:00,13:30-17:30"`` → the working periods; ValueError on anything else."""
    periods = []
    try:
        for part in str(text).split(","):
            a, b = (dt.time.fromisoformat(x.strip()) for x in part.split("-"))
            periods.append((a, b))
    except ValueError:
        raise ValueError(f"office hours must look like 08:30-12:00,13:30-17:30, got {text!r}") from None
    flat = [t for p in periods for t in p]
    if not periods or any(b <= a for a, b in zip(flat, flat[1:])):
        raise ValueError(f"office hours must be increasing, non-overlapping periods, got {text!r}")
    return tuple(periods)


def office_hours() -> tuple[tuple[dt.time, dt.time], ...]:
    raw = setting("OFFICE_HOURS")
    return WORKING_PERIODS if not raw else parse_office_hours(raw)


class WorkCalendar:
    """Working-day rules plus the ``calendar_days`` overrides, read once per year and per instance.

    Build one per computation (``add_limit`` does): it caches what it read, so a change to
    ``calendar_days`` is seen by the next instance. A year without rows raises ``CalendarGap``
    unless ``fallback`` (then a warning goes to ``warnings``).
    """

    def __init__(self, session: Session, *, fallback: bool | None = None, warnings: list | None = None,
                 periods: tuple[tuple[dt.time, dt.time], ...] | None = None):
        self.session = session
        self._years: dict[int, dict[dt.date, str]] = {}
        self.fallback = bool(setting("CALENDAR_FALLBACK")) if fallback is None else fallback
        self.warnings = warnings if warnings is not None else []
        self.periods = periods or office_hours()

    def override(self, day: dt.date) -> str | None:
        year = self._years.get(day.year)
        if year is None:
            rows = self.session.execute(
                select(CalendarDay.day, CalendarDay.kind)
                .where(CalendarDay.day >= dt.date(day.year, 1, 1), CalendarDay.day <= dt.date(day.year, 12, 31))
            ).all()
            year = self._years[day.year] = {d: k for d, k in rows}
            if not year:
                if not self.fallback:
                    raise CalendarGap(day.year)
                self.warnings.append(f"no calendar data for {day.year}: Monday–Friday assumed "
                                     f"(GRIDMAP_CALENDAR_FALLBACK); holidays of {day.year} are not known")
        return year.get(day)

    def is_working_day(self, day: dt.date) -> bool:
        kind = self.override(day)
        if kind == "holiday":
            return False
        if kind == "workday":
            return True
        return day.weekday() in WORKING_WEEKDAYS

    def working_days_from(self, day: dt.date):
        """Working days from ``day`` (included) on, at most MAX_SEARCH_DAYS calendar days ahead."""
        for i in range(MAX_SEARCH_DAYS):
            d = day + dt.timedelta(days=i)
            if self.is_working_day(d):
                yield d
        raise ValueError(f"no working day within {MAX_SEARCH_DAYS} days after {day}: check calendar_days")


def _local(day: dt.date, t: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, t, tzinfo=TIMEZONE)


def require_aware(value: dt.datetime, what: str) -> None:
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} is a naive datetime; attach a timezone")


def local_date(at: dt.datetime) -> dt.date:
    """The Asia/Shanghai calendar date of an aware instant."""
    require_aware(at, "at")
    return at.astimezone(TIMEZONE).date()


def is_working_day(session: Session, day: dt.date, *, fallback: bool | None = None) -> bool:
    """Monday–Friday, unless ``calendar_days`` marks the day a holiday or a make-up working day
    (``CalendarGap`` for a year without calendar data, unless ``fallback``)."""
    if isinstance(day, dt.datetime):
        day = local_date(day)
    return WorkCalendar(session, fallback=fallback).is_working_day(day)


def _add_working_hours(cal: WorkCalendar, start: dt.datetime, hours: float) -> dt.datetime:
    remaining = dt.timedelta(hours=hours)
    local = start.astimezone(TIMEZONE)
    for day in cal.working_days_from(local.date()):
        for begin, end in cal.periods:
            p0, p1 = _local(day, begin), _local(day, end)
            if p1 <= local:
                continue
            p0 = max(p0, local)
            if p0 + remaining <= p1:
                return p0 + remaining
            remaining -= p1 - p0
    raise AssertionError("unreachable")  # working_days_from raises first


def _add_working_days(cal: WorkCalendar, start: dt.datetime, days: int) -> dt.datetime:
    first = start.astimezone(TIMEZONE).date() + dt.timedelta(days=1)  # the start day does not count
    for n, day in enumerate(cal.working_days_from(first), start=1):
        if n == days:
            return _local(day, cal.periods[-1][1])
    raise AssertionError("unreachable")


def add_limit(session: Session, start: dt.datetime, value: float, unit: str, *, fallback: bool | None = None,
              warnings: list | None = None) -> dt.datetime:
    """The deadline ``value`` ``unit`` after ``start`` (a timezone-aware UTC datetime).

    Working-time units raise ``CalendarGap`` when a day they need lies in a year without calendar
    data, unless ``fallback`` (default: ``GRIDMAP_CALENDAR_FALLBACK``): then a warning is appended
    to ``warnings``.

    - ``urgent_hours``, ``natural_days``: plain clock time (24 h a day, weekends and holidays count);
    - ``working_hours``: only time inside WORKING_PERIODS on working days counts; a start outside
      working time starts the clock at the next working period;
    - ``working_days``: the end of the last working period of the Nth working day after the start
      day (the start day itself does not count); whole numbers only (use working_hours for parts).
    A limit of 0 gives ``start``.
    """
    require_aware(start, "start")
    if unit not in UNITS:
        raise ValueError(f"unknown time-limit unit {unit!r}; expected one of {', '.join(UNITS)}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"time limit {value!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"time limit must be a finite number >= 0, got {value}")
    start = start.astimezone(dt.timezone.utc)
    if value == 0:
        return start
    if unit == "urgent_hours":
        return start + dt.timedelta(hours=value)
    if unit == "natural_days":
        return start + dt.timedelta(days=value)
    cal = WorkCalendar(session, fallback=fallback, warnings=warnings)
    if unit == "working_hours":
        return _add_working_hours(cal, start, value).astimezone(dt.timezone.utc)
    if value != int(value):
        raise ValueError(f"working_days must be a whole number, got {value}; express parts of a day "
                         "in working_hours")
    return _add_working_days(cal, start, int(value)).astimezone(dt.timezone.utc)
