"""Ledgers (台账) on a small fixture whose every cell is known, checked in the xlsx with openpyxl, in the
HTML and in a PDF printed by Chromium, on PostGIS and SpatiaLite.

The fixture, in community 330999001001 (西北社区), March 2026 (times Asia/Shanghai):
  C1 暴露垃圾  hotline  2 Mar 09:00  closed 14:00 the same day, deadline 4 Mar 11:00 → on time 是
  C2 暴露垃圾  hotline  5 Mar 09:00  in progress, deadline 7 Mar 11:00 → 超期未结 (as of the period's end)
  C3 邻里纠纷  hotline 10 Mar 09:00  evaluated 5; history data: parties 张三、李四, outcome 达成和解协议
  C4 邻里纠纷  hotline 12 Mar 09:00  in progress (10-day limit: due 22 Mar → 超期未结); reporter 王五 →
                                    parties 王五, outcome 调解中
  C5 入户走访  patrol   15 Mar 09:00  self-handled, closed
  C6 暴露垃圾  patrol   20 Mar 09:00  dispatched (due 22 Mar 11:00 → 超期未结)
  outside: C7 in the east street (3 Mar), C8 in April
  H0 fire found 20 Feb, still open (deadline 27 Feb) → carried over, 超期未整改
  H1 fire found 3 Mar 10:00, rectified 6 Mar; inspected 18 Mar (the task due 17 Mar), result ok
"""
from __future__ import annotations

import datetime as dt
import shutil

import pytest
from openpyxl import load_workbook

from gridmap.accounts.actor import SYSTEM
from gridmap.analysis.common import AnalysisError
from gridmap.analysis.ledgers import build_ledgers, render_html, write_ledgers, write_xlsx
from gridmap.db import transaction
from gridmap.hazards import inspections as insp
from gridmap.hazards import service as hz
from gridmap.incidents.history import append_event
from gridmap.incidents.intake import case_number
from tests.casehelpers import OTHER_CELL, auth, make_case, make_category, make_token, make_user, make_worker, \
    worker_actor

UTC = dt.timezone.utc
COMMUNITY = "330999001001"
NOW = dt.datetime(2026, 4, 2, 1, 0, tzinfo=UTC)


def local(day: int, hour: int = 9, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour - 8, tzinfo=UTC)


