"""The worker roster: CSV import (roles, cells, primaries and backups, bad rows, re-import, GBK),
absences, the `workers` commands."""
import datetime as dt

import pytest
from sqlalchemy import func, select

from gridmap.assign.calendar import TIMEZONE
from gridmap.assign.models import Absence, Department, Responsibility, Worker
from gridmap.assign.router import responsible_worker
from gridmap.assign.service import (AssignError, CsvFileError, add_absence, import_workers_csv, list_workers,
                                    upsert_department)
from gridmap.boundaries.models import Area
from gridmap.db import transaction

TODAY = dt.date(2026, 3, 2)

ROSTER = """code,name,phone,role,employment,area_code,responsibility,valid_from
W001,张三,13800000001,worker,full_time,330999001001001,,2026-01-01
W002,李四,13800000002,网格员,,330999001001001,,2026-01-01
W003,王五,,兼职网格员,,330999001001002,,2026-01-01
W004,赵六,,worker,part_time,330999001001002,primary,2026-01-01
W005,孙七,,worker,full_time,330999001001003;330999001001004,,
W100,钱八,13900000100,网格长,,330999001001,,
W200,周九,,street,,330999001,,
W300,吴十,,district,,330999,,
W900,坏一,,worker,,330999001001,,
W901,坏二,,worker,,339999999999999,,
W902,,,worker,,330999001001001,,
W903,坏四,,chief,,330999001001001,,
W904,坏五,,head,,330999001001001,,2026-13-01
W001,重复,,worker,,330999001001002,,
W400,部门甲,,department,,,,
"""


def write(tmp_path, text, name="roster.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def resp(s, code, *, open_only=True):
    q = (select(Area.code, Responsibility.role, Responsibility.valid_from, Responsibility.valid_to)
         .join(Worker, Worker.id == Responsibility.worker_id).join(Area, Area.id == Responsibility.cell_id)
         .where(Worker.code == code).order_by(Responsibility.valid_from, Area.code))
    if open_only:
        q = q.where(Responsibility.valid_to.is_(None))
    return [tuple(r) for r in s.execute(q)]


def worker(s, code):
    return s.scalars(select(Worker).where(Worker.code == code)).one()


@pytest.fixture
def roster(sessionmaker, loaded_city, tmp_path):
    with transaction(sessionmaker) as s:
        res = import_workers_csv(s, write(tmp_path, ROSTER), today=TODAY)
    return res


def test_import_creates_workers_and_responsibilities(sessionmaker, roster):
    assert roster.created == ["W001", "W002", "W003", "W004", "W005", "W100", "W200", "W300"]
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Worker)) == 8
        w1 = worker(s, "W001")
        assert (w1.name, w1.phone, w1.role, w1.employment) == ("张三", "13800000001", "worker", "full_time")
        assert s.get(Area, w1.area_id).code == "330999001001"  # a grid worker's area: the cell's community
        # the first full-time worker of a cell is primary, the next one backup
        assert resp(s, "W001") == [("330999001001001", "primary", dt.date(2026, 1, 1), None)]
        assert worker(s, "W002").employment == "full_time"
        assert resp(s, "W002") == [("330999001001001", "backup", dt.date(2026, 1, 1), None)]
        # part-time: backup even when first, unless the file says primary
        assert worker(s, "W003").employment == "part_time"
        assert resp(s, "W003") == [("330999001001002", "backup", dt.date(2026, 1, 1), None)]
        assert resp(s, "W004") == [("330999001001002", "primary", dt.date(2026, 1, 1), None)]
        # several cells; valid_from defaults to today
        assert resp(s, "W005") == [("330999001001003", "primary", TODAY, None), ("330999001001004", "primary", TODAY, None)]
        for code, level, area in [("W100", "head", "330999001001"), ("W200", "street", "330999001"),
                                  ("W300", "district", "330999")]:
            w = worker(s, code)
            assert (w.role, s.get(Area, w.area_id).code) == (level, area)
            assert resp(s, code) == []
        at = dt.datetime(2026, 3, 2, 10, tzinfo=TIMEZONE)
        assert responsible_worker(s, s.scalar(select(Area.id).where(Area.code == "330999001001001")), at)[0].code == "W001"


def test_bad_rows_are_reported_with_line_numbers(roster):
    bad = {b.line: b.message for b in roster.bad}
    assert sorted(bad) == [10, 11, 12, 13, 14, 15, 16]
    assert bad[10] == "area 330999001001 is a community; a grid worker 网格员 needs a cell code"
    assert bad[11] == "unknown area code 339999999999999"
    assert bad[12] == "missing name"
    assert bad[13].startswith("unknown role 'chief'")
    assert "area 330999001001001 is a cell; a grid head 网格长 needs a community code" in bad[14]
    assert "valid_from: '2026-13-01' is not a valid date" in bad[14]
    assert bad[15].startswith("worker W001 already appears on line 2")
    assert bad[16] == "role department needs a department_code"
    assert str(roster.bad[0]).startswith("line 10: area 330999001001")
    assert roster.imported == 8 and not roster.ok


