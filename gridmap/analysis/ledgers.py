"""Generated ledgers (台账) of an area and a period, as Excel, printable HTML and PDF.

Owns: what goes into each ledger, and writing it.
- 事件台账 ``cases``: every case reported in the period inside the area (any status, rejected too).
- 隐患台账 ``hazards``: hazards found in the period, plus hazards found earlier and not closed when
  the period began (marked 上期结转, carried over).
- 矛盾纠纷调解台账 ``disputes``: cases of dispute categories (kind ``dispute``) reported in the period.
  Parties (当事人) and outcome (调解结果) come from the history: the latest ``data.parties`` /
  ``data.outcome`` given with any action (the reporter when no parties were recorded); the mediation
  process is the comments of accept / feedback / self-handle actions.
- 走访巡查台账 ``visits``: cases reported by patrol (source ``patrol``) or of visit categories
  (``visit…``), plus the inspection tasks done in the period.
Rows are read with one query per ledger (and one for the dispute histories), never one per case.

Formats: ``write_xlsx`` (openpyxl: one sheet per ledger; a title row, a subtitle with area,
period and time of making, headers in Chinese, frozen header, column widths, dates as real Excel
dates, printed landscape fitted to the page width with the header repeated); ``render_html`` (a
Jinja template with print CSS, an inline SVG map of the area's cells with the cases and hazards);
``write_pdf``: that HTML printed by headless Chromium (``chromium --headless --print-to-pdf``), the
browser the test suite already uses. WeasyPrint would need Pango and friends from the system and
a pip build; Chromium is one Debian package and renders the CJK fonts the same as on screen.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import shapely
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from gridmap.accounts.actor import Actor
from gridmap.analysis.common import CASE_AREA_COLUMN, AnalysisError, Period, period, resolve_area
from gridmap.assign.models import Worker
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.hazards.models import (GRADE_ZH, STATUS_ZH, TASK_RESULT_ZH, Hazard, HazardCase, HazardType,
                                    InspectionSchedule, InspectionTask)
from gridmap.incidents.categories import KIND_ZH
from gridmap.incidents.models import Case, CaseEvent, Category
from gridmap.textio import set_xlsx_cell

KINDS = {"cases": "事件台账", "hazards": "隐患台账", "disputes": "矛盾纠纷调解台账", "visits": "走访巡查台账"}
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "ledgers"
CASE_STATUS_ZH = {"reported": "已上报", "filed": "已立案", "rejected": "不予立案", "dispatched": "已派遣",
                  "in_progress": "处置中", "handled": "已处置", "verifying": "核查中", "closed": "已结案",
                  "evaluated": "已评价", "parked": "挂账"}
SOURCE_ZH = {"patrol": "网格员巡查", "resident": "群众上报", "hotline": "12345热线", "video": "视频发现",
             "upper": "上级交办", "department": "部门推送", "open311": "在线上报", "import": "批量导入"}
CLOSED = ("closed", "evaluated")
MAX_ROWS = 200_000
#: a PDF is for printing: past this many rows Chromium takes minutes or gives up (a street's year of
#: cases, ~20,000 rows, made it exit without a file); .xlsx and .html have no such limit
MAX_PDF_ROWS = 5_000


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    width: float = 12  # Excel character widths
    kind: str = "text"  # text, code (never wrapped), datetime, date, int


@dataclass
class Ledger:
    kind: str
    title: str
    area: Area
    area_path: str
    period: Period
    columns: list[Column]
    rows: list[dict]
    generated_at: dt.datetime
    summary: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return KINDS[self.kind]

    def subtitle(self) -> str:
        made = self.generated_at.astimezone(ZoneInfo(self.period.tz)).strftime("%Y-%m-%d %H:%M")
        return (f"统计区域：{self.area_path}　统计期间：{self.period.label()}　共 {len(self.rows)} 条　"
                f"制表时间：{made}")


def _local(t: dt.datetime | None, tz: str) -> dt.datetime | None:
    """A naive local datetime (what Excel and the page show)."""
    return None if t is None else t.astimezone(ZoneInfo(tz)).replace(tzinfo=None, second=0, microsecond=0)


def area_path(session: Session, area: Area) -> str:
    names, a = [], area
    while a is not None:
        names.append(a.name)
        a = a.parent
    return " / ".join(reversed(names))


def _cell_of(area: Area):
    return CASE_AREA_COLUMN[area.level]


# ----------------------------------------------------------------------------- the four ledgers

CASE_COLUMNS = [
    Column("seq", "序号", 6, "int"), Column("number", "事件编号", 17, "code"), Column("reported_at", "上报时间", 17, "datetime"),
    Column("source", "事件来源", 11), Column("category", "事件类别", 16), Column("description", "事件描述", 40),
    Column("address", "发生地址", 22), Column("cell", "所属网格", 22), Column("handler", "处置人", 10),
    Column("status", "办理状态", 10), Column("deadline", "处置时限", 17, "datetime"),
    Column("closed_at", "办结时间", 17, "datetime"), Column("on_time", "是否按期", 10),
    Column("satisfaction", "满意度", 8, "int"),
]


def _case_rows(session: Session, where: list, per: Period, now: dt.datetime) -> list:
    cell = aliased(Area)
    w = aliased(Worker)
    return session.execute(
        select(Case, Category.code.label("cat_code"), Category.name.label("cat_name"),
               Category.kind.label("cat_kind"), Category.std_code.label("cat_std"),
               cell.code.label("cell_code"), cell.name.label("cell_name"), w.name.label("worker_name"))
        .join(Category, Category.id == Case.category_id)
        .outerjoin(cell, cell.id == Case.cell_id)
        .outerjoin(w, w.id == func.coalesce(Case.handled_by_worker_id, Case.assignee_worker_id))
        .where(*where).order_by(Case.reported_at, Case.id).limit(MAX_ROWS)).all()


def _category_label(r) -> str:
    """The category's name, with its standard class code where it has one: 垃圾满溢（事件 0151）."""
    if not r.cat_std:
        return r.cat_name
    return f"{r.cat_name}（{KIND_ZH.get(r.cat_kind, r.cat_kind)} {r.cat_std}）"


