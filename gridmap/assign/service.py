"""Assignment data: the worker roster, responsibilities, absences and the holiday calendar.

Owns: importing workers from a CSV (idempotent by worker code; grid workers get responsibilities
for cells, heads and staff an area of their level), the duty roster (``add_absence``), listing
workers, departments (``upsert_department``) and the ``calendar_days`` overrides
(``set_calendar_days``, ``import_calendar_csv``). Everything runs in the caller's transaction; bad
CSV rows are reported with their line number and the rest are imported.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gridmap.assign.calendar import local_date, require_aware
from gridmap.assign.models import Absence, CalendarDay, Department, Responsibility, Worker
from gridmap.boundaries.models import Area
from gridmap.db import utcnow
from gridmap.textio import csv_problem, csv_reader


class AssignError(ValueError):
    """A request the roster cannot take (unknown worker, end before start …); the message says why."""


class CsvFileError(AssignError):
    """A CSV file that cannot be read at all (encoding, missing columns): nothing was imported."""


@dataclass
class BadRow:
    line: int  # physical line in the file; the header is line 1
    message: str
    key: str | None = None  # the worker code / date of the row, when it has one

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)

    @property
    def imported(self) -> int:
        """Rows that were applied (created, updated or already up to date)."""
        return len(self.created) + len(self.updated) + len(self.unchanged)

    @property
    def ok(self) -> bool:
        return not self.bad

    def summary(self) -> str:
        return (f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
                f"{len(self.bad)} bad rows")


# ----------------------------------------------------------------------------- CSV reading
def read_text(path: str | Path) -> tuple[str, str]:
    """The file's text and its encoding: UTF-8 (with or without BOM), else GBK (read as GB18030)."""
    from gridmap.textio import decode_text

    try:
        return decode_text(Path(path).read_bytes())
    except UnicodeDecodeError:
        raise CsvFileError(f"{path}: text is neither UTF-8 nor GBK") from None


def _norm_key(s: str) -> str:
    return re.sub(r"[\s\-]+", "_", s.strip().lower())


def _read_rows(path: str | Path, aliases: dict[str, tuple[str, ...]], required: tuple[str, ...]):
    """(columns present, [(line, {column: value})]) with headers mapped through ``aliases``.

    Blank rows and rows whose first cell starts with '#' (comments) are skipped.
    """
    text, _ = read_text(path)
    reader = csv_reader(io.StringIO(text, newline=""))
    lookup = {_norm_key(a): col for col, names in aliases.items() for a in (col, *names)}
    header: list[str | None] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    prev = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise CsvFileError(f"{path}: {csv_problem(prev + 1, reader.line_num, e)}") from None
        line, prev = prev + 1, reader.line_num
        if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [lookup.get(_norm_key(c)) for c in cells]
            missing = [c for c in required if c not in header]
            if missing:
                raise CsvFileError(f"{path}: missing column(s) {', '.join(missing)} (header line {line}: "
                                   f"{', '.join(cells)})")
            continue
        rec = {}
        for col, value in zip(header, cells):
            if col is not None and col not in rec:
                rec[col] = value.strip()
        rows.append((line, rec))
    if header is None:
        raise CsvFileError(f"{path}: empty file (no header)")
    return {c for c in header if c}, rows


def _parse_date(value: str) -> dt.date:
    m = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", value.strip())
    if not m:
        m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")
    try:
        return dt.date(*(int(g) for g in m.groups()))
    except ValueError as e:
        raise ValueError(f"{value!r} is not a valid date: {e}") from None


def _chunks(values: list, n: int = 1000):
    for i in range(0, len(values), n):
        yield values[i:i + n]


# ------------------------------------------------------------------------------- workers
WORKER_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("worker_code", "工号", "人员编号", "编号"),
    "name": ("姓名",),
    "phone": ("mobile", "电话", "手机", "手机号", "联系电话"),
    "role": ("角色", "岗位"),
    "employment": ("用工性质", "专兼职"),
    "area_code": ("area", "cell_code", "区域编码", "网格编码"),
    "responsibility": ("责任", "ab角"),
    "valid_from": ("生效日期", "起始日期"),
    "department_code": ("department", "部门编码"),
    "active": ("在岗",),
}
REQUIRED_WORKER_COLUMNS = ("code", "name", "role", "area_code")

