"""The standard-address register (标准地址库) and fuzzy address matching.

Owns: normalising Chinese address text so that differently written addresses compare equal
(``normalize_address``), importing the register from CSV (``import_addresses_csv``: UTF-8 or GBK,
idempotent by code, bad rows reported by line number while the rest import) and matching free
text against it (``match_address`` → candidates with a score in 0..1).

The score compares token bigrams (a token is one Chinese character, a run of digits or a run of
latin letters) of the part of both addresses up to and including the door number (…123号), so
sub-units (幢/单元/室) neither help nor hurt much; an equal door number adds a bonus, a different
one a penalty, and a query without any door number cannot reach a confident score against an
address that has one (a road alone is not a place). Candidates come from an in-memory inverted
bigram index, cached per process and rebuilt when the ``addresses`` table changes, so a match
against ~100k addresses takes milliseconds.
"""
from __future__ import annotations

import csv
import io
import math
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gridmap.incidents.models import Address
from gridmap.textio import csv_problem, csv_reader

# ----------------------------------------------------------------------------- normalisation

#: province-level names dropped from the start of an address (with or without their suffix)
PROVINCES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽",
    "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西",
    "甘肃", "青海", "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
)
#: prefecture-level city names dropped from the start (the province's cities, and any ``XX市``
#: directly after a dropped province)
CITIES = ("杭州", "宁波", "温州", "嘉兴", "湖州", "绍兴", "金华", "衢州", "舟山", "台州", "丽水")

_PROVINCE_RE = re.compile(
    r"^(?:中国|中华人民共和国)?(?:(?:" + "|".join(sorted(PROVINCES, key=len, reverse=True)) +
    r")(?:省|市|特别行政区|壮族自治区|回族自治区|维吾尔自治区|自治区)?)")
_CITY_RE = re.compile(r"^(?:" + "|".join(CITIES) + r")市?")
_ANY_CITY_RE = re.compile(r"^[\u4e00-\u9fff]{2,4}?市")

_CN_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUM = "零〇○一二两三四五六七八九十百千"
#: markers after which a number is a house / building / unit / room number
_NUM_MARKERS = "号|弄|幢|栋|座|单元|室|楼|层|组|巷"
_CN_BEFORE_MARKER = re.compile(rf"第?([{_CN_NUM}]+)(?=(?:{_NUM_MARKERS}))")


def chinese_number(s: str) -> int | None:
    """一百零五 → 105, 十二 → 12, 二十 → 20, 一二三 → 123 (digit by digit); None if not a number."""
    if not s or any(c not in _CN_DIGITS and c not in _CN_UNITS for c in s):
        return None
    if not any(c in _CN_UNITS for c in s):
        return int("".join(str(_CN_DIGITS[c]) for c in s))
    total, digit = 0, None
    for c in s:
        if c in _CN_DIGITS:
            if digit is not None and _CN_DIGITS[c] != 0:
                return None  # 二三十: not a well-formed numeral
            digit = _CN_DIGITS[c] or None
        else:
            total += (digit if digit is not None else 1) * _CN_UNITS[c]
            digit = None
    return total + (digit or 0)


def _cn_repl(m: re.Match) -> str:
    n = chinese_number(m.group(1))
    return m.group(0) if n is None else str(n)