def _no(c: Case) -> str:
    """A case's number (cases written before numbering show their id)."""
    return c.number or f"#{c.id}"


def _on_time(c: Case, at: dt.datetime) -> str:
    if c.closed_on_time is True:
        return "是"
    if c.closed_on_time is False:
        return "否"
    if c.status in ("rejected",):
        return "—"
    if c.deadline_at is not None and c.deadline_at < at and c.status not in CLOSED:
        return "超期未结"
    return "未到期" if c.deadline_at is not None else "—"


def _cases_ledger(session, area, per, actor, now) -> tuple[list[Column], list[dict], dict]:
    where = _case_where(session, area, per, actor)
    at = min(now, per.end)
    rows = []
    for i, r in enumerate(_case_rows(session, where, per, now), start=1):
        c = r.Case
        rows.append({"seq": i, "number": _no(c), "reported_at": _local(c.reported_at, per.tz),
                     "source": SOURCE_ZH.get(c.source, c.source), "category": _category_label(r),
                     "description": (c.title + "：" if c.title else "") + (c.description or ""),
                     "address": c.address, "cell": f"{r.cell_name}" if r.cell_code else "未定位",
                     "handler": r.worker_name, "status": CASE_STATUS_ZH.get(c.status, c.status),
                     "deadline": _local(c.deadline_at, per.tz), "closed_at": _local(c.closed_at, per.tz),
                     "on_time": _on_time(c, at), "satisfaction": c.satisfaction,
                     "_lon": c.lon, "_lat": c.lat, "_closed": c.status in CLOSED})
    summary = {"事件总数": len(rows), "已办结": sum(r["_closed"] for r in rows),
               "按期办结": sum(r["on_time"] == "是" for r in rows), "超期未结": sum(r["on_time"] == "超期未结" for r in rows)}
    return CASE_COLUMNS, rows, summary