#: role label → (role, employment the label implies). A grid worker whose employment is not said is
#: full-time (网格员 = 专职网格员 by default).
ROLE_ALIASES: dict[str, tuple[str, str | None]] = {
    "worker": ("worker", None), "grid_worker": ("worker", None),
    "网格员": ("worker", None), "专职网格员": ("worker", "full_time"),
    "兼职网格员": ("worker", "part_time"),
    "head": ("head", None), "grid_head": ("head", None), "网格长": ("head", None),
    "community": ("community", None), "社区": ("community", None), "社区工作者": ("community", None),
    "社区干部": ("community", None), "村": ("community", None), "村干部": ("community", None),
    "村社干部": ("community", None),
    "street": ("street", None), "街道": ("street", None), "街道干部": ("street", None),
    "乡镇": ("street", None), "乡镇干部": ("street", None),
    "district": ("district", None), "区县": ("district", None), "区县干部": ("district", None),
    "综治中心": ("district", None),
    "department": ("department", None), "部门": ("department", None), "部门人员": ("department", None),
    "职能部门": ("department", None),
}
EMPLOYMENT_ALIASES = {"full_time": "full_time", "fulltime": "full_time", "专职": "full_time",
                      "part_time": "part_time", "parttime": "part_time", "兼职": "part_time"}
RESPONSIBILITY_ALIASES = {"primary": "primary", "a": "primary", "a角": "primary", "主责": "primary",
                          "backup": "backup", "b": "backup", "b角": "backup", "备岗": "backup"}
ACTIVE_ALIASES = {"1": True, "true": True, "yes": True, "y": True, "是": True, "在岗": True,
                  "0": False, "false": False, "no": False, "n": False, "否": False, "离岗": False}
#: role → the level of the area it answers for (None: any level, optional)
ROLE_AREA_LEVEL = {"worker": "cell", "head": "community", "community": "community", "street": "street",
                   "district": "district", "department": None}
ROLE_ZH = {"worker": "grid worker 网格员", "head": "grid head 网格长", "community": "community staff",
           "street": "street staff", "district": "district staff", "department": "department staff"}
CELL_SEPARATORS = r"[;；|、\s]+"  # a worker may patrol several cells: "330999001001001;330999001001002"
MAX_LEN = {"code": 40, "name": 80, "phone": 40}


@dataclass
class _WorkerRow:
    line: int
    code: str
    name: str
    phone: str | None
    role: str
    employment: str | None  # given or implied by the role label; None: not said
    areas: list[Area]
    responsibility: str | None
    valid_from: dt.date
    department: Department | None
    active: bool | None


def _preload(session: Session, model, column, values: set[str]) -> dict:
    out = {}
    for chunk in _chunks(sorted(v for v in values if v)):
        for obj in session.scalars(select(model).where(column.in_(chunk))):
            out[getattr(obj, column.key)] = obj
    return out


