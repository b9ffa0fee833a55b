"""Settings, read from the environment (GRIDMAP_*) with sensible defaults.

Owns: every knob a deployment turns. Nothing else in gridmap reads os.environ for settings.
"""
from __future__ import annotations

import math
import os
import secrets
from pathlib import Path

DEFAULTS = {
    # SQLAlchemy URL. Unset: a SpatiaLite file under the instance folder.
    "DATABASE_URL": None,
    # snap distance (metres) for points outside every cell
    "SNAP_M": 100.0,
    # cell code = community code + sequence, formatted with this pattern
    "CELL_CODE_FORMAT": "{community}{seq:03d}",
    # tolerance (metres) for boundary checks: a child may stick out of its parent by this much,
    # siblings may overlap / leave gaps of this width before it counts as an error
    "TOLERANCE_M": 0.5,
    "DEFAULT_LANGUAGE": "zh_CN",
    "TIMEZONE": "Asia/Shanghai",
    "BASEMAP": "vector",
    "TIANDITU_KEY": "",
    # photos attached to cases: largest accepted upload in bytes
    "PHOTO_MAX_BYTES": 5 * 1024 * 1024,
    # address matching: below this score a case goes to the manual-placement queue
    "ADDRESS_MIN_SCORE": 0.8,
    # cases are filed and dispatched to the routed worker at once on intake
    "AUTO_DISPATCH": True,
    # gzip text responses in the app (turn off when a reverse proxy does it)
    "GZIP": True,
    # balance advisor: target band of households per urban cell
    "BALANCE_MIN": 300,
    "BALANCE_MAX": 500,
    # the kinds of cell the band is meant for, as community-kind/cell-kind pairs (comma list; "*" for
    # any): urban residential cells by default, not village or special-purpose cells (专属网格)
    "BALANCE_KINDS": "residents/base",
    # time limits of the steps before and after handling ("VALUE UNIT"; local defaults, unverified):
    # filing (立案) from the report (or from the on-site verification), dispatch (派遣) from filing,
    # the check (核查) from handling
    "FILING_LIMIT": "1 working_hours",
    "DISPATCH_LIMIT": "1 working_hours",
    "CHECK_LIMIT": "4 working_hours",
    # reports of categories marked "confirm" wait for the cell's worker to verify them on site (核实)
    # before filing; 0 files every report at once (auto-filing everywhere)
    "CONFIRM": True,
    # a working-day deadline into a year without calendar data: refused unless this is on (then
    # Monday-Friday, with a warning in the answer)
    "CALENDAR_FALLBACK": False,
    # office hours of a working day, local time (working_hours limits count only these)
    "OFFICE_HOURS": "08:30-12:00,13:30-17:30",
    # an approved extension (延期) adds this ("VALUE UNIT"); empty: the category's limit once more
    "EXTENSION_LIMIT": "",
    # personal data (registry): the key of digests and encryption (unset: instance/pii_key, made
    # once with mode 0600) and, during a key rotation, the old keys (comma-separated)
    "PII_KEY": "",
    "PII_OLD_KEYS": "",
    # login sessions end after this many minutes without a request, and this many hours after login
    "SESSION_IDLE_MINUTES": 120,
    "SESSION_ABSOLUTE_HOURS": 12,
    # set when the app is served over HTTPS: the session cookie gets the Secure flag
    "SECURE_COOKIES": False,
    # login throttling (kept in the database): failures within LOCKOUT_MINUTES per name+address,
    # per address (any names: password spraying) and per name (any addresses)
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,
    "LOGIN_MAX_FAILURES_PER_NAME": 50,
    "LOGIN_LOCKOUT_MINUTES": 15,
    # Open311: also accept the key as ?api_key= in the URL (GeoReport v2 clients); it is masked in
    # the access log, but proxies may still log it. Off: header (X-Api-Key / Bearer) or form body only.
    "OPEN311_QUERY_KEY": False,
    # folder of pg_dump / pg_restore for `gridmap db backup|restore` (empty: PATH, then
    # /usr/lib/postgresql/<newest>/bin)
    "PG_BIN": "",
    # largest request body in bytes (413 above it); JSON bodies have their own, smaller limit
    "MAX_REQUEST_BYTES": 12 * 1024 * 1024,
    "MAX_JSON_BYTES": 4 * 1024 * 1024,
}