def test_reimport_is_idempotent(sessionmaker, roster, tmp_path):
    with transaction(sessionmaker) as s:
        again = import_workers_csv(s, write(tmp_path, ROSTER, "again.csv"), today=TODAY + dt.timedelta(days=7))
    assert again.created == [] and again.updated == []
    assert again.unchanged == roster.created
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Worker)) == 8
        assert s.scalar(select(func.count()).select_from(Responsibility)) == 6
        assert resp(s, "W005") == [("330999001001003", "primary", TODAY, None), ("330999001001004", "primary", TODAY, None)]


def test_changed_cell_closes_the_old_responsibility_and_opens_a_new_one(sessionmaker, roster, tmp_path):
    moved = ("code,name,phone,role,employment,area_code\n"
             "W001,张三,13900000001,worker,full_time,330999001002001\n"  # moved to another community's cell
             "W002,李四,13800000002,worker,full_time,330999001001001\n"
             "W006,郑十一,,worker,full_time,330999001001001\n")
    later = dt.date(2026, 4, 1)
    with transaction(sessionmaker) as s:
        res = import_workers_csv(s, write(tmp_path, moved, "moved.csv"), today=later)
    assert (res.created, res.updated, res.unchanged, res.bad) == (["W006"], ["W001"], ["W002"], [])
    with sessionmaker() as s:
        assert resp(s, "W001", open_only=False) == [
            ("330999001001001", "primary", dt.date(2026, 1, 1), later),
            ("330999001002001", "primary", later, None)]
        w1 = worker(s, "W001")
        assert w1.phone == "13900000001" and s.get(Area, w1.area_id).code == "330999001002"
        # W002 keeps being a backup; W006 is new, full-time, and the cell has no primary left: primary
        assert resp(s, "W002") == [("330999001001001", "backup", dt.date(2026, 1, 1), None)]
        assert resp(s, "W006") == [("330999001001001", "primary", later, None)]
        cell = s.scalar(select(Area.id).where(Area.code == "330999001001001"))
        before = dt.datetime(2026, 3, 31, 23, 0, tzinfo=TIMEZONE)
        after = dt.datetime(2026, 4, 1, 0, 30, tzinfo=TIMEZONE)
        assert responsible_worker(s, cell, before)[0].code == "W001"
        assert responsible_worker(s, cell, after)[0].code == "W006"


def test_role_change_and_explicit_responsibility(sessionmaker, roster, tmp_path):
    text = ("code,name,role,area_code,responsibility,valid_from\n"
            "W002,李四,worker,330999001001001,primary,2026-03-10\n"   # backup → primary from 10 March
            "W001,张三,网格长,330999001001,,2026-03-10\n")              # promoted: no cell any more
    with transaction(sessionmaker) as s:
        res = import_workers_csv(s, write(tmp_path, text, "change.csv"), today=TODAY)
    assert res.updated == ["W002", "W001"] and res.bad == []
    with sessionmaker() as s:
        assert resp(s, "W002", open_only=False) == [
            ("330999001001001", "backup", dt.date(2026, 1, 1), dt.date(2026, 3, 10)),
            ("330999001001001", "primary", dt.date(2026, 3, 10), None)]
        assert resp(s, "W001", open_only=False) == [
            ("330999001001001", "primary", dt.date(2026, 1, 1), dt.date(2026, 3, 10))]
        w1 = worker(s, "W001")
        assert w1.role == "head" and s.get(Area, w1.area_id).code == "330999001001"


def test_gbk_file_with_chinese_headers_and_roles(sessionmaker, loaded_city, tmp_path):
    with transaction(sessionmaker) as s:
        upsert_department(s, "LABOUR", "劳动监察大队", "330999")
    text = ("工号,姓名,手机,角色,专兼职,网格编码,责任,部门编码\n"
            "G01,陈一,13700000001,专职网格员,,330999002001001,,\n"
            "G02,林二,,兼职网格员,兼职,330999002001001,B角,\n"
            "G03,黄三,,部门人员,,,,LABOUR\n"
            "G04,何四,,专职网格员,兼职,330999002001002,,\n")
    with transaction(sessionmaker) as s:
        res = import_workers_csv(s, write(tmp_path, text, "gbk.csv", "gbk"), today=TODAY)
    assert res.created == ["G01", "G02", "G03"]
    assert [(b.line, b.message) for b in res.bad] == [(5, "role 专职网格员 means full_time but employment says part_time")]
    with sessionmaker() as s:
        assert worker(s, "G01").name == "陈一"
        assert resp(s, "G01") == [("330999002001001", "primary", TODAY, None)]
        assert resp(s, "G02") == [("330999002001001", "backup", TODAY, None)]
        g3 = worker(s, "G03")
        assert g3.role == "department" and s.get(Department, g3.department_id).code == "LABOUR"


