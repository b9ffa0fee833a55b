"""Bulk import of cases from CSV: bad rows named by line, the rest imported, re-runs import nothing
new, batches, CRSs, GBK, dispatch, and the `cases` CLI group. Real PostGIS and SpatiaLite."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from gridmap.boundaries.models import Area
from gridmap.db import transaction
from gridmap.geo import coords
from gridmap.incidents.bulk import ImportFileError, import_cases_csv
from gridmap.incidents.models import Case, CaseEvent
from tests.casehelpers import CELL, OTHER_CELL, make_category, make_worker

HEADER = "external_id,category,description,lon,lat,crs,address,reported_at,reporter_name,reporter_phone,urgent"


def _rows():
    gx, gy = (float(v) for v in coords.from_wgs84(122.05, 30.035, "gcj02"))
    ex, ey = (float(v) for v in coords.from_wgs84(122.01, 30.035, "EPSG:4550"))
    return [
        HEADER,                                                                  # 1
        "e1,test.litter,垃圾一,122.01,30.035,,,,,,",                              # 2 ok
        f"e2,test.litter,垃圾二,{gx},{gy},gcj02,,,,,",                            # 3 ok (GCJ-02)
        "e3,test.nope,垃圾三,122.01,30.035,,,,,,",                                # 4 unknown category
        "e4,test.litter,垃圾四,30.035,122.01,,,,,,",                              # 5 swapped
        "e5,test.litter,垃圾五,122.01,30.035,,,2026-03-02 09:00,,,",              # 6 ok, local time
        "e6,test.litter,垃圾六,abc,30.035,,,,,,",                                 # 7 not a number
        "e7,test.litter,垃圾七,121.0,30.0,,,,,,",                                 # 8 outside the city
        "e1,test.litter,重复,122.01,30.035,,,,,,",                                # 9 repeats line 2
        "e8,test.litter,,122.01,30.035,,,,,,",                                    # 10 no description
        'e9,test.litter,"第一行\n第二行",122.01,30.035,,,,,,',                    # 11-12 ok, two lines
        "e10,test.litter,垃圾十,122.01,30.035,,,yesterday,,,",                    # 13 bad time
        f"e11,test.litter,垃圾十一,{ex},{ey},EPSG:4550,,,,,",                      # 14 ok (Gauss-Krüger)
        "e12,test.litter,垃圾十二,,,,不存在的路1号,,,,",                           # 15 ok, manual queue
        "e13,test.litter,垃圾十三,122.01,30.035,,,,,,maybe",                      # 16 bad urgent
        "e14,test.litter,垃圾十四,122.01,30.035,mars,,,,,",                       # 17 bad crs
        "",                                                                      # 18 blank
        "e15,test.litter,垃圾十五,122.01,30.035,,,,李四,13812341234,是",           # 19 ok
    ]


GOOD = {"e1", "e2", "e5", "e9", "e11", "e12", "e15"}
BAD_LINES = [4, 5, 7, 8, 9, 10, 13, 16, 17]


@pytest.fixture
def world(sessionmaker, loaded_city):
    with transaction(sessionmaker) as s:
        make_category(s, "test.litter", name="暴露垃圾", limit=(2, "natural_days"))
        w1 = make_worker(s, "W1", cell_code=CELL, name="张伟")
        w3 = make_worker(s, "W3", cell_code=OTHER_CELL, name="王芳")
        return {"w1": w1.id, "w3": w3.id}


@pytest.fixture
def csv_path(tmp_path):
    p = tmp_path / "cases.csv"
    p.write_text("\n".join(_rows()) + "\n", encoding="utf-8")
    return p


def test_bad_rows_are_named_and_the_rest_imported_then_rerun_imports_nothing(sessionmaker, world, csv_path):
    rep = import_cases_csv(sessionmaker, csv_path, batch=3)
    assert (rep["rows"], rep["imported"], rep["skipped"], rep["bad"], rep["queued"]) == (16, 7, 0, 9, 1)
    assert [line for line, _ in sorted(rep["bad_rows"])] == BAD_LINES
    why = dict(rep["bad_rows"])
    assert "unknown category 'test.nope'" in why[4] and "swapped" in why[5] and "number" in why[7]
    assert "outside every cell" in why[8] and "repeats line 2" in why[9] and "description" in why[10]
    assert "reported_at" in why[13] and "urgent" in why[16] and "crs" in why[17]
    with sessionmaker() as s:
        cases = {c.external_id: c for c in s.scalars(select(Case))}
        assert set(cases) == GOOD
        assert s.scalar(select(func.count(CaseEvent.id))) == 7
        code = lambda i: s.get(Area, i).code if i else None  # noqa: E731
        assert code(cases["e1"].cell_id) == CELL and cases["e1"].assignee_worker_id == world["w1"]
        assert cases["e1"].route_reason == f"cell {CELL}: primary worker W1 张伟"
        assert code(cases["e2"].cell_id) == OTHER_CELL and cases["e2"].assignee_worker_id == world["w3"]
        assert cases["e2"].input_crs == "gcj02" and abs(cases["e2"].lon - 122.05) < 1e-6
        assert code(cases["e11"].cell_id) == CELL and cases["e11"].input_crs == "EPSG:4550"
        assert code(cases["e11"].community_id) == CELL[:12] and code(cases["e11"].district_id) == CELL[:6]
        assert cases["e5"].reported_at == dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.timezone.utc)
        assert cases["e5"].number == f"20260302-{cases['e5'].id:06d}"
        assert cases["e9"].description == "第一行\n第二行"
        assert cases["e12"].placement == "queue" and cases["e12"].assignee_level == "unroutable"
        assert cases["e15"].urgent and cases["e15"].reporter_phone == "13812341234"
        assert {c.status for c in cases.values()} == {"reported"} and all(c.source == "import" for c in cases.values())
        assert all(c.number for c in cases.values())
        ev = s.scalar(select(CaseEvent).where(CaseEvent.case_id == cases["e1"].id))
        assert ev.action == "report" and ev.seq == 1 and json.loads(ev.data)["line"] == 2
        if s.get_bind().dialect.name == "postgresql":  # the geometry column is filled too
            assert s.scalar(select(func.ST_AsText(Case.geom)).where(Case.external_id == "e1")) == "POINT(122.01 30.035)"
    again = import_cases_csv(sessionmaker, csv_path, batch=5000)
    assert (again["imported"], again["skipped"], again["bad"]) == (0, 7, 9)
    with sessionmaker() as s:
        assert s.scalar(select(func.count(Case.id))) == 7
        assert s.scalar(select(func.count(CaseEvent.id))) == 7
    # another source is another key space
    assert import_cases_csv(sessionmaker, csv_path, source="hotline")["imported"] == 7


def test_dispatch_files_and_dispatches_routed_cases(sessionmaker, world, csv_path):
    rep = import_cases_csv(sessionmaker, csv_path, dispatch=True)
    assert rep["imported"] == 7 and rep["dispatched"] == 6
    with sessionmaker() as s:
        by = {c.external_id: c for c in s.scalars(select(Case))}
        assert by["e12"].status == "reported"
        assert all(by[e].status == "dispatched" and by[e].deadline_at is not None for e in GOOD - {"e12"})
        acts = [e.action for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == by["e1"].id)
                                             .order_by(CaseEvent.seq))]
        assert acts == ["report", "file", "dispatch"]


def test_gbk_file(sessionmaker, world, tmp_path):
    p = tmp_path / "gbk.csv"
    p.write_bytes("external_id,category,description,lon,lat\ng1,test.litter,井盖缺失请尽快处理,122.01,30.035\n"
                  .encode("gbk"))
    rep = import_cases_csv(sessionmaker, p)
    assert rep["imported"] == 1
    with sessionmaker() as s:
        assert s.scalar(select(Case.description)) == "井盖缺失请尽快处理"


def test_file_level_errors(sessionmaker, world, tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("external_id,category,lon,lat\n1,test.litter,122.01,30.035\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="missing column.*description"):
        import_cases_csv(sessionmaker, p)
    p.write_text("external_id,category,description\n1,test.litter,x\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="lon,lat or address"):
        import_cases_csv(sessionmaker, p)
    with pytest.raises(ImportFileError, match="unknown source"):
        import_cases_csv(sessionmaker, p, source="fax")
    with pytest.raises(ImportFileError):
        import_cases_csv(sessionmaker, tmp_path / "missing.csv")
    with sessionmaker() as s:
        assert s.scalar(select(func.count(Case.id))) == 0


def test_cli_import_and_list(runner, world, csv_path, sessionmaker):
    from gridmap.incidents.cli_cases import cases_group

    r = runner.invoke(cases_group, ["import", str(csv_path), "--batch", "4"])
    assert r.exit_code == 0, r.output
    assert "16 rows: imported 7, skipped 0 (imported before), bad 9; 1 waiting for manual placement" in r.output
    assert "bad lines: 4, 5, 7, 8, 9, 10, 13, 16, 17" in r.output
    assert "line 4: unknown category 'test.nope'" in r.output
    r = runner.invoke(cases_group, ["import", str(csv_path)])
    assert "imported 0, skipped 7" in r.output
    r = runner.invoke(cases_group, ["list", "--cell", OTHER_CELL])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if ln[:8].isdigit()]
    assert len(lines) == 1 and OTHER_CELL in lines[0] and "王芳" in lines[0]
    r = runner.invoke(cases_group, ["list", "--status", "reported", "--json", "--limit", "200"])
    assert len([ln for ln in r.output.splitlines() if ln.startswith("{")]) == 7
    r = runner.invoke(cases_group, ["list", "--cell", "nope"])
    assert r.exit_code == 2 and "no cell with code" in r.output
    r = runner.invoke(cases_group, ["import", str(csv_path.parent / "missing.csv")])
    assert r.exit_code == 1 and "missing.csv" in r.output