def _validate_worker_row(line: int, rec: dict[str, str], today: dt.date,
                         areas: dict[str, Area], departments: dict[str, Department],
                         seen: dict[str, int]) -> _WorkerRow | BadRow:
    errors: list[str] = []
    code = rec.get("code", "")
    if not code:
        return BadRow(line, "missing worker code")
    for col, n in MAX_LEN.items():
        if len(rec.get(col, "")) > n:
            errors.append(f"{col} longer than {n} characters")
    if code in seen:
        return BadRow(line, f"worker {code} already appears on line {seen[code]} (list several cells in one "
                            "area_code, separated by ';')", code)
    name = rec.get("name", "")
    if not name:
        errors.append("missing name")
    label = rec.get("role", "")
    role, implied = ROLE_ALIASES.get(_norm_key(label), (None, None))
    if role is None:
        errors.append(f"unknown role {label!r} (expected one of {', '.join(ROLE_AREA_LEVEL)} or 网格员, "
                      "专职网格员, 兼职网格员, 网格长, 社区, 街道, 区县, 部门)" if label else "missing role")
    emp_label = rec.get("employment", "")
    employment = implied
    if emp_label:
        employment = EMPLOYMENT_ALIASES.get(_norm_key(emp_label))
        if employment is None:
            errors.append(f"unknown employment {emp_label!r} (full_time/专职 or part_time/兼职)")
        elif implied and employment != implied:
            errors.append(f"role {label} means {implied} but employment says {employment}")
    resp_label = rec.get("responsibility", "")
    responsibility = None
    if resp_label:
        responsibility = RESPONSIBILITY_ALIASES.get(_norm_key(resp_label))
        if responsibility is None:
            errors.append(f"unknown responsibility {resp_label!r} (primary or backup)")
        elif role is not None and role != "worker":
            errors.append(f"responsibility {resp_label!r} applies only to grid workers, not to role {role}")
    valid_from = today
    if rec.get("valid_from"):
        try:
            valid_from = _parse_date(rec["valid_from"])
        except ValueError as e:
            errors.append(f"valid_from: {e}")
    active = None
    if rec.get("active"):
        active = ACTIVE_ALIASES.get(_norm_key(rec["active"]))
        if active is None:
            errors.append(f"active {rec['active']!r} is not yes/no")
    department = None
    dep_code = rec.get("department_code", "")
    if dep_code:
        department = departments.get(dep_code)
        if department is None:
            errors.append(f"unknown department code {dep_code}")
    elif role == "department":
        errors.append("role department needs a department_code")
    area_list: list[Area] = []
    codes = [c for c in re.split(CELL_SEPARATORS, rec.get("area_code", "")) if c]
    if role is not None:
        want = ROLE_AREA_LEVEL[role]
        if not codes and want is not None:
            errors.append(f"missing area_code (a {ROLE_ZH[role]} needs a {want} code)")
        if len(codes) > 1 and role != "worker":
            errors.append(f"a {ROLE_ZH[role]} answers for one area, got {len(codes)}")
        for c in codes:
            area = areas.get(c)
            if area is None:
                errors.append(f"unknown area code {c}")
            elif area.retired_at is not None:
                errors.append(f"area {c} is retired")
            elif want is not None and area.level != want:
                errors.append(f"area {c} is a {area.level}; a {ROLE_ZH[role]} needs a {want} code")
            else:
                area_list.append(area)
    if errors:
        return BadRow(line, "; ".join(errors), code)
    seen[code] = line
    return _WorkerRow(line, code, name, rec.get("phone") or None, role, employment, area_list, responsibility,
                      valid_from, department, active)


def import_workers_csv(session: Session, path: str | Path, *, today: dt.date | None = None) -> ImportResult:
    """Import or update workers from a CSV (UTF-8 or GBK), in the caller's transaction.

    Columns: ``code,name,phone,role,employment,area_code`` and optionally ``responsibility``
    (primary|backup), ``valid_from`` (default ``today``), ``department_code``, ``active``.
    A grid worker's ``area_code`` is a cell (or several, separated by ';'): he gets a responsibility
    for it, primary when he is the first full-time worker of the cell, else backup, unless the
    ``responsibility`` column says otherwise; his area is the cell's community. A head answers for a
    community, street/district staff for a street/district. Re-importing updates by worker code; a
    changed cell closes the old responsibility (``valid_to`` = the new ``valid_from``) and opens a
    new one. Bad rows are reported with their line number; the others are imported.
    Raises CsvFileError when the file cannot be read at all.
    """
    today = today or local_date(utcnow())
    columns, raw = _read_rows(path, WORKER_COLUMNS, REQUIRED_WORKER_COLUMNS)
    area_codes = {c for _, r in raw for c in re.split(CELL_SEPARATORS, r.get("area_code", "")) if c}
    areas = _preload(session, Area, Area.code, area_codes)
    departments = _preload(session, Department, Department.code, {r.get("department_code", "") for _, r in raw})
    workers = _preload(session, Worker, Worker.code, {r.get("code", "") for _, r in raw})

    result = ImportResult()
    seen: dict[str, int] = {}
    rows: list[_WorkerRow] = []
    for line, rec in raw:
        row = _validate_worker_row(line, rec, today, areas, departments, seen)
        (result.bad.append if isinstance(row, BadRow) else rows.append)(row)
    if not rows:
        return result

    # current responsibilities of the workers in the file, and the open primaries of their cells
    min_from = min(r.valid_from for r in rows)
    resps: dict[int, list[Responsibility]] = {}
    ids = sorted(w.id for w in workers.values())
    for chunk in _chunks(ids):
        for r in session.scalars(select(Responsibility).where(
                Responsibility.worker_id.in_(chunk),
                or_(Responsibility.valid_to.is_(None), Responsibility.valid_to > min_from))
                .order_by(Responsibility.id)):
            resps.setdefault(r.worker_id, []).append(r)
    cell_ids = sorted({a.id for r in rows if r.role == "worker" for a in r.areas})
    primaries: dict[int, set[str]] = {}  # cell id → codes of workers holding an open primary
    for chunk in _chunks(cell_ids):
        for cell_id, wcode in session.execute(
                select(Responsibility.cell_id, Worker.code).join(Worker, Worker.id == Responsibility.worker_id)
                .where(Responsibility.cell_id.in_(chunk), Responsibility.role == "primary",
                       Responsibility.valid_to.is_(None), Worker.active.is_(True))):
            primaries.setdefault(cell_id, set()).add(wcode)

    for row in rows:
        w = workers.get(row.code)
        created = w is None
        if created:
            w = Worker(code=row.code, active=True)
            session.add(w)
            workers[row.code] = w
        own = resps.setdefault(w.id, []) if w.id is not None else []
        changed = _apply_fields(w, row, columns)
        if row.role == "worker":
            changed |= _apply_cells(session, w, row, own, primaries)
        else:
            changed |= _close_responsibilities(session, w, own, row.valid_from, primaries)
        (result.created if created else result.updated if changed else result.unchanged).append(row.code)
    session.flush()
    return result


