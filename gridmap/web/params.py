"""Parameters from outside, parsed and range-checked in one place: query-string numbers (a 400 that
names the parameter) and ids in URL paths (``IdConverter``, installed as the ``int`` converter of
every route: ASCII digits only, at most ``gridmap.db.MAX_ID`` (2^31-1, the INTEGER id columns), so
``/cases/²`` and ``/cases/9223372036854775808`` answer 404 like any unknown id instead of
overflowing the database)."""
from __future__ import annotations

import math
import re

from flask import request
from werkzeug.routing import IntegerConverter, ValidationError

from gridmap.db import MAX_ID
from gridmap.web.errors import APIError


def int_arg(name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise APIError(f"parameter {name!r} must be a whole number, got {raw[:20]!r}", field=name) from None
    if not lo <= v <= hi:
        raise APIError(f"parameter {name!r} must be from {lo} to {hi}, got {v}", field=name)
    return v


def float_arg(name: str, *, required: bool = True, default: float | None = None,
              lo: float | None = None, hi: float | None = None) -> float | None:
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        if required:
            raise APIError(f"missing parameter {name!r}", field=name)
        return default
    try:
        v = float(raw)
    except ValueError:
        raise APIError(f"parameter {name!r} must be a number, got {raw[:40]!r}", field=name) from None
    if not math.isfinite(v):
        raise APIError(f"parameter {name!r} must be a finite number", field=name)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise APIError(f"parameter {name!r} must be between {lo} and {hi}, got {v}", field=name)
    return v


_ASCII_ID = re.compile(r"[0-9]{1,19}")


class IdConverter(IntegerConverter):
    """``<int:…>`` in every route: ASCII digits (``str.isdigit`` and ``\\d`` accept ``²`` and ``١``),
    0 … ``MAX_ID``; anything else does not match the route (404)."""

    regex = r"[0-9]{1,19}"

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):  # noqa: A002
        cap = MAX_ID if max is None or max > MAX_ID else max
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=cap, signed=False)

    def to_python(self, value: str) -> int:
        if not _ASCII_ID.fullmatch(value):
            raise ValidationError()
        return super().to_python(value)


def is_id_text(value: str) -> bool:
    """True when ``value`` is an id as a path or a CSV would give it (ASCII digits, ≤ ``MAX_ID``)."""
    return bool(_ASCII_ID.fullmatch(value)) and int(value) <= MAX_ID


def install_converters(app) -> None:
    """Before any blueprint is registered: ``<int:…>`` means ``IdConverter``."""
    app.url_map.converters["int"] = IdConverter
