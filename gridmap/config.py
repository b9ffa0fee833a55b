"""Settings, read from the environment (GRIDMAP_*) with sensible defaults.

Owns: every knob a deployment turns. Nothing else in gridmap reads os.environ for settings.
"""
from __future__ import annotations

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
}


def _coerce(value: str, default):
    if isinstance(default, bool):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, float):
        return float(value)
    if isinstance(default, int):
        return int(value)
    return value


def load_config(instance_path: str | os.PathLike, overrides: dict | None = None) -> dict:
    """Build the app config: defaults < GRIDMAP_* environment < explicit overrides."""
    cfg: dict = {}
    for key, default in DEFAULTS.items():
        env = os.environ.get(f"GRIDMAP_{key}")
        cfg[f"GRIDMAP_{key}"] = default if env is None or env == "" else _coerce(env, default)
    instance = Path(instance_path)
    if not cfg["GRIDMAP_DATABASE_URL"]:
        cfg["GRIDMAP_DATABASE_URL"] = f"sqlite:///{instance / 'gridmap.sqlite'}"
    cfg["SECRET_KEY"] = os.environ.get("GRIDMAP_SECRET_KEY") or _instance_secret(instance)
    cfg["JSON_AS_ASCII"] = False
    if overrides:
        cfg.update(overrides)
    return cfg


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