def _case_where(session: Session, area: Area, per: Period, actor: Actor | None) -> list:
    from gridmap.accounts.scope import case_filter

    where = [Case.reported_at >= per.start, Case.reported_at < per.end, _cell_of(area) == area.id]
    if actor is not None:
        where.insert(0, case_filter(session, actor))
    return where


HAZARD_COLUMNS = [
    Column("seq", "序号", 6, "int"), Column("number", "隐患编号", 18, "code"), Column("found_at", "发现时间", 17, "datetime"),
    Column("type", "隐患类型", 10), Column("grade", "隐患等级", 9), Column("title", "隐患名称", 22),
    Column("place", "位置", 22), Column("cell", "所属网格", 20), Column("responsible_unit", "责任单位", 18),
    Column("worker", "责任网格员", 10), Column("deadline", "整改期限", 17, "datetime"),
    Column("rectified_at", "整改完成时间", 17, "datetime"), Column("verified_at", "核查时间", 17, "datetime"),
    Column("status", "当前状态", 12), Column("overdue", "是否超期", 10), Column("cases", "关联事件", 18),
    Column("note", "备注", 10),
]


def _hazards_ledger(session, area, per, actor, now):
    from gridmap.hazards.service import _LEVEL_COLUMN, hazard_filter

    col = _LEVEL_COLUMN[area.level]
    carried = and_(Hazard.found_at < per.start, or_(Hazard.closed_at.is_(None), Hazard.closed_at >= per.start))
    where = [col == area.id, or_(and_(Hazard.found_at >= per.start, Hazard.found_at < per.end), carried)]
    if actor is not None:
        where.insert(0, hazard_filter(session, actor))
    return _hazard_ledger_rows(session, where, carried, per, now)


def hazard_selection_ledger(session: Session, actor: Actor, filters: dict, *, now: dt.datetime | None = None
                            ) -> Ledger:
    """The 隐患台账 of a register page's selection (its filters, ``hazards.service.filter_clauses``):
    every hazard the page lists, in the same columns as the area ledger. The period shown is the
    ``from``/``to`` filter, else the span of the hazards' found dates."""
    from sqlalchemy import false

    from gridmap.hazards.service import HazardError, filter_clauses

    now = now or utcnow()
    try:
        where = filter_clauses(session, actor, filters, now=now)
    except HazardError as e:
        raise AnalysisError(e.field, e.message) from None
    lo, hi = session.execute(select(func.min(Hazard.found_at), func.max(Hazard.found_at)).where(*where)).one()
    tz = ZoneInfo("Asia/Shanghai")
    d0 = filters.get("from") or (lo.astimezone(tz).date() if lo else now.astimezone(tz).date())
    d1 = filters.get("to") or (hi.astimezone(tz).date() if hi else now.astimezone(tz).date())
    per = period(d0, d1)
    a = resolve_area(session, filters.get("area")) if filters.get("area") else (
        session.get(Area, actor.area_id) if actor.area_id else None)
    cols, rows, summary = _hazard_ledger_rows(session, where, false(), per, now)
    name = a.name if a is not None else "全部辖区"
    path = area_path(session, a) if a is not None else name
    return Ledger(kind="hazards", title=f"{name}{KINDS['hazards']}（筛选结果）", area=a, area_path=path, period=per,
                  columns=cols, rows=rows, generated_at=now, summary=summary)


