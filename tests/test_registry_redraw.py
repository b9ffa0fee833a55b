"""The registry and boundary redrawing: a publish re-places the register, the balance advisor
counts registered households; and the registry package's place in the house (imports)."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from gridmap import redraw
from gridmap.accounts.actor import Actor
from gridmap.boundaries.models import Area
from gridmap.db import transaction
from gridmap.registry.imports import import_file
from gridmap.registry.models import Address, Household
from tests.test_architecture import _imports, _room
from tests.test_registry import CELL_NW1, CELL_NW2, KEYS, _write, load_register

ADMIN = Actor(name="测试管理员", role="admin")


def test_publish_re_places_the_register(sessionmaker, loaded_city, tmp_path):
    load_register(sessionmaker, tmp_path)
    with transaction(sessionmaker) as s:
        import_file(s, "addresses", _write(tmp_path, "a3.csv", "code,address,lon,lat\nA3,定海区解放西路127号,122.023,30.035\n"))
        import_file(s, "households", _write(tmp_path, "h3.csv", "code,address_code,room,size\nH3,A3,1,1\n"), keys=KEYS)
    line = "LINESTRING(122.02 30.032, 122.026 30.035, 122.02 30.038)"  # C1 bulges into C2 over A3
    with transaction(sessionmaker) as s:
        ids = dict(s.execute(select(Area.code, Area.id)).all())
        assert s.scalar(select(Household.cell_id).where(Household.code == "H3")) == ids[CELL_NW2]
        did = redraw.move_edge(s, ADMIN, CELL_NW1, CELL_NW2, line).id
    with transaction(sessionmaker) as s:
        rep = redraw.publish_draft(s, did, ADMIN, reason="test")
    assert rep.registry_moved == 1
    with sessionmaker() as s:
        assert s.scalar(select(Address.cell_id).where(Address.code == "A3")) == ids[CELL_NW1]
        assert s.scalar(select(Household.cell_id).where(Household.code == "H3")) == ids[CELL_NW1]
        assert s.scalar(select(Address.cell_id).where(Address.code == "A2")) == ids[CELL_NW2]


def test_balance_report_uses_registered_households(sessionmaker, loaded_city, tmp_path):
    from gridmap.redraw.balance import balance_report

    with sessionmaker() as s:
        before = {c["code"]: c["households"] for c in balance_report(s, community="330999001001")["cells"]}
    assert before[CELL_NW1] == 301
    load_register(sessionmaker, tmp_path)
    with sessionmaker() as s:
        after = {c["code"]: c for c in balance_report(s, community="330999001001")["cells"]}
    assert after[CELL_NW1]["households"] == 1 and after[CELL_NW1]["population"] == 2
    assert after[CELL_NW1]["status"] == "low" and after["330999001001003"]["households"] == 303


def test_registry_sits_below_incidents():
    pkg = Path(__file__).resolve().parent.parent / "gridmap" / "registry"
    bad = [f"{p.name}:{line} imports {mod}" for p in sorted(pkg.glob("*.py")) for line, mod in _imports(p)
           if _room(mod) in ("incidents", "assign", "hazards", "analysis", "web", "redraw")
           or mod == "gridmap.accounts.scope"]
    assert bad == []