def normalize_address(s: str | None) -> str:
    """A comparison form of an address.

    Full-width → half-width, lower case, spaces and punctuation removed (a ``-`` between digits is
    kept: 3-2-301), Chinese numerals before 号/弄/幢/单元/室/楼… turned into digits, ``第`` before
    such numbers dropped, 栋/座/号楼/# → 幢, a trailing 室 dropped, and the province (浙江省) and
    city (舟山市) prefixes dropped.
    """
    s = unicodedata.normalize("NFKC", s or "").lower()
    s = re.sub(r"\s+", "", s)
    s = s.replace("號", "号").replace("棟", "栋").replace("單元", "单元")
    # prefixes: province, then the city after it (any XX市), or a known city on its own
    m = _PROVINCE_RE.match(s)
    if m and m.end() > 0:
        s = s[m.end():]
        m2 = _ANY_CITY_RE.match(s)
        if m2:
            s = s[m2.end():]
    s = _CITY_RE.sub("", s, count=1)
    # numbers
    s = _CN_BEFORE_MARKER.sub(_cn_repl, s)
    s = re.sub(r"第(?=\d)", "", s)
    s = re.sub(r"(\d+)号楼", r"\1幢", s)
    s = re.sub(r"(\d+)(?:栋|座|#楼|#)", r"\1幢", s)
    s = re.sub(r"(\d)室$", r"\1", s)
    # punctuation: keep CJK, letters, digits and a dash between two digits
    s = re.sub(r"(?<=\d)[-－—–~～](?=\d)", "\x00", s)
    s = "".join(ch for ch in s if ch == "\x00" or ch.isalnum())
    return s.replace("\x00", "-")[:300]


_TOKEN_RE = re.compile(r"\d+|[a-z]+|-|.", re.S)
_HEAD_RE = re.compile(r"^.*?\d+号")  # up to and including the first door number
_DOOR_RE = re.compile(r"(\d+)(号|弄)")


def _bigrams(norm: str) -> set[str]:
    toks = _TOKEN_RE.findall(norm)
    if len(toks) < 2:
        return set(toks)
    return {toks[i] + "\x01" + toks[i + 1] for i in range(len(toks) - 1)}


def _head(norm: str) -> str:
    m = _HEAD_RE.match(norm)
    return m.group(0) if m else norm


def _doors(norm: str) -> tuple:
    return tuple(_DOOR_RE.findall(_head(norm)))


def address_score(query_norm: str, cand_norm: str) -> float:
    """Similarity of two normalised addresses in 0..1 (1 only when they are equal)."""
    if not query_norm or not cand_norm:
        return 0.0
    if query_norm == cand_norm:
        return 1.0
    qh, ch = _head(query_norm), _head(cand_norm)
    qb, cb = _bigrams(qh), _bigrams(ch)
    inter = len(qb & cb)
    cov = inter / len(qb) if qb else 0.0
    dice = 2 * inter / (len(qb) + len(cb)) if qb and cb else 0.0
    head = 0.6 * cov + 0.4 * dice
    qd, cd = _doors(query_norm), _doors(cand_norm)
    if qd and cd:
        head += 0.12 if qd == cd else -0.25
    elif cd and not qd:
        head -= 0.15  # a road or a community alone is not a place
    fb_q, fb_c = _bigrams(query_norm), _bigrams(cand_norm)
    full = 2 * len(fb_q & fb_c) / (len(fb_q) + len(fb_c)) if fb_q and fb_c else 0.0
    score = 0.9 * min(max(head, 0.0), 1.0) + 0.1 * full
    return round(min(max(score, 0.0), 0.99), 4)


# ----------------------------------------------------------------------------- in-memory index

@dataclass
class _AddressIndex:
    stamp: tuple
    ids: np.ndarray
    norms: list[str]
    postings: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, rows, stamp) -> "_AddressIndex":
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        norms = [r[1] or "" for r in rows]
        post: dict[str, list[int]] = {}
        for i, n in enumerate(norms):
            for b in _bigrams(n):
                lst = post.get(b)
                if lst is None:
                    post[b] = [i]
                else:
                    lst.append(i)
        return cls(stamp, ids, norms, {k: np.asarray(v, dtype=np.int32) for k, v in post.items()})

    def candidates(self, query_norm: str, k: int = 200) -> np.ndarray:
        """Row positions of the ``k`` addresses sharing the most bigrams with the query."""
        lists = [self.postings[b] for b in _bigrams(query_norm) if b in self.postings]
        if not lists:
            return np.array([], dtype=np.int64)
        counts = np.bincount(np.concatenate(lists), minlength=len(self.ids))
        nz = np.flatnonzero(counts)
        if len(nz) > k:
            nz = nz[np.argpartition(-counts[nz], k - 1)[:k]]
        return nz


_index_cache: dict[str, _AddressIndex] = {}
_index_lock = threading.Lock()
_generation = [0]  # bumped by imports in this process (catches same-length rewrites)


