"""JSON from outside, read in one place: the app's JSON provider checks every body it parses.

Owns: ``CheckedJSONProvider`` (installed as ``app.json`` by ``create_app``, so ``request.get_json``
everywhere, the APIs, Open311, the editor preview, goes through it) and ``json_body()``, the
request's JSON object for the API views, refused with a 400 that names the place otherwise.

Refused: nesting deeper than ``MAX_DEPTH`` (a 100,000-deep array used to end in RecursionError),
integers outside a 64-bit database id (``2**63`` overflowed PostgreSQL's bigint and SQLite's
integer), NaN / Infinity (``NaN`` literals and ``1e400``), and lone surrogates (``"\\ud800"``
decodes to a Python string that no database driver can encode), in values and in keys.
A refusal is a ``JSONRefused`` (a ``ValueError``, so ``get_json(silent=True)`` sees it as
malformed JSON and never as a crash).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import current_app, request
from flask.json.provider import DefaultJSONProvider

from gridmap.web.errors import APIError

MAX_DEPTH = 64
#: any whole number in a body (an id is further bounded by ``gridmap.db.MAX_ID`` where it is read)
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONRefused(ValueError):
    """Well-formed JSON that gridmap does not take; ``field`` is the path of the bad value."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def _refuse_constant(name: str):
    raise JSONRefused(f"{name} is not a number gridmap accepts (only finite numbers)")


def _path(parts: tuple) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def check_value(value: Any) -> Any:
    """``value`` (parsed JSON) when it is acceptable; else ``JSONRefused`` naming the place."""
    stack = [(value, (), 1)]
    while stack:
        v, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise JSONRefused(f"the JSON is nested more than {MAX_DEPTH} levels deep", _path(where))
        if isinstance(v, str):
            if not v.isascii() and _SURROGATE.search(v):
                raise JSONRefused(f"{_path(where)} holds a lone surrogate (not valid Unicode text)", _path(where))
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, int):
            if not INT_MIN <= v <= INT_MAX:
                raise JSONRefused(f"{_path(where)} is a whole number outside -2^63 … 2^63-1", _path(where))
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise JSONRefused(f"{_path(where)} must be a finite number", _path(where))
        elif isinstance(v, dict):
            for k, item in v.items():
                if not k.isascii() and _SURROGATE.search(k):
                    raise JSONRefused("a key holds a lone surrogate (not valid Unicode text)", _path(where))
                stack.append((item, where + (k,), depth + 1))
        elif isinstance(v, list):
            stack.extend((item, where + (i,), depth + 1) for i, item in enumerate(v))
    return value


def loads_checked(s: str | bytes) -> Any:
    """``json.loads`` with the checks above; any refusal is a ``ValueError``."""
    try:
        value = json.loads(s, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONRefused(f"the JSON is nested more than {MAX_DEPTH} levels deep") from None
    return check_value(value)


class CheckedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, whose ``loads`` refuses hostile JSON (see the module docstring)."""

    ensure_ascii = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if kwargs:
            return check_value(super().loads(s, **kwargs))
        return loads_checked(s)


def json_body(*, required: bool = True) -> dict:
    """The request's JSON object (whatever its Content-Type); 400 naming the problem otherwise.

    Without ``required`` an empty body is ``{}``.
    """
    raw = request.get_data(cache=True)
    if not raw:
        if required:
            raise APIError("the request body is empty: send a JSON object", 400)
        return {}
    try:
        data = current_app.json.loads(raw)
    except JSONRefused as e:
        raise APIError(f"the request body was refused: {e.message}", 400,
                       **({"field": e.field} if e.field else {})) from None
    except (ValueError, UnicodeDecodeError):
        raise APIError("the request body is not valid JSON", 400) from None
    if not isinstance(data, dict):
        raise APIError("the request body must be a JSON object", 400)
    return data