@pytest.fixture
def fixture(sessionmaker, loaded_city):
    with transaction(sessionmaker) as s:
        city = make_category(s, "city", kind="event")
        litter = make_category(s, "city.litter", name="暴露垃圾", parent=city, limit=(2, "natural_days"))
        dispute = make_category(s, "dispute", name="矛盾纠纷", kind="dispute")
        neighbour = make_category(s, "dispute.neighbour", name="邻里纠纷", kind="dispute", parent=dispute,
                                  limit=(10, "natural_days"))
        visit = make_category(s, "visit", name="走访", kind="governance")
        household = make_category(s, "visit.household", name="入户走访", kind="governance", parent=visit)
        w = make_worker(s, "W001", name="张伟")
        w2 = make_worker(s, "W002", cell_code=OTHER_CELL, name="李娜")
        c = {}
        c[1] = make_case(s, "closed", category=litter, worker=w, at=local(2), source="hotline", lon=122.004,
                         lat=30.034)
        c[2] = make_case(s, "in_progress", category=litter, worker=w, at=local(5), source="hotline", lon=122.012,
                         lat=30.038)
        c[3] = make_case(s, "evaluated", category=neighbour, worker=w, at=local(10), source="hotline",
                         satisfaction=5, description="楼上漏水引发邻里纠纷")
        append_event(s, c[3], "record", SYSTEM, comment="登记当事人",
                     data={"parties": ["张三", "李四"], "outcome": "达成和解协议"}, at=local(10, 15))
        c[4] = make_case(s, "in_progress", category=neighbour, worker=w, at=local(12), source="hotline",
                         reporter_name="王五", description="占用公共楼道")
        c[5] = make_case(s, "closed", category=household, worker=w, at=local(15), self_handled=True,
                         source="patrol", description="走访独居老人")
        c[6] = make_case(s, "dispatched", category=litter, worker=w, at=local(20), source="patrol")
        c[7] = make_case(s, "reported", category=litter, cell_code=OTHER_CELL, at=local(3), source="hotline")
        c[8] = make_case(s, "reported", category=litter, at=local(2, month=4), source="hotline")
        for case in c.values():  # numbered as intake numbers them
            case.number = case_number(case.reported_at, case.id)
        s.flush()
        hz.load_types(s)
        h0 = hz.create_hazard(s, {"type": "fire", "title": "电动车楼道充电", "lon": 122.005, "lat": 30.035,
                                  "found_at": "2026-02-20T10:00:00+08:00"}, SYSTEM, now=local(20, 10, month=2))
        h1 = hz.create_hazard(s, {"type": "fire", "title": "消防通道堵塞", "lon": 122.006, "lat": 30.036,
                                  "address": "幸福路1号", "responsible_unit": "幸福物业",
                                  "found_at": "2026-03-03T10:00:00+08:00", "case_ids": [c[1].id]},
                              SYSTEM, now=local(3, 10))
        hz.apply_action(s, h1.id, "rectify", worker_actor(w), comment="已清理", now=local(6))
        insp.create_schedule(s, SYSTEM, hazard_id=h1.id, interval_days=7, start_date="2026-03-03")
        rep = insp.generate_due(s, local(18, 8))
        assert rep.created == 1
        insp.complete_task(s, rep.task_ids[0], worker_actor(w), result="ok", note="消防通道畅通", now=local(18, 10))
        return {"cases": c, "h0": h0, "h1": h1, "w": w, "w2": w2}


def ledgers(sessionmaker, kind="all", area=COMMUNITY):
    with sessionmaker() as s:
        return build_ledgers(s, kind, area=area, date_from="2026-03-01", date_to="2026-03-31", actor=SYSTEM, now=NOW)


def test_case_ledger_rows(sessionmaker, fixture):
    (led,) = ledgers(sessionmaker, "cases")
    c = fixture["cases"]
    assert led.title == "西北社区事件台账" and led.area_path == "测试区 / 西街道 / 西北社区"
    assert [r["number"] for r in led.rows] == [c[i].number for i in range(1, 7)]
    r1, r2 = led.rows[0], led.rows[1]
    assert (r1["reported_at"], r1["source"], r1["category"], r1["handler"], r1["status"]) == \
        (dt.datetime(2026, 3, 2, 9, 0), "12345热线", "暴露垃圾", "张伟", "已结案")
    assert (r1["deadline"], r1["closed_at"], r1["on_time"]) == \
        (dt.datetime(2026, 3, 4, 11, 0), dt.datetime(2026, 3, 2, 14, 0), "是")
    assert (r2["status"], r2["on_time"], r2["closed_at"]) == ("处置中", "超期未结", None)
    assert led.rows[2]["satisfaction"] == 5 and led.rows[4]["source"] == "网格员巡查"
    assert led.summary == {"事件总数": 6, "已办结": 3, "按期办结": 3, "超期未结": 3}  # C2, C4 (due 22 Mar), C6 (due 22 Mar)