def _apply_fields(w: Worker, row: _WorkerRow, columns: set[str]) -> bool:
    new = {"name": row.name, "role": row.role}
    if "phone" in columns or w.id is None:
        new["phone"] = row.phone
    if row.employment is not None:
        new["employment"] = row.employment
    elif "employment" in columns or w.id is None:
        # a grid worker is full-time (专职) unless the file says part-time
        new["employment"] = "full_time" if row.role == "worker" else None
    new["area_id"] = row.areas[0].parent_id if row.role == "worker" else (row.areas[0].id if row.areas else None)
    if "department_code" in columns or w.id is None:
        new["department_id"] = row.department.id if row.department else None
    if row.active is not None:
        new["active"] = row.active
    changed = False
    for attr, value in new.items():
        if getattr(w, attr) != value:
            setattr(w, attr, value)
            changed = True
    return changed


def _current(own: list[Responsibility], day: dt.date) -> list[Responsibility]:
    return [r for r in own if r.valid_to is None or r.valid_to > day]


def _end(session: Session, r: Responsibility, own: list[Responsibility], day: dt.date,
         primaries: dict[int, set[str]], code: str) -> None:
    """Close ``r`` at ``day`` (exclusive); one that had not begun yet is removed."""
    if r.role == "primary":
        primaries.get(r.cell_id, set()).discard(code)
    if r.valid_from >= day:
        own.remove(r)
        session.delete(r)
    else:
        r.valid_to = day


def _close_responsibilities(session: Session, w: Worker, own: list[Responsibility], day: dt.date,
                            primaries: dict[int, set[str]]) -> bool:
    current = _current(own, day)
    for r in current:
        _end(session, r, own, day, primaries, w.code)
    return bool(current)


def _apply_cells(session: Session, w: Worker, row: _WorkerRow, own: list[Responsibility],
                 primaries: dict[int, set[str]]) -> bool:
    day = row.valid_from
    current = _current(own, day)
    held = {r.cell_id: r.role for r in current}
    desired: dict[int, str] = {}
    for cell in row.areas:
        if row.responsibility:
            role = row.responsibility
        elif cell.id in held:
            role = held[cell.id]  # keep what he has
        elif w.employment == "full_time" and not (primaries.get(cell.id, set()) - {w.code}):
            role = "primary"  # the first full-time worker of the cell
        else:
            role = "backup"
        desired[cell.id] = role
    changed = False
    kept: set[int] = set()
    for r in current:
        want = desired.get(r.cell_id)
        if want is not None and r.cell_id not in kept and want == r.role:
            kept.add(r.cell_id)
            continue
        changed = True
        if want is not None and r.cell_id not in kept and r.valid_from >= day:
            if r.role == "primary":
                primaries.get(r.cell_id, set()).discard(w.code)
            r.role, r.valid_from = want, day  # had not begun yet: correct it in place
            kept.add(r.cell_id)
        else:
            _end(session, r, own, day, primaries, w.code)
    for cell_id, role in desired.items():
        if cell_id not in kept:
            r = Responsibility(worker=w, cell_id=cell_id, role=role, valid_from=day)
            session.add(r)
            own.append(r)
            changed = True
        if role == "primary":
            primaries.setdefault(cell_id, set()).add(w.code)
    return changed


