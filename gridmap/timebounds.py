"""The dates and times gridmap accepts from outside (parameters, forms, JSON, CSV, the CLI).

Owns: ``MIN_DAY`` … ``MAX_DAY`` and the parsers every input path uses, so a date at the calendar's
edge (0001-01-01, 9999-12-31) is refused where it is read, with the field's name, instead of
overflowing later when a day is turned into an instant in Asia/Shanghai or a day is added to it.
Both parsers raise ``ValueError`` (the callers already turn that into their own field error);
the message says what was wrong and which range is allowed. Bottom layer: imports nothing of gridmap.
"""
from __future__ import annotations

import datetime as dt

MIN_DAY = dt.date(1900, 1, 1)
MAX_DAY = dt.date(2199, 12, 31)
RANGE_TEXT = f"{MIN_DAY.isoformat()} … {MAX_DAY.isoformat()}"


class OutOfRange(ValueError):
    """A well-formed date or time outside ``MIN_DAY`` … ``MAX_DAY``."""


def check_day(d: dt.date, what: str = "date") -> dt.date:
    """``d`` (a date or datetime) when it lies within the accepted range; else ``OutOfRange``."""
    day = d.date() if isinstance(d, dt.datetime) else d
    if not MIN_DAY <= day <= MAX_DAY:
        raise OutOfRange(f"{what} {day.isoformat()} is outside {RANGE_TEXT}")
    return d


def parse_day(value, what: str = "date") -> dt.date:
    """YYYY-MM-DD within the accepted range."""
    return check_day(dt.date.fromisoformat(str(value).strip()), what)


def parse_instant(value, what: str = "time") -> dt.datetime:
    """An ISO 8601 date or time (``Z`` allowed) within the accepted range; naive stays naive."""
    v = str(value).strip()
    return check_day(dt.datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith(("Z", "z")) else v), what)