def test_dispute_hazard_and_visit_ledgers(sessionmaker, fixture):
    led = {x.kind: x for x in ledgers(sessionmaker)}
    d = led["disputes"].rows
    assert [(r["category"], r["parties"], r["outcome"], r["mediator"]) for r in d] == [
        ("邻里纠纷", "张三、李四", "达成和解协议", "张伟"), ("邻里纠纷", "王五", "调解中", "张伟")]
    assert d[0]["process"] == "03-10 测试：accept；03-10 测试：feedback；03-10 测试：verify_pass"
    assert d[0]["closed_at"] == dt.datetime(2026, 3, 10, 14, 0) and d[0]["satisfaction"] == 5
    h = led["hazards"].rows
    assert [(r["title"], r["note"], r["overdue"], r["status"]) for r in h] == [
        ("电动车楼道充电", "上期结转", "超期未整改", "待整改"), ("消防通道堵塞", None, "否", "已整改")]
    assert h[1]["cases"] == fixture["cases"][1].number and h[1]["responsible_unit"] == "幸福物业"
    assert h[1]["deadline"] == dt.datetime(2026, 3, 10, 10, 0) and h[1]["rectified_at"] == dt.datetime(2026, 3, 6, 9)
    assert led["hazards"].summary == {"隐患总数": 2, "本期新增": 1, "上期结转": 1, "已销号": 0, "超期未整改": 1}
    v = led["visits"].rows
    assert [(r["seq"], r["at"], r["kind"], r["worker"], r["result"]) for r in v] == [
        (1, dt.datetime(2026, 3, 15, 9), "走访", "张伟", "已结案"),
        (2, dt.datetime(2026, 3, 18, 10), "隐患巡检", "张伟", "正常"),
        (3, dt.datetime(2026, 3, 20, 9), "巡查上报", "张伟", "已派遣")]
    assert v[1]["record"] == "消防通道畅通" and v[1]["number"] == fixture["h1"].number
    # the east street's ledgers are empty for these
    east = {x.kind: x for x in ledgers(sessionmaker, area="330999002")}
    assert len(east["cases"].rows) == 1 and east["disputes"].rows == [] and east["hazards"].rows == []


def test_xlsx_layout_and_values(sessionmaker, fixture, tmp_path):
    path = tmp_path / "ledger.xlsx"
    led = ledgers(sessionmaker)
    write_xlsx(led, path)
    wb = load_workbook(path)
    assert wb.sheetnames == ["事件台账", "隐患台账", "矛盾纠纷调解台账", "走访巡查台账"]
    ws = wb["事件台账"]
    assert ws["A1"].value == "西北社区事件台账" and ws["A1"].font.bold and ws["A1"].font.size == 16
    assert "A1:N1" in {str(r) for r in ws.merged_cells.ranges}
    assert ws["A2"].value.startswith("统计区域：测试区 / 西街道 / 西北社区　统计期间：2026-03-01 至 2026-03-31　共 6 条")
    assert [c.value for c in ws[3]] == ["序号", "事件编号", "上报时间", "事件来源", "事件类别", "事件描述", "发生地址",
                                        "所属网格", "处置人", "办理状态", "处置时限", "办结时间", "是否按期", "满意度"]
    assert ws.freeze_panes == "A4" and ws.max_row == 9
    assert ws.column_dimensions["F"].width == 40 and ws.column_dimensions["B"].width == 17
    assert ws["A4"].value == 1 and ws["B4"].value == fixture["cases"][1].number
    assert ws["C4"].value == dt.datetime(2026, 3, 2, 9, 0) and ws["C4"].number_format == "yyyy-mm-dd hh:mm"
    assert (ws["E4"].value, ws["M4"].value, ws["M5"].value, ws["N6"].value) == ("暴露垃圾", "是", "超期未结", 5)
    assert ws.print_title_rows == "$3:$3" and ws.page_setup.orientation == "landscape"
    d = wb["矛盾纠纷调解台账"]
    assert [c.value for c in d[4]][4] == "张三、李四" and d["J4"].value == "达成和解协议" and d.max_row == 5
    assert wb["隐患台账"]["Q4"].value == "上期结转" and wb["走访巡查台账"].max_row == 6