def list_workers(session: Session, *, cell_code: str | None = None, at: dt.datetime | None = None) -> list[dict]:
    """Workers with their area and the cells they hold at ``at`` (default now); with ``cell_code``
    only the workers responsible for that cell (primary first)."""
    at = at or utcnow()
    require_aware(at, "at")
    day = local_date(at)
    valid = (Responsibility.valid_from <= day) & or_(Responsibility.valid_to.is_(None), Responsibility.valid_to > day)
    cells: dict[int, list[tuple[str, str]]] = {}
    q = (select(Responsibility.worker_id, Area.code, Responsibility.role)
         .join(Area, Area.id == Responsibility.cell_id).where(valid).order_by(Area.code))
    if cell_code is not None:
        cell = session.scalars(select(Area).where(Area.code == cell_code)).first()
        if cell is None:
            raise AssignError(f"unknown area code {cell_code}")
        if cell.level != "cell":
            raise AssignError(f"area {cell_code} is a {cell.level}, not a cell")
        q = q.where(Responsibility.cell_id == cell.id)
    for wid, code, role in session.execute(q):
        cells.setdefault(wid, []).append((code, role))
    wq = select(Worker, Area.code).outerjoin(Area, Area.id == Worker.area_id).order_by(Worker.code)
    if cell_code is not None:
        wq = wq.where(Worker.id.in_(list(cells)))
    out = []
    for w, area_code in session.execute(wq):
        out.append({"code": w.code, "name": w.name, "phone": w.phone, "role": w.role, "employment": w.employment,
                    "area_code": area_code, "active": w.active,
                    "cells": [{"code": c, "role": r} for c, r in cells.get(w.id, [])]})
    if cell_code is not None:
        out.sort(key=lambda d: (d["cells"][0]["role"] != "primary", d["code"]))
    return out


def upsert_department(session: Session, code: str, name: str, area_code: str | None = None) -> Department:
    """Create or update a functional department (the target of category routing, 权责清单)."""
    area_id = None
    if area_code:
        area_id = session.scalars(select(Area.id).where(Area.code == area_code)).first()
        if area_id is None:
            raise AssignError(f"unknown area code {area_code}")
    dep = session.scalars(select(Department).where(Department.code == code)).first()
    if dep is None:
        dep = Department(code=code)
        session.add(dep)
    dep.name, dep.area_id = name, area_id
    session.flush()
    return dep


# ------------------------------------------------------------------------------ absences
def _as_instant(value: dt.datetime | dt.date, what: str, *, end: bool = False) -> dt.datetime:
    """Aware datetimes as they are; a date is local midnight (for an end: the midnight after it)."""
    if isinstance(value, dt.datetime):
        require_aware(value, what)
        return value
    if isinstance(value, dt.date):
        from gridmap.assign.calendar import TIMEZONE

        day = value + dt.timedelta(days=1) if end else value
        return dt.datetime.combine(day, dt.time(0), tzinfo=TIMEZONE)
    raise TypeError(f"{what} must be a datetime or a date, not {type(value).__name__}")


def add_absence(session: Session, worker_code: str, start: dt.datetime | dt.date, end: dt.datetime | dt.date,
                substitute_code: str | None = None, reason: str | None = None) -> Absence:
    """Put a worker on leave from ``start`` to ``end`` (exclusive), optionally covered by a substitute.

    Datetimes must be timezone-aware; a date means the whole local day (an end date is included).
    """
    start_at = _as_instant(start, "start")
    end_at = _as_instant(end, "end", end=True)
    if end_at <= start_at:
        raise AssignError(f"absence of {worker_code}: end {end_at.isoformat()} is not after start "
                          f"{start_at.isoformat()}")
    worker = session.scalars(select(Worker).where(Worker.code == worker_code)).first()
    if worker is None:
        raise AssignError(f"unknown worker code {worker_code}")
    sub = None
    if substitute_code:
        if substitute_code == worker_code:
            raise AssignError(f"worker {worker_code} cannot be his own substitute")
        sub = session.scalars(select(Worker).where(Worker.code == substitute_code)).first()
        if sub is None:
            raise AssignError(f"unknown substitute worker code {substitute_code}")
        if not sub.active:
            raise AssignError(f"substitute {substitute_code} is inactive")
    if reason is not None and len(reason) > 200:
        raise AssignError("absence reason longer than 200 characters")
    a = Absence(worker_id=worker.id, start=start_at, end=end_at, substitute_id=sub.id if sub else None,
                reason=reason)
    session.add(a)
    session.flush()
    return a


