"""Query-string parameters of the JSON API: parsed, range-checked, or refused with a 400 that
names the parameter. One place, so every endpoint words its refusals the same way."""
from __future__ import annotations

import math

from flask import request

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
