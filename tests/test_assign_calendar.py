"""The working-day calendar and deadlines: weekends, holidays, make-up days, lunch and evenings."""
import datetime as dt
from pathlib import Path

import pytest

from gridmap.assign.calendar import TIMEZONE, CalendarGap, add_limit, is_working_day
from gridmap.assign.models import CalendarDay
from gridmap.assign.service import import_calendar_csv, set_calendar_days
from gridmap.db import transaction

CN_2026 = Path(__file__).resolve().parent.parent / "data" / "calendar" / "cn-2026.csv"


def local(y, mo, d, h=0, mi=0):
    return dt.datetime(y, mo, d, h, mi, tzinfo=TIMEZONE)


@pytest.fixture
def cn2026(sessionmaker):
    with transaction(sessionmaker) as s:
        res = import_calendar_csv(s, CN_2026)
    assert res.ok and len(res.created) == 39
    return sessionmaker


def test_official_2026_file_is_consistent():
    import csv

    rows = [r for r in csv.DictReader(line for line in CN_2026.read_text(encoding="utf-8").splitlines()
                                      if not line.startswith("#"))]
    work = [dt.date.fromisoformat(r["date"]) for r in rows if r["kind"] == "workday"]
    hol = [dt.date.fromisoformat(r["date"]) for r in rows if r["kind"] == "holiday"]
    assert all(d.weekday() >= 5 for d in work)  # make-up working days are weekend days
    assert len(work) == 6 and len(hol) == 33
    assert dt.date(2026, 2, 17) in hol  # 春节 (Chinese New Year's day)
    assert [d for d in hol if d.month == 10] == [dt.date(2026, 10, d) for d in range(1, 8)]


def test_is_working_day_plain_week(sessionmaker):
    with sessionmaker() as s:  # the Monday–Friday fallback, only when asked for
        assert is_working_day(s, dt.date(2026, 3, 3), fallback=True)       # Tuesday
        assert not is_working_day(s, dt.date(2026, 3, 7), fallback=True)   # Saturday
        assert not is_working_day(s, dt.date(2026, 3, 8), fallback=True)   # Sunday
        assert is_working_day(s, dt.date(2026, 10, 1), fallback=True)      # no calendar loaded: a Thursday
        with pytest.raises(CalendarGap, match="no working-day calendar for 2026"):
            is_working_day(s, dt.date(2026, 3, 3))


def test_is_working_day_with_holidays_and_makeup_days(cn2026):
    with cn2026() as s:
        assert not is_working_day(s, dt.date(2026, 10, 1))  # National Day, Thursday
        assert not is_working_day(s, dt.date(2026, 10, 7))
        assert is_working_day(s, dt.date(2026, 10, 8))
        assert is_working_day(s, dt.date(2026, 10, 10))     # Saturday, make-up working day
        assert is_working_day(s, dt.date(2026, 9, 20))      # Sunday, make-up working day
        assert not is_working_day(s, dt.date(2026, 2, 23))  # Monday in the Spring Festival


@pytest.mark.parametrize("start, hours, expect", [
    (local(2026, 3, 3, 9, 0), 2, local(2026, 3, 3, 11, 0)),      # inside the morning
    (local(2026, 3, 3, 11, 0), 2, local(2026, 3, 3, 14, 30)),    # across lunch
    (local(2026, 3, 3, 12, 30), 1, local(2026, 3, 3, 14, 30)),   # starts during lunch
    (local(2026, 3, 3, 7, 0), 1, local(2026, 3, 3, 9, 30)),      # before office hours
    (local(2026, 3, 3, 17, 0), 1, local(2026, 3, 4, 9, 0)),      # across the evening
    (local(2026, 3, 3, 20, 0), 1, local(2026, 3, 4, 9, 30)),     # starts in the evening
    (local(2026, 3, 3, 8, 30), 3.5, local(2026, 3, 3, 12, 0)),   # ends exactly at lunch
    (local(2026, 3, 3, 8, 30), 7.5, local(2026, 3, 3, 17, 30)),  # one full working day
    (local(2026, 3, 3, 8, 30), 8, local(2026, 3, 4, 9, 0)),
    (local(2026, 3, 6, 16, 30), 2, local(2026, 3, 9, 9, 30)),    # Friday afternoon → Monday
    (local(2026, 3, 7, 10, 0), 1, local(2026, 3, 9, 9, 30)),     # reported on Saturday
    (local(2026, 3, 3, 10, 0), 0.25, local(2026, 3, 3, 10, 15)),
])
def test_working_hours(cn2026, start, hours, expect):
    with cn2026() as s:  # no holiday in these March days
        got = add_limit(s, start, hours, "working_hours")
    assert got == expect
    assert got.tzinfo == dt.timezone.utc


def test_working_hours_across_national_day_and_into_a_makeup_saturday(cn2026):
    with cn2026() as s:
        # Wednesday 30 September 17:00 + 2 h: 0.5 h that day, then the holiday week, then Thursday 8 October
        assert add_limit(s, local(2026, 9, 30, 17, 0), 2, "working_hours") == local(2026, 10, 8, 10, 0)
        # Friday 9 October 17:00 + 1 h: Saturday 10 October is a make-up working day
        assert add_limit(s, local(2026, 10, 9, 17, 0), 1, "working_hours") == local(2026, 10, 10, 9, 0)
    with cn2026() as s:  # and without the make-up day it would have been Monday
        s.delete(s.get(CalendarDay, dt.date(2026, 10, 10)))
        s.flush()
        assert add_limit(s, local(2026, 10, 9, 17, 0), 1, "working_hours") == local(2026, 10, 12, 9, 0)
        s.rollback()


