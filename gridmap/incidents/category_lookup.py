"""Finding a category from what people and other systems write for it.

Owns: ``CategoryResolver``, which answers "which category is this?" for the three spellings in use:
the internal dotted code (``city.environment.litter``), the numeric standard code (GB/T 30428 /
CJ/T 214 layout: ``0102``, or qualified by kind ``事件0102`` / ``event:0102`` / ``部件 0101`` /
``component:0101``, since the event and the component lists both start at 01) and the exact
Chinese (or English) name, as 12345 hotline exports write it (``垃圾满溢``; also
``市容环境/垃圾满溢`` or ``0151 垃圾满溢``). A standard code or a name that fits two categories is
refused naming both (``AmbiguousCategory``); an unknown one gets close matches (``UnknownCategory``).
Built once from the stored categories, so a bulk import resolves millions of rows without a query each.
"""
from __future__ import annotations

import difflib
import re
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.incidents.models import Category

#: words that qualify a standard code with its kind
_KIND_WORDS = {"事件": "event", "event": "event", "e": "event", "部件": "component", "component": "component",
               "c": "component"}
_QUALIFIED_RE = re.compile(r"^\s*(事件|部件|event|component|e|c)\s*[:：\-\s]?\s*([0-9]{2}(?:[0-9]{2})?)\s*$",
                           re.IGNORECASE)
_STD_RE = re.compile(r"^[0-9]{2}(?:[0-9]{2})?$")
_CODE_AND_NAME_RE = re.compile(r"^\s*([0-9]{2}(?:[0-9]{2})?)\s+(\S.*)$")
_PATH_SEPARATORS = re.compile(r"\s*[/／>＞\\|｜—–]\s*|\s+-\s+")


class UnknownCategory(LookupError):
    """No category has this code; ``suggestions`` holds close codes."""

    def __init__(self, code: str, suggestions: list[str]):
        self.code = code
        self.suggestions = suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else \
            "; list them with `gridmap categories list`"
        super().__init__(f"unknown category {code!r}{hint}")


def _suggest(query: str, rows: list[tuple[str, str]], n: int = 5) -> list[str]:
    if not query:
        return []
    label = {c: f"{c} ({name})" for c, name in rows}
    out: list[str] = []
    q = query.lower()
    # same last segment or a substring of a code or name (e.g. "litter", "消防")
    for c, name in sorted(rows):
        if c.rsplit(".", 1)[-1] == q.rsplit(".", 1)[-1] or q in c or (name and query in name):
            out.append(c)
    for c in difflib.get_close_matches(q, [c for c, _ in rows], n=n, cutoff=0.6):
        if c not in out:
            out.append(c)
    by_name = {name: c for c, name in rows if name}
    for name in difflib.get_close_matches(query, list(by_name), n=n, cutoff=0.5):
        if by_name[name] not in out:
            out.append(by_name[name])
    return [label[c] for c in out[:n]]


class AmbiguousCategory(LookupError):
    """A standard code or name that fits several categories; ``candidates`` names them all."""

    def __init__(self, query: str, candidates: list[Category]):
        self.query = query
        self.candidates = candidates
        named = "; ".join(_label(c) for c in candidates)
        hint = ""
        if _STD_RE.match(query.strip()):
            hint = f" (write 事件{query.strip()} or 部件{query.strip()}, or the internal code)"
        super().__init__(f"category {query!r} is ambiguous: it fits {named}{hint}")


def _label(c: Category) -> str:
    std = f" {c.std_code}" if c.std_code else ""
    return f"{c.code} ({c.name}, {c.kind}{std})"


class CategoryResolver:
    """Resolve category references against a fixed set of categories (see the module docstring)."""

    def __init__(self, categories: Iterable[Category]):
        self.categories = list(categories)
        self.by_code = {c.code: c for c in self.categories}
        self.by_std: dict[str, list[Category]] = {}
        self.by_kind_std: dict[tuple[str, str], list[Category]] = {}
        self.by_name: dict[str, list[Category]] = {}
        for c in self.categories:
            if c.std_code:
                self.by_std.setdefault(c.std_code, []).append(c)
                self.by_kind_std.setdefault((c.kind, c.std_code), []).append(c)
            for n in {c.name, c.name_en}:
                if n:
                    self.by_name.setdefault(_norm(n), []).append(c)

    @classmethod
    def load(cls, session: Session) -> "CategoryResolver":
        return cls(session.scalars(select(Category)))

    def resolve(self, ref) -> Category:
        """The one category ``ref`` names; ``UnknownCategory`` or ``AmbiguousCategory`` otherwise."""
        q = ref.strip() if isinstance(ref, str) else ""
        if not q:
            raise UnknownCategory(q, [])
        hit = self.by_code.get(q)
        if hit is not None:
            return hit
        m = _QUALIFIED_RE.match(q)
        if m:
            return self._one(q, self.by_kind_std.get((_KIND_WORDS[m.group(1).lower()], m.group(2)), []))
        if _STD_RE.match(q):
            return self._one(q, self.by_std.get(q, []))
        found = self.by_name.get(_norm(q))
        if found:
            return self._one(q, found)
        m = _CODE_AND_NAME_RE.match(q)  # "0151 垃圾满溢": the code and the name must agree
        if m:
            named = [c for c in self.by_name.get(_norm(m.group(2)), []) if c.std_code == m.group(1)]
            if named:
                return self._one(q, named)
        parts = [p for p in _PATH_SEPARATORS.split(q) if p]
        if len(parts) > 1:  # "市容环境/垃圾满溢": the last part's name, under an ancestor named by the others
            leaf = [c for c in self.by_name.get(_norm(parts[-1]), [])]
            if len(leaf) > 1:
                ups = {_norm(p) for p in parts[:-1]}
                leaf = [c for c in leaf if ups & {_norm(a.name) for a in _ancestors(c)}]
            if leaf:
                return self._one(q, leaf)
        raise UnknownCategory(q, _suggest(q, [(c.code, c.name) for c in self.categories]))

    def _one(self, q: str, found: list[Category]) -> Category:
        if not found:
            raise UnknownCategory(q, _suggest(q, [(c.code, c.name) for c in self.categories]))
        unique = list({c.code: c for c in found}.values())
        if len(unique) > 1:
            raise AmbiguousCategory(q, sorted(unique, key=lambda c: c.code))
        return unique[0]


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", s).casefold()


def _ancestors(c: Category) -> list[Category]:
    out, seen = [], set()
    p = c.parent
    while p is not None and p.id not in seen:
        seen.add(p.id)
        out.append(p)
        p = p.parent
    return out