def test_unreadable_files_raise(sessionmaker, loaded_city, tmp_path):
    with transaction(sessionmaker) as s:
        with pytest.raises(CsvFileError, match="missing column"):
            import_workers_csv(s, write(tmp_path, "code,name\nW1,x\n", "cols.csv"))
        with pytest.raises(CsvFileError, match="neither UTF-8 nor GBK"):
            p = tmp_path / "bin.csv"
            p.write_bytes(b"code,name,role,area_code\n\xff\xfe\xfa\n")
            import_workers_csv(s, p)


def test_add_absence_checks(sessionmaker, roster):
    start = dt.datetime(2026, 3, 3, 8, 0, tzinfo=TIMEZONE)
    with transaction(sessionmaker) as s:
        with pytest.raises(AssignError, match="is not after start"):
            add_absence(s, "W001", start, start)
        with pytest.raises(AssignError, match="own substitute"):
            add_absence(s, "W001", start, start + dt.timedelta(days=1), substitute_code="W001")
        with pytest.raises(AssignError, match="unknown worker code W999"):
            add_absence(s, "W999", start, start + dt.timedelta(days=1))
        with pytest.raises(AssignError, match="unknown substitute worker code W998"):
            add_absence(s, "W001", start, start + dt.timedelta(days=1), substitute_code="W998")
        with pytest.raises(ValueError, match="naive"):
            add_absence(s, "W001", dt.datetime(2026, 3, 3), start)
        a = add_absence(s, "W001", dt.date(2026, 3, 3), dt.date(2026, 3, 4), substitute_code="W005", reason="年假")
        assert a.start == dt.datetime(2026, 3, 3, tzinfo=TIMEZONE)
        assert a.end == dt.datetime(2026, 3, 5, tzinfo=TIMEZONE)  # the end date is included
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Absence)) == 1
        cell = s.scalar(select(Area.id).where(Area.code == "330999001001001"))
        got, reason = responsible_worker(s, cell, dt.datetime(2026, 3, 4, 23, 59, tzinfo=TIMEZONE))
        assert got.code == "W005" and "primary W001 on leave, substitute W005 孙七" in reason
        assert responsible_worker(s, cell, dt.datetime(2026, 3, 5, 0, 0, tzinfo=TIMEZONE))[0].code == "W001"


def test_list_workers(sessionmaker, roster):
    at = dt.datetime(2026, 3, 3, 10, tzinfo=TIMEZONE)
    with sessionmaker() as s:
        rows = list_workers(s, at=at)
        assert [r["code"] for r in rows] == roster.created
        assert rows[4]["cells"] == [{"code": "330999001001003", "role": "primary"},
                                    {"code": "330999001001004", "role": "primary"}]
        cell = list_workers(s, cell_code="330999001001001", at=at)
        assert [(r["code"], r["cells"][0]["role"]) for r in cell] == [("W001", "primary"), ("W002", "backup")]
        with pytest.raises(AssignError, match="not a cell"):
            list_workers(s, cell_code="330999001001")


def test_workers_commands(sessionmaker, loaded_city, app, tmp_path):
    from gridmap.assign.cli import calendar_group, workers_group

    runner = app.test_cli_runner()
    res = runner.invoke(workers_group, ["import", str(write(tmp_path, ROSTER))])
    assert res.exit_code == 0, res.output
    assert "line 11: unknown area code 339999999999999" in res.output
    assert "8 created, 0 updated, 0 unchanged, 7 bad rows" in res.output
    only_bad = "code,name,role,area_code\nX1,,worker,330999001001001\nX2,某,worker,nope\n"
    res = runner.invoke(workers_group, ["import", str(write(tmp_path, only_bad, "bad.csv"))])
    assert res.exit_code == 1
    assert "line 2: missing name" in res.output and "line 3: unknown area code nope" in res.output
    res = runner.invoke(workers_group, ["import", str(write(tmp_path, "code,name\n", "cols.csv"))])
    assert res.exit_code == 1 and "missing column(s) role, area_code" in res.output
    res = runner.invoke(workers_group, ["list", "--cell", "330999001001001"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("W001\t张三\tworker") and lines[1].startswith("W002\t李四")
    # the responsibilities began on 2026-01-01, so today W001 is on duty
    assert "on duty now: cell 330999001001001: primary worker W001 张三" in res.output
    res = runner.invoke(workers_group, ["list", "--cell", "nope"])
    assert res.exit_code == 1 and "unknown area code nope" in res.output
    from pathlib import Path

    cal = Path(__file__).resolve().parent.parent / "data" / "calendar" / "cn-2026.csv"
    res = runner.invoke(calendar_group, ["import", str(cal)])
    assert res.exit_code == 0 and "39 created, 0 updated, 0 unchanged, 0 bad rows" in res.output