def test_working_days(cn2026):
    with cn2026() as s:
        # end of the Nth working day after the start day
        assert add_limit(s, local(2026, 3, 3, 10, 0), 1, "working_days") == local(2026, 3, 4, 17, 30)
        assert add_limit(s, local(2026, 3, 3, 23, 0), 1, "working_days") == local(2026, 3, 4, 17, 30)
        assert add_limit(s, local(2026, 3, 6, 10, 0), 1, "working_days") == local(2026, 3, 9, 17, 30)  # weekend
        assert add_limit(s, local(2026, 3, 6, 10, 0), 5, "working_days") == local(2026, 3, 13, 17, 30)
        assert add_limit(s, local(2026, 3, 7, 10, 0), 1, "working_days") == local(2026, 3, 9, 17, 30)  # from Sat


def test_working_days_across_a_holiday(cn2026):
    with cn2026() as s:
        start = local(2026, 9, 30, 10, 0)
        assert add_limit(s, start, 1, "working_days") == local(2026, 10, 8, 17, 30)
        # 8 Oct (Thu), 9 Oct (Fri), 10 Oct (make-up Saturday)
        assert add_limit(s, start, 3, "working_days") == local(2026, 10, 10, 17, 30)
        assert add_limit(s, start, 4, "working_days") == local(2026, 10, 12, 17, 30)
        # the Saturday before the Spring Festival is a make-up working day (14 February)
        assert add_limit(s, local(2026, 2, 13, 10, 0), 1, "working_days") == local(2026, 2, 14, 17, 30)
        assert add_limit(s, local(2026, 2, 13, 10, 0), 2, "working_days") == local(2026, 2, 24, 17, 30)


def test_urgent_hours_and_natural_days_ignore_the_calendar(cn2026):
    with cn2026() as s:
        assert add_limit(s, local(2026, 10, 1, 23, 0), 2, "urgent_hours") == local(2026, 10, 2, 1, 0)
        assert add_limit(s, local(2026, 10, 1, 23, 0), 0.5, "urgent_hours") == local(2026, 10, 1, 23, 30)
        assert add_limit(s, local(2026, 9, 30, 10, 0), 3, "natural_days") == local(2026, 10, 3, 10, 0)
        assert add_limit(s, local(2026, 9, 30, 10, 0), 0, "natural_days") == local(2026, 9, 30, 10, 0)
        # a UTC start gives the same instant
        utc = local(2026, 9, 30, 10, 0).astimezone(dt.timezone.utc)
        assert add_limit(s, utc, 1, "working_days") == local(2026, 10, 8, 17, 30)


def test_a_holiday_set_later_moves_the_deadline(sessionmaker):
    start = local(2026, 3, 2, 10, 0)  # Monday
    with transaction(sessionmaker) as s:
        assert add_limit(s, start, 1, "working_days", fallback=True) == local(2026, 3, 3, 17, 30)
        res = set_calendar_days(s, [(dt.date(2026, 3, 3), "holiday", "local typhoon day"),
                                    {"date": "2026-03-07", "kind": "workday", "name": None}])
        assert res.created == ["2026-03-03", "2026-03-07"]
    with sessionmaker() as s:
        assert add_limit(s, start, 1, "working_days") == local(2026, 3, 4, 17, 30)
        assert add_limit(s, start, 5, "working_days") == local(2026, 3, 9, 17, 30)  # Sat 7th counts
    with transaction(sessionmaker) as s:  # setting the same again changes nothing; a new kind updates
        res = set_calendar_days(s, [("2026-03-03", "holiday", "local typhoon day"), ("2026-03-07", "holiday", "")])
        assert res.unchanged == ["2026-03-03"] and res.updated == ["2026-03-07"]
        assert s.get(CalendarDay, dt.date(2026, 3, 7)).kind == "holiday"


@pytest.mark.parametrize("value, unit, message", [
    (1, "hours", "unknown time-limit unit"),
    (-1, "working_hours", ">= 0"),
    (float("nan"), "urgent_hours", ">= 0"),
    (1.5, "working_days", "whole number"),
    ("abc", "natural_days", "not a number"),
])
def test_bad_limits_are_refused(sessionmaker, value, unit, message):
    with sessionmaker() as s, pytest.raises(ValueError, match=message):
        add_limit(s, local(2026, 3, 3, 10), value, unit)


def test_naive_start_is_refused(sessionmaker):
    with sessionmaker() as s, pytest.raises(ValueError, match="naive"):
        add_limit(s, dt.datetime(2026, 3, 3, 10), 1, "working_hours")


def test_calendar_csv_reports_bad_lines_and_reads_gbk(sessionmaker, tmp_path):
    p = tmp_path / "cal.csv"
    p.write_bytes("日期,类型,名称\n2026-03-03,休,台风停工\n2026-02-30,holiday,坏日期\n2026-03-07,班,补班\n"
                  "2026-03-08,weekend,坏类型\n2026-03-03,workday,冲突\n".encode("gbk"))
    with transaction(sessionmaker) as s:
        res = import_calendar_csv(s, p)
    assert res.created == ["2026-03-03", "2026-03-07"]
    assert [(b.line, b.key) for b in res.bad] == [(3, "2026-02-30"), (5, "2026-03-08"), (6, "2026-03-03")]
    assert "unknown kind 'weekend'" in res.bad[1].message
    with sessionmaker() as s:
        assert s.get(CalendarDay, dt.date(2026, 3, 3)).name == "台风停工"
        assert not is_working_day(s, dt.date(2026, 3, 3))
        assert is_working_day(s, dt.date(2026, 3, 7))
