"""The standard-address register (标准地址库) and fuzzy address matching.

Owns: normalising Chinese address text so that differently written addresses compare equal
(``normalize_address``), splitting an address into its parts (``address_parts``: road, number,
building, unit, room), matching free text against the register (``match_address`` → candidates
with a score in 0..1) and the plausibility of a coordinate pair (``coordinate_problem``). The
register is imported by :mod:`gridmap.registry.imports`.

Leading street and community names (街道/镇/乡, 社区/村) that only one side gives are left out of
the comparison, and two different district or street names cost a penalty. The score compares token bigrams (a token is one Chinese character, a run of digits or a run of
latin letters) of the part of both addresses up to and including the door number (…123号), so
sub-units (幢/单元/室) neither help nor hurt much; an equal door number adds a bonus, a different
one a penalty, and a query without any door number cannot reach a confident score against an
address that has one (a road alone is not a place). Candidates come from an in-memory inverted
bigram index, cached per process and rebuilt when the ``addresses`` table changes, so a match
against ~100k addresses takes milliseconds.
"""
from __future__ import annotations

import math
import re
import threading
import unicodedata
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridmap.registry.models import Address

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


_PARTS_RE = re.compile(
    r"^(?P<road>[^\d]*?)(?P<number>\d+(?:-\d+)?)[号弄]"
    r"(?:(?P<building>\d+)幢)?(?:(?P<unit>\d+)单元)?(?:(?P<room>\d+(?:-\d+)?))?")


def address_parts(text: str) -> dict:
    """Road, number, building, unit and room of an address, where its text shows them (else None).

    ``舟山市定海区解放西路125号3幢2单元301室`` → road 解放西路, number 125, building 3, unit 2, room 301.
    """
    m = _PARTS_RE.match(_admin(normalize_address(text))[1])
    out = {k: None for k in ("road", "number", "building", "unit", "room")}
    if m:
        for k in out:
            v = m.group(k)
            out[k] = v[:80 if k == "road" else 20] if v else None
    return out


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


_ADMIN_RE = re.compile(r"^(?P<district>[\u4e00-\u9fff]{1,6}?(?:区|县)(?![路街巷弄道]))?"
                       r"(?P<street>[\u4e00-\u9fff]{1,6}?(?:街道|镇|乡)(?![路街巷弄道]))?"
                       r"(?P<community>[\u4e00-\u9fff]{1,6}?(?:社区|村)(?![路街巷弄道]))?")


def _admin(norm: str) -> tuple[dict, str]:
    """The leading district / street (街道, 镇, 乡) / community (社区, 村) names and the rest."""
    m = _ADMIN_RE.match(norm)
    return {k: m.group(k) for k in ("district", "street", "community")}, norm[m.end():]


def _align_admin(query_norm: str, cand_norm: str) -> tuple[str, str, float]:
    """Both addresses with the street and community names only one of them gives dropped (a
    reporter often leaves them out, a register often has them), and a penalty when both name a
    district, or a street, and the names differ (same road, another place)."""
    qa, qrest = _admin(query_norm)
    ca, crest = _admin(cand_norm)
    penalty = 0.0
    for level, weight in (("district", 0.3), ("street", 0.2)):
        if qa[level] and ca[level] and qa[level] != ca[level]:
            penalty += weight
    keep = [lvl for lvl in ("street", "community") if qa[lvl] and ca[lvl]]

    def rebuild(a, rest):
        return (a["district"] or "") + "".join(a[lvl] for lvl in keep) + rest
    return rebuild(qa, qrest), rebuild(ca, crest), penalty


def address_score(query_norm: str, cand_norm: str) -> float:
    """Similarity of two normalised addresses in 0..1 (1 only when they are equal)."""
    if not query_norm or not cand_norm:
        return 0.0
    if query_norm == cand_norm:
        return 1.0
    query_norm, cand_norm, penalty = _align_admin(query_norm, cand_norm)
    if query_norm == cand_norm:
        return round(0.97 - penalty, 4)
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
    score = 0.9 * min(max(head, 0.0), 1.0) + 0.1 * full - penalty
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


# ----------------------------------------------------------------------------- coordinates

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


def register_changed() -> None:
    """Tell this process's match index that the register was written (an import, a re-placement)."""
    _generation[0] += 1