def _stamp(session: Session) -> tuple:
    row = session.execute(select(func.count(Address.id), func.max(Address.id),
                                 func.sum(func.length(Address.normalized)))).one()
    return (_generation[0],) + tuple(str(v) for v in row)


def _get_index(session: Session) -> _AddressIndex:
    key = str(session.get_bind().url)
    stamp = _stamp(session)
    with _index_lock:
        idx = _index_cache.get(key)
    if idx is not None and idx.stamp == stamp:
        return idx
    rows = session.execute(select(Address.id, Address.normalized).order_by(Address.id)).all()
    idx = _AddressIndex.build(rows, stamp)
    with _index_lock:
        _index_cache[key] = idx
    return idx


def match_address(session: Session, text: str, limit: int = 5) -> list[tuple[Address, float]]:
    """The best matching register addresses for ``text``, best first, with their scores."""
    q = normalize_address(text)
    if not q:
        return []
    # an exact normalised match is found by the column index, without the in-memory index
    exact = session.scalars(select(Address).where(Address.normalized == q).order_by(Address.id).limit(limit)).all()
    if exact and len(exact) >= limit:
        return [(a, 1.0) for a in exact]
    idx = _get_index(session)
    pos = idx.candidates(q)
    scored = sorted(((address_score(q, idx.norms[p]), int(idx.ids[p])) for p in pos),
                    key=lambda t: (-t[0], t[1]))
    seen = {a.id for a in exact}
    top = [(s, i) for s, i in scored if i not in seen][: limit - len(exact)]
    rows = {a.id: a for a in session.scalars(select(Address).where(Address.id.in_([i for _, i in top])))} if top else {}
    return [(a, 1.0) for a in exact] + [(rows[i], s) for s, i in top if i in rows and s > 0]


# ----------------------------------------------------------------------------- CSV import

class AddressImportError(ValueError):
    """The file as a whole cannot be imported (unreadable, missing columns)."""


def _open_text(path: str) -> io.TextIOBase:
    from gridmap.boundaries.geocode import GeocodeError, sniff_encoding

    try:
        enc = sniff_encoding(path)
    except GeocodeError as e:
        raise AddressImportError(str(e)) from None
    except OSError as e:
        raise AddressImportError(f"{path}: {e.strerror or e}") from None
    return open(path, "r", encoding=enc, newline="")


