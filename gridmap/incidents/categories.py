"""The case taxonomy (事件分类), kept in data.

Owns: reading the taxonomy file (``data/categories.json``: functional departments and dotted
category codes such as ``city.environment.litter`` with a Chinese and an English name, a kind, a
time limit, the numeric standard code (GB/T 30428 / CJ/T 214 layout) and where it comes from, the
department that answers for it (权责清单: inherited by subcategories; ``"grid"`` = the cell's
grid worker), on-site verification before filing (核实) with its own time limit, and the filing
criteria 立案标准), checking it and upserting it by code; the effective time limit and filing
criteria of a category (its own, else the nearest ancestor's). Looking a category up (by internal
code, standard code or exact name) lives in ``gridmap.incidents.category_lookup``.

File rules: the parent of ``a.b.c`` is ``a.b`` (in the file or already stored); a category without
``kind`` or ``limit`` inherits its parent's; every category must end up with a time limit; units are
those of ``gridmap.incidents.models.LIMIT_UNITS`` and ``working_days`` must be whole. A file with any
problem changes nothing: every problem is reported with the code it belongs to. Categories stored
but missing from the file are left alone (cases refer to them) and reported as ``not_in_file``.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.assign.models import Department
from gridmap.incidents.category_lookup import AmbiguousCategory, CategoryResolver, UnknownCategory  # noqa: F401
from gridmap.incidents.models import LIMIT_UNITS, Category

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "categories.json"
KINDS = ("event", "component", "governance", "dispute", "hazard", "service")
CODE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
#: a sanity bound per unit: a limit beyond it is almost certainly a typo
MAX_LIMIT = {"urgent_hours": 720, "working_hours": 2000, "working_days": 250, "natural_days": 366}

_TOP_KEYS = {"note", "departments", "categories"}
_DEPT_KEYS = {"code", "name"}
_CAT_KEYS = {"code", "name", "name_en", "kind", "limit", "department", "active", "std_code", "std_source",
             "confirm", "confirm_limit", "filing_criteria"}
STD_CODE_RE = re.compile(r"^[0-9]{2}([0-9]{2})?$")
STD_SOURCES = ("standard", "local")
#: the department value that keeps a category with the cell's grid worker
GRID = "grid"


class CategoryFileError(ValueError):
    """The taxonomy file is unusable; ``problems`` lists every problem found (nothing was written)."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:100])
        more = f"\n  … and {len(problems) - 100} more" if len(problems) > 100 else ""
        super().__init__(f"{path}: {len(problems)} problem(s), nothing was loaded:\n{shown}{more}")


class Limit(NamedTuple):
    value: float
    unit: str
    from_code: str  # the category the limit was taken from (itself or an ancestor)


def parent_code(code: str) -> str | None:
    return code.rsplit(".", 1)[0] if "." in code else None


# ------------------------------------------------------------------------------ lookup
def get_category(session: Session, code: str) -> Category:
    """The category with this internal code, standard code or exact name (see
    ``gridmap.incidents.category_lookup``); ``UnknownCategory`` naming close matches, or
    ``AmbiguousCategory`` naming every fitting category, otherwise."""
    return CategoryResolver.load(session).resolve(code)


def effective_limit(category: Category) -> Limit | None:
    """The category's time limit, else the nearest ancestor's; None when no ancestor has one."""
    seen: set[int] = set()
    cat: Category | None = category
    while cat is not None and id(cat) not in seen:
        seen.add(id(cat))
        if cat.limit_value is not None and cat.limit_unit:
            return Limit(float(cat.limit_value), cat.limit_unit, cat.code)
        cat = cat.parent
    return None


def effective_confirm_limit(category: Category) -> Limit | None:
    """The time limit of on-site verification (核实): the category's own, else the nearest ancestor's."""
    seen: set[int] = set()
    cat: Category | None = category
    while cat is not None and id(cat) not in seen:
        seen.add(id(cat))
        if cat.confirm_limit_value is not None and cat.confirm_limit_unit:
            return Limit(float(cat.confirm_limit_value), cat.confirm_limit_unit, cat.code)
        cat = cat.parent
    return None


