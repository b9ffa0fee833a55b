"""The balance advisor: households per cell against a band, and re-partition proposals that become drafts."""
from __future__ import annotations

import numpy as np
import pytest
import shapely

from gridmap.accounts.actor import Actor
from gridmap import redraw
from gridmap.redraw import balance
from gridmap.boundaries.service import check_stored, counts, load_level
from gridmap.db import transaction

ADMIN = Actor(name="管理员", role="admin")
NW = "330999001001"


def test_synthetic_points_are_inside_and_uniform():
    poly = shapely.Polygon([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)])  # an L
    xy = balance.synthetic_points(poly, 3000, np.random.default_rng(3))
    assert xy.shape == (3000, 2)
    assert shapely.contains_xy(poly, xy[:, 0], xy[:, 1]).all()
    # three unit squares: about a third in each
    upper = (xy[:, 1] > 1).mean()
    assert 0.28 < upper < 0.39


@pytest.mark.parametrize("n", [3, 7])
def test_proposal_is_balanced_contiguous_and_exact(n):
    comm = shapely.MultiPolygon([shapely.box(122.00, 30.00, 122.03, 30.02)])
    xy = balance.synthetic_points(comm, 2800, np.random.default_rng(n))
    p = balance.propose_partition(comm, xy, n, seed=1)
    assert len(p.cells) == n and p.total_households == 2800
    assert sum(c["households"] for c in p.cells) == 2800
    assert p.largest_deviation_pct <= 5.0
    geoms = np.array([c["geometry"] for c in p.cells], dtype=object)
    assert all(c["parts"] == 1 for c in p.cells)  # contiguous
    assert shapely.coverage_is_valid(geoms)
    union = shapely.coverage_union_all(geoms)
    assert shapely.symmetric_difference(union, comm).area < 1e-12
    assert all(0.2 < c["polsby_popper"] <= 1.0 for c in p.cells)
    # numbered north to south
    ys = [c["geometry"].centroid.y for c in p.cells]
    assert ys[0] >= ys[-1]


def test_proposal_balances_uneven_points():
    comm = shapely.MultiPolygon([shapely.box(0.0, 0.0, 0.02, 0.02)])
    rng = np.random.default_rng(0)
    dense = balance.synthetic_points(shapely.box(0.0, 0.0, 0.005, 0.005), 1500, rng)
    sparse = balance.synthetic_points(comm, 500, rng)
    p = balance.propose_partition(comm, np.vstack([dense, sparse]), 4, seed=2)
    assert p.largest_deviation_pct <= 10.0
    small = min(c["area_m2"] for c in p.cells)
    big = max(c["area_m2"] for c in p.cells)
    assert big > 3 * small  # the dense corner gets small cells


def test_report_lists_outliers(sessionmaker, loaded_city):
    with sessionmaker() as s:
        rep = balance.balance_report(s, community=NW, target=(302, 303))
        assert rep["summary"]["cells"] == 4 and rep["summary"]["households"] == 1210
        assert {c["code"]: c["status"] for c in rep["cells"]} == {
            f"{NW}001": "low", f"{NW}002": "ok", f"{NW}003": "ok", f"{NW}004": "high"}
        assert [c["code"] for c in rep["outliers"]][0] == f"{NW}001"
        assert balance.balance_report(s, street="330999001")["summary"]["cells"] == 8
        with pytest.raises(redraw.DraftNotFound):
            balance.balance_report(s, community="330999009009")
        with pytest.raises(balance.BalanceError):
            balance.balance_report(s, community=NW, target=(500, 300))


def test_proposal_becomes_a_draft_then_publishes(sessionmaker, loaded_city):
    with transaction(sessionmaker) as s:
        p = balance.propose_for_community(s, NW, 3, seed=4)
        assert p.points_origin == "cells" and p.total_households == 1210
        assert p.largest_deviation_pct <= 5.0
        assert counts(s)["cell"] == 16  # a proposal changes nothing by itself
        d = balance.proposal_to_draft(s, ADMIN, NW, p)
        did = d.id
        assert d.status == "draft" and "balance" in d.title
        assert not [x for x in redraw.draft_problems(d) if x.severity == "error"]
        rows = {a.code: a for a in redraw.draft_areas(s, did)}
        assert sum(1 for a in rows.values() if a.parent_code == NW and a.action == "retire") == 1
    with transaction(sessionmaker) as s:
        redraw.publish_draft(s, did, ADMIN, reason="balance")
    with sessionmaker() as s:
        assert not [x for x in check_stored(s) if x.severity == "error"]
        cells = load_level(s, "cell")
        mine = cells[cells["parent_code"] == NW]
        assert len(mine) == 3 and int(mine["households"].sum()) == 1210
        assert all(abs(int(h) - 1210 / 3) <= 0.05 * 1210 / 3 for h in mine["households"])