def import_addresses_csv(session: Session, path: str | Path, *, snap_m: float = 100.0) -> dict:
    """Import ``code,address,lon,lat[,crs]`` rows (crs per row, default WGS84) into the register.

    Idempotent by code: an existing code is updated when its text or coordinates changed,
    else counted as unchanged. Bad rows are reported as ``(line, reason)`` and skipped; the rest
    are written in the caller's transaction. Returns counts and the bad rows.
    """
    from gridmap.geo.coords import CRSError, parse_crs, to_wgs84, valid_lonlat_mask

    path = str(path)
    report = {"inserted": 0, "updated": 0, "unchanged": 0, "bad": []}
    good: dict[str, dict] = {}
    with _open_text(path) as fh:
        reader = csv_reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise AddressImportError(f"{path}: the file is empty") from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise AddressImportError(f"{path}: cannot read the header: {e}") from None
        cols = [h.strip().lower().lstrip("\ufeff") for h in header]
        missing = [c for c in ("code", "address", "lon", "lat") if c not in cols]
        if missing:
            raise AddressImportError(f"{path}: no column {', '.join(missing)}; the header is {', '.join(header)}")
        pos = {c: cols.index(c) for c in ("code", "address", "lon", "lat", "crs") if c in cols}
        crs_cache: dict[str, object] = {}
        line = reader.line_num
        while True:
            start = line + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as e:
                report["bad"].append((start, csv_problem(start, reader.line_num, e) if isinstance(e, csv.Error)
                                      else f"unreadable row: {e}"))
                line = reader.line_num
                continue
            line = reader.line_num
            if not any(v.strip() for v in row):
                continue
            get = lambda c: row[pos[c]].strip() if c in pos and pos[c] < len(row) else ""  # noqa: E731
            code, text = get("code"), get("address")
            if not code:
                report["bad"].append((start, "code is empty"))
                continue
            if len(code) > 60:
                report["bad"].append((start, "code is longer than 60 characters"))
                continue
            if not text:
                report["bad"].append((start, "address is empty"))
                continue
            if len(text) > 300:
                report["bad"].append((start, "address is longer than 300 characters"))
                continue
            if code in good:
                report["bad"].append((start, f"code {code} repeats line {good[code]['line']}"))
                continue
            crs_name = get("crs") or "wgs84"
            if crs_name not in crs_cache:
                try:
                    crs_cache[crs_name] = parse_crs(crs_name)
                except CRSError as e:
                    crs_cache[crs_name] = e
            crs = crs_cache[crs_name]
            if isinstance(crs, Exception):
                report["bad"].append((start, f"crs: {crs}"))
                continue
            try:
                x, y = float(get("lon")), float(get("lat"))
            except ValueError:
                report["bad"].append((start, f"lon/lat must be numbers, got {get('lon')[:20]!r}, {get('lat')[:20]!r}"))
                continue
            problem = coordinate_problem(x, y, crs)
            if problem:
                report["bad"].append((start, problem))
                continue
            lon, lat = to_wgs84(x, y, crs)
            lon, lat = float(lon), float(lat)
            if not bool(valid_lonlat_mask(lon, lat)):
                report["bad"].append((start, "coordinates out of range after conversion"))
                continue
            good[code] = {"line": start, "code": code, "address": text, "normalized": normalize_address(text),
                          "lon": round(lon, 8), "lat": round(lat, 8)}
    if not good:
        return report
    # cells for the register (vectorized), when boundaries exist
    from gridmap.boundaries.lookup import get_index

    recs = list(good.values())
    cidx = get_index(session)
    if len(cidx):
        res = cidx.locate([r["lon"] for r in recs], [r["lat"] for r in recs], "wgs84", snap_m)
        codes = cidx.level_codes("cell", res.cell)
        for r, c in zip(recs, codes):
            r["cell_code"] = c
    existing: dict[str, tuple] = {}
    keys = list(good)
    for i in range(0, len(keys), 1000):
        for row in session.execute(select(Address.id, Address.code, Address.address, Address.lon, Address.lat,
                                          Address.cell_code).where(Address.code.in_(keys[i:i + 1000]))):
            existing[row.code] = row
    inserts, updates = [], []
    for r in recs:
        fields = {k: r.get(k) for k in ("code", "address", "normalized", "lon", "lat", "cell_code")}
        old = existing.get(r["code"])
        if old is None:
            inserts.append(fields)
        elif (old.address, round(old.lon, 8), round(old.lat, 8), old.cell_code) != (
                r["address"], r["lon"], r["lat"], r.get("cell_code")):
            updates.append({"id": old.id, **fields})
        else:
            report["unchanged"] += 1
    if inserts:
        session.execute(Address.__table__.insert(), inserts)
    if updates:
        session.execute(update(Address), updates)
    session.flush()
    report["inserted"], report["updated"] = len(inserts), len(updates)
    if inserts or updates:
        _generation[0] += 1
    return report


def coordinate_problem(x: float, y: float, crs) -> str | None:
    """Why (x, y) in ``crs`` cannot be a point in China, or None (geographic CRSs only checked)."""
    if not (math.isfinite(x) and math.isfinite(y)):
        return "coordinates must be finite numbers"
    if getattr(crs, "kind", "wgs84") == "epsg":
        return None
    if abs(y) > 90 and abs(y) <= 180 and abs(x) <= 90:
        return f"lon {x} / lat {y} look swapped (lon is east-west, 73–136 in China; lat 3–54)"
    if abs(x) > 180 or abs(y) > 90:
        return f"coordinates out of range: lon {x} must be within -180..180 and lat {y} within -90..90"
    if 73 <= y <= 136 and 3 <= x <= 54:
        return f"lon {x} / lat {y} look swapped (lon is east-west, 73–136 in China; lat 3–54)"
    return None