def filing_criteria(category: Category) -> tuple[str, str] | None:
    """(立案标准, the code it comes from): the category's own, else the nearest ancestor's."""
    seen: set[int] = set()
    cat: Category | None = category
    while cat is not None and id(cat) not in seen:
        seen.add(id(cat))
        if cat.filing_criteria:
            return cat.filing_criteria, cat.code
        cat = cat.parent
    return None


def std_label(category: Category) -> str | None:
    """"事件 0102" / "部件 0101" (the kind qualifies the code: both lists start at 01), or None."""
    if not category.std_code:
        return None
    return f"{KIND_ZH.get(category.kind, category.kind)} {category.std_code}"


#: the Chinese word that qualifies a standard code of each kind
KIND_ZH = {"event": "事件", "component": "部件", "governance": "治理", "dispute": "纠纷", "hazard": "隐患",
           "service": "服务"}


def set_route(session: Session, code: str, department: str) -> list[str]:
    """Edit the 权责清单 of this city: route category ``code`` (any spelling get_category takes) to
    ``department`` (a department code, or "grid" for the cell's grid worker). Its subcategories that
    shared its old routing follow it (the rest keep their own). Returns the codes changed; raises
    ``UnknownCategory`` / ``AmbiguousCategory``, or ValueError for an unknown department."""
    cat = get_category(session, code)
    if department == GRID:
        new_id = None
    else:
        dep = session.scalar(select(Department).where(Department.code == department))
        if dep is None:
            known = ", ".join(sorted(session.scalars(select(Department.code))))
            raise ValueError(f"unknown department {department!r}; departments are {known or 'none'}, or {GRID}")
        new_id = dep.id
    old_id = cat.department_id
    children: dict[int | None, list[Category]] = {}
    for c in session.scalars(select(Category)):
        children.setdefault(c.parent_id, []).append(c)
    changed, stack = [], [cat]
    while stack:
        c = stack.pop()
        if c is not cat and c.department_id != old_id:
            continue  # a subclass routed elsewhere on purpose keeps its own department
        if c.department_id != new_id:
            c.department_id = new_id
            changed.append(c.code)
        stack.extend(children.get(c.id, ()))
    session.flush()
    return sorted(changed)


def list_categories(session: Session) -> list[dict]:
    """Every stored category, by code, with its effective limit, department and standard code."""
    depts = {d.id: d.code for d in session.scalars(select(Department))}
    out = []
    for cat in session.scalars(select(Category).order_by(Category.code)):
        lim = effective_limit(cat)
        out.append({"code": cat.code, "name": cat.name, "name_en": cat.name_en, "kind": cat.kind,
                    "std_code": cat.std_code, "std_source": cat.std_source,
                    "limit_value": lim.value if lim else None, "limit_unit": lim.unit if lim else None,
                    "limit_inherited_from": lim.from_code if lim and lim.from_code != cat.code else None,
                    "department": depts.get(cat.department_id), "confirm_first": bool(cat.confirm_first),
                    "active": cat.active})
    return out