#: the accepted range of each numeric setting: NaN, infinities and absurd values are refused at
#: start-up (``GRIDMAP_TOLERANCE_M=nan`` used to switch every topology check of an import off)
RANGES = {
    "SNAP_M": (0.0, 100_000.0),
    "TOLERANCE_M": (0.0, 1000.0),
    "PHOTO_MAX_BYTES": (1024, 100 * 1024 * 1024),
    "ADDRESS_MIN_SCORE": (0.0, 1.0),
    "BALANCE_MIN": (0, 10**7),
    "BALANCE_MAX": (0, 10**7),
    "MAX_REQUEST_BYTES": (1024, 1024**3),
    "MAX_JSON_BYTES": (1024, 1024**3),
}


def check_range(key: str, value, what: str | None = None):
    """``value`` when it is a finite number within ``RANGES[key]``; else ``ValueError`` naming ``what``."""
    lo, hi = RANGES[key]
    name = what or f"GRIDMAP_{key}"
    try:
        ok = not isinstance(value, bool) and math.isfinite(value) and lo <= value <= hi
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}, got {value!r}")
    return value


def check_tolerance_m(value, what: str = "the tolerance (tolerance_m)") -> float:
    """A boundary-check tolerance in metres: finite, 0 … 1000 (NaN would turn every check off)."""
    return float(check_range("TOLERANCE_M", value, what))


def _coerce(value: str, default):
    if isinstance(default, bool):
        return value.strip().lower() in ("1", "true", "yes", "on")
    try:
        if isinstance(default, float):
            return float(value)
        if isinstance(default, int):
            return int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a {type(default).__name__} number") from None
    return value


def load_config(instance_path: str | os.PathLike, overrides: dict | None = None) -> dict:
    """Build the app config: defaults < GRIDMAP_* environment < explicit overrides."""
    cfg: dict = {}
    for key, default in DEFAULTS.items():
        env = os.environ.get(f"GRIDMAP_{key}")
        try:
            cfg[f"GRIDMAP_{key}"] = default if env is None or env == "" else _coerce(env, default)
        except ValueError as e:
            raise ValueError(f"GRIDMAP_{key}: {e}") from None
    instance = Path(instance_path)
    if not cfg["GRIDMAP_DATABASE_URL"]:
        cfg["GRIDMAP_DATABASE_URL"] = f"sqlite:///{instance / 'gridmap.sqlite'}"
    cfg["SECRET_KEY"] = os.environ.get("GRIDMAP_SECRET_KEY") or _instance_secret(instance)
    cfg["JSON_AS_ASCII"] = False
    if overrides:
        cfg.update(overrides)
    for key in RANGES:
        if cfg.get(f"GRIDMAP_{key}") is not None:
            check_range(key, cfg[f"GRIDMAP_{key}"])
    return cfg


def setting(key: str):
    """The value of ``GRIDMAP_<key>`` for the running app (its config), else the default above.

    For services that run inside and outside a request (commands, tests without an app)."""
    try:
        from flask import current_app, has_app_context
    except ImportError:  # pragma: no cover
        return DEFAULTS[key]
    if has_app_context():
        v = current_app.config.get(f"GRIDMAP_{key}")
        if v is not None:
            return v
    return DEFAULTS[key]


def _instance_secret(instance: Path) -> str:
    """A development secret kept in instance/secret_key (0600), never in the code or the repo.

    Production deployments set GRIDMAP_SECRET_KEY instead.
    """
    path = instance / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        instance.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key