def _hazard_ledger_rows(session, where, carried, per, now):
    cell = aliased(Area)
    res = session.execute(
        select(Hazard, HazardType.name.label("type_name"), cell.name.label("cell_name"), Worker.name.label("worker"),
               carried.label("carried"), func.ST_AsBinary(Hazard.geom).label("wkb"))
        .join(HazardType, HazardType.id == Hazard.type_id)
        .outerjoin(cell, cell.id == Hazard.cell_id).outerjoin(Worker, Worker.id == Hazard.responsible_worker_id)
        .where(*where).order_by(Hazard.found_at, Hazard.id).limit(MAX_ROWS)).all()
    ids = [r.Hazard.id for r in res]
    links: dict[int, list[str]] = {}
    if ids:
        for hid, num, cid in session.execute(select(HazardCase.hazard_id, Case.number, Case.id)
                                             .join(Case, Case.id == HazardCase.case_id)
                                             .where(HazardCase.hazard_id.in_(ids)).order_by(Case.id)):
            links.setdefault(hid, []).append(num or f"#{cid}")
    at = min(now, per.end)
    rows = []
    for i, r in enumerate(res, start=1):
        h = r.Hazard
        if h.status == "open" and h.rectify_deadline is not None and h.rectify_deadline < at:
            overdue = "超期未整改"
        elif h.rectified_at is not None and h.rectify_deadline is not None and h.rectified_at > h.rectify_deadline:
            overdue = "逾期整改"
        else:
            overdue = "否"
        rows.append({"seq": i, "number": h.number, "found_at": _local(h.found_at, per.tz), "type": r.type_name,
                     "grade": GRADE_ZH[h.grade], "title": h.title,
                     "place": h.address or ("区域" if h.geom_kind == "area" else f"{h.lon:.5f}, {h.lat:.5f}"),
                     "cell": r.cell_name, "responsible_unit": h.responsible_unit, "worker": r.worker,
                     "deadline": _local(h.rectify_deadline, per.tz), "rectified_at": _local(h.rectified_at, per.tz),
                     "verified_at": _local(h.verified_at, per.tz), "status": STATUS_ZH[h.status],
                     "overdue": overdue, "cases": "、".join(links.get(h.id, [])) or None,
                     "note": "上期结转" if r.carried else None,
                     "_geom": shapely.from_wkb(bytes(r.wkb)) if r.wkb is not None else None})
    summary = {"隐患总数": len(rows), "本期新增": sum(r["note"] is None for r in rows),
               "上期结转": sum(r["note"] == "上期结转" for r in rows),
               "已销号": sum(r["status"] == STATUS_ZH["closed"] for r in rows),
               "超期未整改": sum(r["overdue"] == "超期未整改" for r in rows)}
    return HAZARD_COLUMNS, rows, summary


DISPUTE_COLUMNS = [
    Column("seq", "序号", 6, "int"), Column("number", "编号", 17, "code"), Column("reported_at", "受理时间", 17, "datetime"),
    Column("category", "纠纷类型", 14), Column("parties", "当事人", 18), Column("description", "纠纷简要情况", 36),
    Column("cell", "所属网格", 20), Column("mediator", "调解人", 10), Column("process", "调解经过", 32),
    Column("outcome", "调解结果", 16), Column("closed_at", "办结时间", 17, "datetime"),
    Column("satisfaction", "回访满意度", 10, "int"),
]
PROCESS_ACTIONS = ("accept", "feedback", "self_handle", "verify_fail", "verify_pass")


def _parties_text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, list):
        return "、".join(str(p.get("name", p)) if isinstance(p, dict) else str(p) for p in v)
    return str(v)