# ------------------------------------------------------------------------------ loading
def load_categories(session: Session, path: str | Path | None = None) -> dict:
    """Upsert the departments and categories of a taxonomy file by code (idempotent).

    Everything is checked before anything is written; any problem raises ``CategoryFileError``
    listing all of them. Returns counts ``{"departments": {"created", "updated", "unchanged"},
    "categories": {…}, "not_in_file": [codes], "path": str}``.
    """
    path = Path(path) if path else DEFAULT_PATH
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CategoryFileError(str(path), ["file not found"]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CategoryFileError(str(path), [f"not valid UTF-8 JSON: {e}"]) from None
    depts, cats = _validate(session, doc, str(path))
    return _upsert(session, depts, cats, str(path))


def _validate(session: Session, doc: Any, path: str) -> tuple[list[dict], list[dict]]:
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise CategoryFileError(path, ["the file must hold a JSON object with 'departments' and 'categories'"])
    for k in sorted(set(doc) - _TOP_KEYS):
        problems.append(f"unknown top-level key {k!r} (expected {', '.join(sorted(_TOP_KEYS))})")
    raw_depts = doc.get("departments", [])
    raw_cats = doc.get("categories")
    if not isinstance(raw_depts, list):
        problems.append("'departments' must be a list")
        raw_depts = []
    if not isinstance(raw_cats, list) or not raw_cats:
        problems.append("'categories' must be a non-empty list")
        raw_cats = []

    depts: list[dict] = []
    dept_codes: set[str] = set()
    for i, d in enumerate(raw_depts):
        where = f"department #{i + 1}"
        if not isinstance(d, dict):
            problems.append(f"{where}: must be an object with code and name")
            continue
        code = d.get("code")
        if isinstance(code, str) and code.strip():
            where = f"department {code}"
        else:
            problems.append(f"{where}: missing code")
            continue
        for k in sorted(set(d) - _DEPT_KEYS):
            problems.append(f"{where}: unknown key {k!r}")
        if len(code) > 40:
            problems.append(f"{where}: code longer than 40 characters")
        if code in dept_codes:
            problems.append(f"{where}: duplicate code")
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: missing name")
        elif len(name) > 120:
            problems.append(f"{where}: name longer than 120 characters")
        dept_codes.add(code)
        depts.append({"code": code, "name": (name or "").strip()})
    stored_depts = set(session.scalars(select(Department.code)))

    stored = {c.code: c for c in session.scalars(select(Category))}
    cats: dict[str, dict] = {}
    for i, c in enumerate(raw_cats):
        if not isinstance(c, dict):
            problems.append(f"category #{i + 1}: must be an object")
            continue
        code = c.get("code")
        if not isinstance(code, str) or not code.strip():
            problems.append(f"category #{i + 1} ({c.get('name', 'no name')}): missing code")
            continue
        where = f"category {code}"
        for k in sorted(set(c) - _CAT_KEYS):
            problems.append(f"{where}: unknown key {k!r} (expected {', '.join(sorted(_CAT_KEYS))})")
        if not CODE_RE.match(code):
            problems.append(f"{where}: a code is lower-case ASCII words joined by dots, e.g. hazard.fire")
        if len(code) > 60:
            problems.append(f"{where}: code longer than 60 characters")
        if code in cats:
            problems.append(f"{where}: duplicate code")
            continue
        name = c.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: missing Chinese name ('name')")
            name = ""
        elif len(name) > 120:
            problems.append(f"{where}: name longer than 120 characters")
        name_en = c.get("name_en")
        if name_en is not None and (not isinstance(name_en, str) or len(name_en) > 120):
            problems.append(f"{where}: name_en must be a string of at most 120 characters")
        kind = c.get("kind")
        if kind is not None and kind not in KINDS:
            problems.append(f"{where}: unknown kind {kind!r} (expected {', '.join(KINDS)})")
        limit_value = limit_unit = None
        if c.get("limit") is not None:
            limit_value, limit_unit = _check_limit(c["limit"], where, problems)
        dept = c.get("department")
        if dept is not None and dept != GRID and (not isinstance(dept, str)
                                                  or (dept not in dept_codes and dept not in stored_depts)):
            problems.append(f"{where}: unknown department {dept!r} (define it under 'departments', or "
                            f"\"{GRID}\" for the cell's grid worker)")
        std_code, std_source = c.get("std_code"), c.get("std_source")
        if std_code is not None and (not isinstance(std_code, str) or not STD_CODE_RE.match(std_code)):
            problems.append(f"{where}: std_code must be 2 digits (main class) or 4 digits (subclass), "
                            f"got {std_code!r}")
            std_code = None
        if std_code is not None and std_source not in STD_SOURCES:
            problems.append(f"{where}: std_source must say where the code comes from: "
                            f"{' or '.join(STD_SOURCES)}")
        elif std_code is None and std_source is not None:
            problems.append(f"{where}: std_source without std_code")
        confirm = c.get("confirm")
        if confirm is not None and not isinstance(confirm, bool):
            problems.append(f"{where}: confirm must be true or false")
            confirm = None
        confirm_value = confirm_unit = None
        if c.get("confirm_limit") is not None:
            confirm_value, confirm_unit = _check_limit(c["confirm_limit"], where.replace("category", "confirm_limit of"),
                                                       problems)
        criteria = c.get("filing_criteria")
        if criteria is not None and (not isinstance(criteria, str) or len(criteria) > 2000):
            problems.append(f"{where}: filing_criteria must be text of at most 2000 characters")
            criteria = None
        active = c.get("active", True)
        if not isinstance(active, bool):
            problems.append(f"{where}: active must be true or false")
        cats[code] = {"code": code, "name": name.strip(), "name_en": name_en, "kind": kind,
                      "limit_value": limit_value, "limit_unit": limit_unit, "department": dept,
                      "active": active, "std_code": std_code, "std_source": std_source if std_code else None,
                      "confirm": confirm, "confirm_limit_value": confirm_value, "confirm_limit_unit": confirm_unit,
                      "filing_criteria": criteria.strip() if isinstance(criteria, str) and criteria.strip() else None}

    # parents, inherited kinds and limits (parents in the file or already stored)
    for code, c in cats.items():
        if not CODE_RE.match(code):
            continue  # reported above; its "parent" would be noise
        p = parent_code(code)
        if p is not None and p not in cats and p not in stored:
            problems.append(f"category {code}: parent {p} is neither in the file nor stored")
            continue
        if _resolve(code, cats, stored, "kind") is None:
            problems.append(f"category {code}: no kind (give 'kind' here or on a parent)")
        if _resolve(code, cats, stored, "limit") is None:
            problems.append(f"category {code}: no time limit (give 'limit' here or on a parent)")
        if _resolve(code, cats, stored, "confirm") and _resolve(code, cats, stored, "confirm_limit") is None:
            problems.append(f"category {code}: on-site verification (confirm) needs a confirm_limit "
                            f"(here or on a parent)")
    # a standard code names one category per kind; a subclass sits under its main class
    seen_std: dict[tuple[str, str], str] = {}
    for code, c in cats.items():
        if not c["std_code"]:
            continue
        kind = _resolve(code, cats, stored, "kind") if CODE_RE.match(code) else None
        other = seen_std.get((kind, c["std_code"]))
        if other:
            problems.append(f"category {code}: std_code {c['std_code']} is already {other}'s ({kind})")
        seen_std[(kind, c["std_code"])] = code
        p = parent_code(code)
        parent_std = cats[p]["std_code"] if p in cats else (stored[p].std_code if p in stored else None)
        if len(c["std_code"]) == 4 and parent_std and not c["std_code"].startswith(parent_std):
            problems.append(f"category {code}: subclass {c['std_code']} is not under its parent's main class "
                            f"{parent_std}")
    if problems:
        raise CategoryFileError(path, problems)
    for code, c in cats.items():
        c["kind"] = _resolve(code, cats, stored, "kind")
        c["department"] = _resolve(code, cats, stored, "department")
        c["confirm"] = bool(_resolve(code, cats, stored, "confirm"))
    return depts, sorted(cats.values(), key=lambda c: (c["code"].count("."), c["code"]))


def _check_limit(limit: Any, where: str, problems: list[str]) -> tuple[float | None, str | None]:
    if not isinstance(limit, dict) or set(limit) != {"value", "unit"}:
        problems.append(f"{where}: limit must be {{\"value\": number, \"unit\": one of {', '.join(LIMIT_UNITS)}}}")
        return None, None
    value, unit = limit["value"], limit["unit"]
    ok = True
    if unit not in LIMIT_UNITS:
        problems.append(f"{where}: unknown limit unit {unit!r} (expected {', '.join(LIMIT_UNITS)})")
        ok = False
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        problems.append(f"{where}: limit value must be a number > 0, got {value!r}")
        ok = False
    elif ok and value > MAX_LIMIT[unit]:
        problems.append(f"{where}: limit {value} {unit} exceeds {MAX_LIMIT[unit]} {unit}; a typo?")
        ok = False
    elif ok and unit == "working_days" and value != int(value):
        problems.append(f"{where}: working_days must be whole ({value}); use working_hours for parts of a day")
        ok = False
    return (float(value), unit) if ok else (None, None)


def _resolve(code: str, cats: dict[str, dict], stored: dict[str, Category], what: str):
    """Walk up from ``code`` (file first, then stored rows) to the first kind / limit / department
    (a department code, or None for the grid worker) / confirm flag / confirm_limit."""
    cur: str | None = code
    while cur is not None:
        if cur in cats:
            c = cats[cur]
            if what == "kind" and c["kind"]:
                return c["kind"]
            if what == "limit" and c["limit_value"] is not None:
                return c["limit_value"], c["limit_unit"]
            if what == "department" and c["department"] is not None:
                return None if c["department"] == GRID else c["department"]
            if what == "confirm" and c["confirm"] is not None:
                return c["confirm"]
            if what == "confirm_limit" and c["confirm_limit_value"] is not None:
                return c["confirm_limit_value"], c["confirm_limit_unit"]
        elif cur in stored:
            s = stored[cur]
            if what == "kind":
                return s.kind
            if what == "department":
                return s.department.code if s.department is not None else None
            if what == "confirm":
                return bool(s.confirm_first)
            lim = effective_limit(s) if what == "limit" else effective_confirm_limit(s)
            return (lim.value, lim.unit) if lim else None
        else:
            return None
        cur = parent_code(cur)
    return None


def _upsert(session: Session, depts: list[dict], cats: list[dict], path: str) -> dict:
    dcount = {"created": 0, "updated": 0, "unchanged": 0}
    by_code = {d.code: d for d in session.scalars(select(Department))}
    for d in depts:
        row = by_code.get(d["code"])
        if row is None:
            row = by_code[d["code"]] = Department(code=d["code"], name=d["name"])
            session.add(row)
            dcount["created"] += 1
        elif row.name != d["name"]:
            row.name = d["name"]
            dcount["updated"] += 1
        else:
            dcount["unchanged"] += 1
    session.flush()

    ccount = {"created": 0, "updated": 0, "unchanged": 0}
    stored = {c.code: c for c in session.scalars(select(Category))}
    in_file = set()
    for c in cats:  # parents first (sorted by depth)
        in_file.add(c["code"])
        p = parent_code(c["code"])
        values = {"name": c["name"], "name_en": c["name_en"], "kind": c["kind"],
                  "limit_value": c["limit_value"], "limit_unit": c["limit_unit"],
                  "department_id": by_code[c["department"]].id if c["department"] else None,
                  "parent_id": stored[p].id if p else None, "active": c["active"],
                  "std_code": c["std_code"], "std_source": c["std_source"], "confirm_first": c["confirm"],
                  "confirm_limit_value": c["confirm_limit_value"], "confirm_limit_unit": c["confirm_limit_unit"],
                  "filing_criteria": c["filing_criteria"]}
        row = stored.get(c["code"])
        if row is None:
            row = stored[c["code"]] = Category(code=c["code"], **values)
            session.add(row)
            session.flush()
            ccount["created"] += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            ccount["updated"] += 1
        else:
            ccount["unchanged"] += 1
    session.flush()
    return {"path": path, "departments": dcount, "categories": ccount,
            "not_in_file": sorted(set(stored) - in_file)}