# ------------------------------------------------------------------------------ calendar
CALENDAR_COLUMNS: dict[str, tuple[str, ...]] = {"date": ("day", "日期"), "kind": ("type", "类型"),
                                                "name": ("名称", "节日")}
KIND_ALIASES = {"holiday": "holiday", "休": "holiday", "假": "holiday", "放假": "holiday",
                "workday": "workday", "班": "workday", "上班": "workday", "调休上班": "workday"}


def _calendar_row(day, kind, name) -> tuple[dt.date, str, str | None]:
    if isinstance(day, str):
        day = _parse_date(day)
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise ValueError(f"{day!r} is not a date")
    k = KIND_ALIASES.get(_norm_key(kind or ""))
    if k is None:
        raise ValueError(f"unknown kind {kind!r} (holiday or workday)")
    name = (name or "").strip() or None
    if name is not None and len(name) > 80:
        raise ValueError("name longer than 80 characters")
    return day, k, name


def set_calendar_days(session: Session, rows: Iterable) -> ImportResult:
    """Insert or update ``calendar_days`` overrides. ``rows``: (date, kind, name) tuples or dicts with
    ``date``/``day``, ``kind``, ``name``; kind is holiday or workday (a make-up working day 调休).
    Raises ValueError on the first bad row (use ``import_calendar_csv`` for per-line reports)."""
    parsed: dict[dt.date, tuple[str, str | None]] = {}
    for r in rows:
        if isinstance(r, dict):
            r = (r.get("date", r.get("day")), r.get("kind"), r.get("name"))
        day, kind, name = _calendar_row(*r)
        if day in parsed and parsed[day][0] != kind:
            raise ValueError(f"{day} given twice, as {parsed[day][0]} and {kind}")
        parsed[day] = (kind, name)
    result = ImportResult()
    existing = {}
    for chunk in _chunks(sorted(parsed)):
        existing.update({d.day: d for d in session.scalars(select(CalendarDay).where(CalendarDay.day.in_(chunk)))})
    for day, (kind, name) in sorted(parsed.items()):
        key = day.isoformat()
        cd = existing.get(day)
        if cd is None:
            session.add(CalendarDay(day=day, kind=kind, name=name))
            result.created.append(key)
        elif (cd.kind, cd.name) != (kind, name):
            cd.kind, cd.name = kind, name
            result.updated.append(key)
        else:
            result.unchanged.append(key)
    session.flush()
    return result


def import_calendar_csv(session: Session, path: str | Path) -> ImportResult:
    """Load holidays and make-up working days from a CSV with columns ``date,kind,name`` (UTF-8 or GBK;
    lines starting with '#' are comments). Bad lines are reported; the others are stored."""
    _, raw = _read_rows(path, CALENDAR_COLUMNS, ("date", "kind"))
    good: list[tuple[dt.date, str, str | None]] = []
    bad: list[BadRow] = []
    seen: dict[dt.date, tuple[int, str]] = {}
    for line, rec in raw:
        try:
            day, kind, name = _calendar_row(rec.get("date", ""), rec.get("kind", ""), rec.get("name"))
        except ValueError as e:
            bad.append(BadRow(line, str(e), rec.get("date") or None))
            continue
        if day in seen and seen[day][1] != kind:
            bad.append(BadRow(line, f"{day} is already a {seen[day][1]} on line {seen[day][0]}", day.isoformat()))
            continue
        seen[day] = (line, kind)
        good.append((day, kind, name))
    result = set_calendar_days(session, good)
    result.bad = bad
    return result
