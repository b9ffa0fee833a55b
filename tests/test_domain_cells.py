"""Cell rules of issue 13 (item 9): the household band applies to the kinds of cell it is meant for,
street/town codes follow their type ranges, special-purpose cells (专属网格) carry their kind."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from gridmap.boundaries.models import KIND_ALIASES, KINDS, SPECIAL_CELL_KINDS, Area
from gridmap.db import transaction
from gridmap.redraw import balance
from gridmap.redraw.editor import next_ranged_code
from gridmap.redraw.problems import DraftError

NW = "330999001001"
SE = "330999002002"


def test_street_and_town_codes_follow_their_type_ranges():
    used = {"330999001", "330999002", "330999100"}
    assert next_ranged_code("330999", used, "street", "street") == "330999003"      # 街道 001–099
    assert next_ranged_code("330999", used, "street", "town") == "330999101"        # 镇 100–199
    assert next_ranged_code("330999", used, "street", "township") == "330999200"    # 乡 200–399
    full = {f"330999{k:03d}" for k in range(1, 100)}
    with pytest.raises(DraftError, match="no free street code left under 330999 in 001–099"):
        next_ranged_code("330999", full, "street", "street")
    assert next_ranged_code("330999", full, "street", "town") == "330999100"
    # communities as before: 居委会 001–199, 村委会 200–399
    assert next_ranged_code("330999001", {"330999001001"}, "community", "village") == "330999001200"


def test_special_purpose_cells_carry_their_kind():
    assert set(SPECIAL_CELL_KINDS) <= set(KINDS["cell"]) and "base" in KINDS["cell"]
    assert KIND_ALIASES["学校"] == "school" and KIND_ALIASES["专属网格"] == "special"
    assert KIND_ALIASES["镇"] == "town" and KIND_ALIASES["乡"] == "township" and KIND_ALIASES["村"] == "village"


def test_the_household_band_applies_to_urban_residential_cells_only(sessionmaker, loaded_city):
    with sessionmaker() as s:
        before = balance.balance_report(s, target=(302, 303))
    judged = {r["code"]: r["status"] for r in before["cells"]}
    assert "not_applicable" not in judged.values()  # the test city: residents' committees, base cells
    with transaction(sessionmaker) as s:
        school = s.scalar(select(Area).where(Area.code == NW + "001"))
        school.kind = "school"
        s.scalar(select(Area).where(Area.code == SE)).kind = "village"
    with sessionmaker() as s:
        rep = balance.balance_report(s, target=(302, 303))
        rows = {r["code"]: r for r in rep["cells"]}
        assert rows[NW + "001"]["status"] == "not_applicable" and rows[NW + "001"]["kind"] == "school"
        village = [r for r in rep["cells"] if r["community"] == SE]
        assert village and all(r["status"] == "not_applicable" for r in village)
        assert rep["summary"]["not_applicable"] == 1 + len(village)
        assert all(o["status"] in ("low", "high") and o["code"] != NW + "001" for o in rep["outliers"])
        assert rep["applies_to"] == ["residents/base"]
        # configurable: villages' base cells too, or every cell
        rep2 = balance.balance_report(s, target=(302, 303), applies_to="residents/base,village/base")
        assert all(r["status"] != "not_applicable" for r in rep2["cells"] if r["community"] == SE)
        rep3 = balance.balance_report(s, target=(302, 303), applies_to="*/*")
        assert {r["code"]: r["status"] for r in rep3["cells"]} == judged
        with pytest.raises(DraftError, match="unknown kind"):
            balance.balance_report(s, applies_to="residents/castle")