def _disputes_ledger(session, area, per, actor, now):
    from gridmap.incidents.queries import mask_name

    where = _case_where(session, area, per, actor) + [Category.kind == "dispute"]
    res = _case_rows(session, where, per, now)
    ids = [r.Case.id for r in res]
    history: dict[int, list[CaseEvent]] = {}
    if ids:
        for ev in session.scalars(select(CaseEvent).where(CaseEvent.case_id.in_(ids))
                                  .order_by(CaseEvent.case_id, CaseEvent.seq)):
            history.setdefault(ev.case_id, []).append(ev)
    show_names = actor is None or actor.role in ("head", "community", "street", "district", "city", "admin", "system")
    rows = []
    for i, r in enumerate(res, start=1):
        c = r.Case
        parties = outcome = None
        process = []
        for ev in history.get(c.id, []):
            data = json.loads(ev.data) if ev.data else {}
            if isinstance(data, dict):
                parties = _parties_text(data.get("parties")) or parties
                outcome = data.get("outcome") or outcome
            if ev.action in PROCESS_ACTIONS and ev.comment:
                process.append(f"{_local(ev.at, per.tz):%m-%d} {ev.comment}")
        if parties is None and c.reporter_name:
            parties = c.reporter_name if show_names else mask_name(c.reporter_name)
        if outcome is None:
            outcome = ("调解成功" if c.status in CLOSED else "不予受理" if c.status == "rejected"
                       else "挂账" if c.status == "parked" else "调解中")
        rows.append({"seq": i, "number": _no(c), "reported_at": _local(c.reported_at, per.tz),
                     "category": r.cat_name, "parties": parties, "description": c.description,
                     "cell": r.cell_name, "mediator": r.worker_name, "process": "；".join(process) or None,
                     "outcome": str(outcome), "closed_at": _local(c.closed_at, per.tz),
                     "satisfaction": c.satisfaction, "_lon": c.lon, "_lat": c.lat, "_closed": c.status in CLOSED})
    summary = {"纠纷总数": len(rows), "已办结": sum(r["_closed"] for r in rows),
               "调解中": sum(r["outcome"] == "调解中" for r in rows)}
    return DISPUTE_COLUMNS, rows, summary


VISIT_COLUMNS = [
    Column("seq", "序号", 6, "int"), Column("at", "日期时间", 17, "datetime"), Column("kind", "类型", 12),
    Column("cell", "所属网格", 20), Column("worker", "网格员", 10), Column("subject", "走访/巡查事项", 30),
    Column("record", "情况记录", 36), Column("result", "结果", 12), Column("number", "编号", 18, "code"),
]


def _visits_ledger(session, area, per, actor, now):
    visit_cats = select(Category.id).where(or_(Category.code == "visit", Category.code.like("visit.%")))
    where = _case_where(session, area, per, actor) + [or_(Case.source == "patrol", Case.category_id.in_(visit_cats))]
    reporter = (select(CaseEvent.case_id, CaseEvent.actor_worker_id).where(CaseEvent.action == "report",
                                                                            CaseEvent.seq == 1).subquery())
    cell = aliased(Area)
    w = aliased(Worker)
    who = func.coalesce(reporter.c.actor_worker_id, Case.handled_by_worker_id, Case.assignee_worker_id)
    res = session.execute(
        select(Case, Category.code.label("cat_code"), Category.name.label("cat_name"), cell.name.label("cell_name"),
               w.name.label("worker"))
        .join(Category, Category.id == Case.category_id).outerjoin(cell, cell.id == Case.cell_id)
        .outerjoin(reporter, reporter.c.case_id == Case.id).outerjoin(w, w.id == who)
        .where(*where).order_by(Case.reported_at, Case.id).limit(MAX_ROWS)).all()
    items = []
    for r in res:
        c = r.Case
        is_visit = r.cat_code == "visit" or r.cat_code.startswith("visit.")
        items.append({"at": _local(c.reported_at, per.tz), "kind": "走访" if is_visit else "巡查上报",
                      "cell": r.cell_name, "worker": r.worker, "subject": r.cat_name,
                      "record": c.description, "result": CASE_STATUS_ZH.get(c.status, c.status), "number": _no(c),
                      "_lon": c.lon, "_lat": c.lat, "_closed": c.status in CLOSED, "_t": c.reported_at})
    # inspection tasks done in the period in the area
    tcell = aliased(Area)
    q = (select(InspectionTask, InspectionSchedule.title, tcell.name.label("cell_name"), Worker.name.label("worker"),
                Hazard.number.label("hazard_number"))
         .join(InspectionSchedule, InspectionSchedule.id == InspectionTask.schedule_id)
         .join(tcell, tcell.id == InspectionTask.cell_id)
         .outerjoin(Worker, Worker.id == func.coalesce(InspectionTask.done_by_worker_id, InspectionTask.worker_id))
         .outerjoin(Hazard, Hazard.id == InspectionTask.hazard_id)
         .where(InspectionTask.done_at >= per.start, InspectionTask.done_at < per.end))
    q = q.where(InspectionTask.cell_id.in_(_cells_under(session, area)))
    if actor is not None:
        from gridmap.hazards.inspections import task_filter

        q = q.where(task_filter(session, actor))
    for t, title, cell_name, worker, hnum in session.execute(q.limit(MAX_ROWS)).all():
        items.append({"at": _local(t.done_at, per.tz), "kind": "隐患巡检" if t.hazard_id else "网格巡查",
                      "cell": cell_name, "worker": worker or t.done_by, "subject": title, "record": t.note,
                      "result": TASK_RESULT_ZH.get(t.result, t.result), "number": hnum,
                      "_t": t.done_at})  # drawn on the map as its hazard, not as a case
    items.sort(key=lambda r: (r["_t"], r["number"] or ""))
    for i, r in enumerate(items, start=1):
        r["seq"] = i
    summary = {"记录总数": len(items), "走访": sum(r["kind"] == "走访" for r in items),
               "巡查上报": sum(r["kind"] == "巡查上报" for r in items),
               "巡检任务": sum(r["kind"] in ("隐患巡检", "网格巡查") for r in items)}
    return VISIT_COLUMNS, items, summary