def test_html_has_the_tables_and_a_map(sessionmaker, fixture):
    led = ledgers(sessionmaker)
    with sessionmaker() as s:
        html = render_html(s, led)
    assert html.count("<table>") == 4 and "西北社区矛盾纠纷调解台账" in html and "@page { size: A4 landscape" in html
    assert html.count("<svg") == 1 and html.count('<path d="M') >= 4  # the community's four cells
    assert html.count('r="3.2"') == 2  # the two cases with coordinates (the others have none)
    assert "张三、李四" in html and "2026-03-02 09:00" in html
    assert "<script" not in html


def test_cli_ledger_and_bad_input(app, sessionmaker, fixture, tmp_path):
    from gridmap.analysis.cli import ledger_cmd

    if "ledger" not in app.cli.commands:
        app.cli.add_command(ledger_cmd)
    runner = app.test_cli_runner()
    out = tmp_path / "t.xlsx"
    r = runner.invoke(args=["ledger", "disputes,cases", "--area", COMMUNITY, "--from", "2026-03-01",
                            "--to", "2026-03-31", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "西北社区矛盾纠纷调解台账: 2 rows" in r.output
    assert load_workbook(out).sheetnames == ["矛盾纠纷调解台账", "事件台账"]
    r = runner.invoke(args=["ledger", "taxes", "--area", COMMUNITY, "--from", "2026-03-01", "--to", "2026-03-31",
                            "-o", str(out)])
    assert r.exit_code == 1 and "unknown ledger 'taxes'" in r.output
    r = runner.invoke(args=["ledger", "all", "--area", COMMUNITY, "--from", "2026-03-01", "--to", "2026-03-31",
                            "-o", str(tmp_path / "x.doc")])
    assert r.exit_code == 1 and "use .xlsx, .html or .pdf" in r.output
    with sessionmaker() as s, pytest.raises(AnalysisError, match="no area with code"):
        build_ledgers(s, "all", area="999", date_from="2026-03-01", date_to="2026-03-31")


def test_a_pdf_too_long_to_print_is_refused(sessionmaker, fixture, tmp_path, monkeypatch):
    import gridmap.analysis.ledgers as L

    monkeypatch.setattr(L, "MAX_PDF_ROWS", 5)
    with sessionmaker() as s, pytest.raises(AnalysisError, match="13 rows are too many to print as one PDF"):
        write_ledgers(s, ledgers(sessionmaker), tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()


def test_ledger_api_is_scoped(app, sessionmaker, fixture):
    from gridmap.web.analysis_api import bp

    if "analysis_api" not in app.blueprints:
        app.register_blueprint(bp)
    with transaction(sessionmaker) as s:
        make_user(s, "west", "street", area_code="330999001")
        make_user(s, "east", "street", area_code="330999002")
        tok = {u: make_token(s, u) for u in ("west", "east")}
    client = app.test_client()
    q = f"area={COMMUNITY}&from=2026-03-01&to=2026-03-31"
    r = client.get(f"/api/v1/ledgers/cases?{q}", headers=auth(tok["west"]))
    assert r.status_code == 200 and r.data[:2] == b"PK"
    r = client.get(f"/api/v1/ledgers/all?{q}&format=html", headers=auth(tok["west"]))
    assert r.status_code == 200 and "西北社区隐患台账" in r.get_data(as_text=True)
    assert client.get(f"/api/v1/ledgers/cases?{q}", headers=auth(tok["east"])).status_code == 400
    assert client.get("/api/v1/ledgers/cases?from=2026-03-01", headers=auth(tok["west"])).status_code == 400


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["spatialite"])  # one backend is enough for the printer
def test_pdf_is_printed_by_chromium(sessionmaker, fixture, tmp_path, backend):
    assert shutil.which("chromium"), "needs Debian's chromium: `make test` installs it (tools/sysdeps.sh browser)"
    out = tmp_path / "ledger.pdf"
    with sessionmaker() as s:
        assert write_ledgers(s, ledgers(sessionmaker), out) == "pdf"
    data = out.read_bytes()
    assert data[:5] == b"%PDF-" and len(data) > 10_000
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") >= 4  # a page per ledger at least