def _cells_under(session: Session, area: Area):
    """SQL: ids of the current cells inside ``area`` (any level)."""
    if area.level == "cell":
        return select(Area.id).where(Area.id == area.id)
    depth = {"community": 1, "street": 2, "district": 3}[area.level]
    chain = [aliased(Area) for _ in range(depth + 1)]
    q = select(chain[0].id).where(chain[0].level == "cell")
    for child, parent in zip(chain, chain[1:]):
        q = q.join(parent, parent.id == child.parent_id)
    return q.where(chain[-1].id == area.id)


_BUILDERS = {"cases": _cases_ledger, "hazards": _hazards_ledger, "disputes": _disputes_ledger,
             "visits": _visits_ledger}


def parse_kinds(kind: str) -> list[str]:
    """``all`` or a comma list of cases, hazards, disputes, visits (Chinese names accepted)."""
    by_zh = {v: k for k, v in KINDS.items()}
    if kind in (None, "", "all"):
        return list(KINDS)
    out = []
    for k in str(kind).split(","):
        k = by_zh.get(k.strip(), k.strip())
        if k not in KINDS:
            raise AnalysisError("kind", f"unknown ledger {k!r}; ledgers are {', '.join(KINDS)} or all")
        if k not in out:
            out.append(k)
    return out


def build_ledgers(session: Session, kind: str, *, area: str, date_from, date_to, actor: Actor | None = None,
                  now: dt.datetime | None = None) -> list[Ledger]:
    """The ledgers ``kind`` (one, a comma list or ``all``) of ``area`` (a code of any level) for the period."""
    now = now or utcnow()
    kinds = parse_kinds(kind)
    a = resolve_area(session, area)
    if a is None:
        raise AnalysisError("area", "a ledger needs an area (--area CODE)")
    if actor is not None:
        from gridmap.accounts.scope import area_ids_in_scope

        scope = area_ids_in_scope(session, actor)
        if scope is not None and a.id not in scope:
            raise AnalysisError("area", f"no area with code {a.code!r}")
    per = period(date_from, date_to)
    path = area_path(session, a)
    out = []
    for k in kinds:
        cols, rows, summary = _BUILDERS[k](session, a, per, actor, now)
        out.append(Ledger(kind=k, title=f"{a.name}{KINDS[k]}", area=a, area_path=path, period=per, columns=cols,
                          rows=rows, generated_at=now, summary=summary))
    return out


# ----------------------------------------------------------------------------- Excel

def write_xlsx(ledgers: list[Ledger], target) -> None:
    """One sheet per ledger into ``target`` (a path or a binary file object).

    Cells get one of a few named styles registered once (openpyxl hashes every new style object a
    cell is given: per-cell styles cost ~0.4 ms a cell, named ones a fraction of that).
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    # every text cell is written with an explicit string type: a case description, a dispute party
    # or an imported boundary name starting with = + - @ stays text (no live formula, no DDE)
    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    styles = {
        "gm_head": NamedStyle("gm_head", font=Font(bold=True), fill=PatternFill("solid", fgColor="DDE6F3"),
                              alignment=Alignment(horizontal="center", vertical="center", wrap_text=True),
                              border=border),
        "gm_text": NamedStyle("gm_text", alignment=Alignment(vertical="top", wrap_text=True), border=border),
        "gm_plain": NamedStyle("gm_plain", alignment=Alignment(vertical="top"), border=border),
        "gm_datetime": NamedStyle("gm_datetime", alignment=Alignment(vertical="top"), border=border,
                                  number_format="yyyy-mm-dd hh:mm"),
        "gm_date": NamedStyle("gm_date", alignment=Alignment(vertical="top"), border=border,
                              number_format="yyyy-mm-dd"),
    }
    for st in styles.values():
        wb.add_named_style(st)
    kind_style = {"text": "gm_text", "code": "gm_plain", "int": "gm_plain", "datetime": "gm_datetime",
                  "date": "gm_date"}
    for led in ledgers:
        ws = wb.create_sheet(title=led.name[:31])
        ncol = len(led.columns)
        last = get_column_letter(ncol)
        set_xlsx_cell(ws["A1"], led.title)  # titles and headers carry area names: text too
        ws["A1"].font = Font(size=16, bold=True)
        ws["A1"].alignment = Alignment(horizontal="center", vertical="center")
        ws.merge_cells(f"A1:{last}1")
        ws.row_dimensions[1].height = 30
        set_xlsx_cell(ws["A2"], led.subtitle())
        ws["A2"].alignment = Alignment(horizontal="left", vertical="center")
        ws.merge_cells(f"A2:{last}2")
        for j, c in enumerate(led.columns, start=1):
            cell = set_xlsx_cell(ws.cell(row=3, column=j), c.header)
            cell.style = "gm_head"
            ws.column_dimensions[get_column_letter(j)].width = c.width
        names = [kind_style.get(c.kind, "gm_text") for c in led.columns]
        keys = [c.key for c in led.columns]
        for i, r in enumerate(led.rows, start=4):
            for j, (key, style) in enumerate(zip(keys, names), start=1):
                cell = set_xlsx_cell(ws.cell(row=i, column=j), r.get(key))
                cell.style = style
        ws.freeze_panes = "A4"
        if led.rows:
            ws.auto_filter.ref = f"A3:{last}{3 + len(led.rows)}"
        ws.print_title_rows = "3:3"
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
    if not ledgers:
        wb.create_sheet("台账")
    wb.save(target)


# ----------------------------------------------------------------------------- HTML and PDF

def ledger_map_svg(session: Session, ledgers: list[Ledger]) -> str:
    """The map of the ledgers' area: its current cells, the cases and hazards in the ledgers."""
    from gridmap.analysis.maps import area_map_svg
    from gridmap.boundaries.models import AreaGeometry

    if not ledgers:
        return ""
    a = ledgers[0].area
    rows = session.execute(select(Area.code, Area.name, func.ST_AsBinary(AreaGeometry.geom))
                           .join(AreaGeometry, AreaGeometry.area_id == Area.id)
                           .where(AreaGeometry.valid_to.is_(None), Area.id.in_(_cells_under(session, a)))
                           .order_by(Area.code)).all()
    cells = [shapely.from_wkb(bytes(w)) for _, _, w in rows]
    labels = [code[-3:] for code, _, _ in rows]
    pts, closed, hazards, seen = [], [], [], set()
    for led in ledgers:
        for r in led.rows:
            key = r.get("number")
            if key is not None and key in seen:  # a dispute is in the case ledger too
                continue
            seen.add(key)
            if r.get("_geom") is not None:
                hazards.append(r["_geom"])
            elif r.get("_lon") is not None and r.get("_lat") is not None:
                pts.append((r["_lon"], r["_lat"]))
                closed.append(bool(r.get("_closed")))
    return area_map_svg(cells, labels=labels, case_points=pts, case_closed=closed, hazards=hazards,
                        title=f"{a.name} 网格与事件、隐患分布")


def _fmt(v, kind: str) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def render_html(session: Session, ledgers: list[Ledger], *, with_map: bool = True) -> str:
    """Printable HTML of the ledgers (one section each, a page break between them)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    env.filters["cell"] = _fmt
    svg = Markup(ledger_map_svg(session, ledgers)) if with_map and ledgers else None
    title = (ledgers[0].area.name + " 台账") if ledgers else "台账"
    return env.get_template("ledger.html").render(title=title, ledgers=ledgers, map_svg=svg)


def chromium_path() -> str | None:
    env = os.environ.get("GRIDMAP_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def write_pdf(html: str, target: str | os.PathLike, *, timeout: float = 120.0) -> None:
    """Print ``html`` to a PDF with headless Chromium (A4 landscape, from the page's print CSS)."""
    exe = chromium_path()
    if exe is None:
        raise AnalysisError("format", "PDF output needs Chromium (Debian: apt-get install chromium "
                                      "fonts-noto-cjk; or set GRIDMAP_CHROMIUM); use .html or .xlsx instead", 422)
    target = Path(target).resolve()
    with tempfile.TemporaryDirectory(prefix="gm-pdf-") as tmp:
        page = Path(tmp) / "ledger.html"
        page.write_text(html, encoding="utf-8")
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-extensions", f"--user-data-dir={tmp}/profile",
               "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
               f"--print-to-pdf={target}", page.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, text=True)
        except subprocess.TimeoutExpired:
            raise AnalysisError("format", f"Chromium did not finish the PDF within {timeout:g} s", 500) from None
        if proc.returncode == 0 and (not target.exists() or target.stat().st_size == 0):
            raise AnalysisError("format", "Chromium exited without writing the PDF (is the document very "
                                          "long? print a shorter period)", 500)
        if proc.returncode != 0 or not target.exists() or target.stat().st_size == 0:
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            raise AnalysisError("format", f"Chromium could not print the PDF (exit {proc.returncode}): "
                                          f"{' | '.join(tail)}", 500)


def write_ledgers(session: Session, ledgers: list[Ledger], output: str | os.PathLike) -> str:
    """Write to ``output`` by its extension (.xlsx, .html, .pdf); returns the format."""
    ext = Path(output).suffix.lower()
    if ext == ".xlsx":
        write_xlsx(ledgers, output)
    elif ext in (".html", ".htm"):
        Path(output).write_text(render_html(session, ledgers), encoding="utf-8")
    elif ext == ".pdf":
        rows = sum(len(led.rows) for led in ledgers)
        if rows > MAX_PDF_ROWS:
            raise AnalysisError("output", f"{rows:,} rows are too many to print as one PDF (at most "
                                          f"{MAX_PDF_ROWS:,}): choose a shorter period or a smaller area, or "
                                          "write .xlsx or .html", 422)
        write_pdf(render_html(session, ledgers), output)
    else:
        raise AnalysisError("output", f"unsupported output {ext or '(no extension)'!r}: use .xlsx, .html or .pdf")
    return ext.lstrip(".")
