"""Hot spots an analyst can trust: the two-sided permutation test, BH FDR, zeros never hot, rates.

Data are drawn in each test on a regular lattice of square areas (queen contiguity), so the answer
is known: counts independent of place contain no cluster; a planted block of raised counts is one.
"""
from __future__ import annotations

import numpy as np
import pytest
import shapely

from gridmap.accounts.actor import SYSTEM
from gridmap.analysis import hotspots as hs
from gridmap.analysis.common import AnalysisError
from gridmap.db import transaction
from tests.test_analysis import NW, add_cases, at, cats, centre  # noqa: F401  (cats is a fixture)

SIDE = 20  # 20 × 20 = 400 areas


def lattice(side: int = SIDE):
    xs = np.linspace(122.0, 122.0 + 0.01 * side, side + 1)
    ys = np.linspace(30.0, 30.0 + 0.01 * side, side + 1)
    cells = [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(side) for i in range(side)]
    w, _ = hs.contiguity(np.asarray(cells, dtype=object))
    return w


@pytest.fixture(scope="module")
def w():
    return lattice()


def test_bh_qvalues_match_the_step_up_rule_and_esda_cutoff():
    from esda import fdr

    rng = np.random.default_rng(11)
    p = np.concatenate([rng.uniform(0, 0.002, 30), rng.uniform(0, 1, 370)])
    q = hs.bh_qvalues(p)
    assert (q >= p - 1e-15).all() and (q <= 1).all()
    for alpha in (0.01, 0.05, 0.10):
        m = len(p)
        srt = np.sort(p)
        passing = np.flatnonzero(srt <= alpha * np.arange(1, m + 1) / m)
        k = passing[-1] + 1 if len(passing) else 0  # the step-up rule: the largest k with p_(k) ≤ kα/m
        assert int((q <= alpha).sum()) == k
        if k:  # esda's cut-off rejects the same areas (it uses a strict <)
            assert int((p < fdr(p, alpha)).sum()) + int((p == fdr(p, alpha)).sum()) >= k - 1


@pytest.mark.parametrize("mean", [0.15, 2.0])
def test_counts_independent_of_place_give_almost_no_significant_area(w, mean):
    """Under the complete null BH at level α keeps P(any discovery) ≤ α. Over 10 independent draws at
    α = 0.10 the expected number of draws with any discovery is ≤ 1; P(≥ 4 of 10) < 0.013. Without
    the correction about α·m areas (here up to ~40) come out significant at 90 % on counts that are
    not mostly ties (mean 2); on zero-heavy counts (mean 0.15, the demo's 300 cases over 1,968
    cells) the two-sided test with ties on both sides is conservative already."""
    draws_with_discoveries = 0
    total_fdr = 0
    uncorrected = []
    for seed in range(10):
        rng = np.random.default_rng(1000 + seed)
        y = rng.poisson(mean, SIDE * SIDE).astype(float)
        r = hs.local_gi(y, w, permutations=999, seed=seed + 1)
        sig = int((r["class"] != "not_significant").sum())
        total_fdr += sig
        draws_with_discoveries += sig > 0
        raw = hs.local_gi(y, w, permutations=999, seed=seed + 1, correction="none")
        uncorrected.append(int((raw["class"] != "not_significant").sum()))
        # an area with no cases is never hot, with or without the correction
        assert not np.any((y == 0) & np.char.startswith(raw["class"].astype(str), "hot"))
        # the p-value is two-sided: a zero among many zeros is in neither tail
        if mean < 1:
            lonely_zero = (y == 0) & (np.asarray(w.sparse @ y).ravel() == 0)
            assert (r["p_value"][lonely_zero] > 0.3).all()
    assert draws_with_discoveries <= 3, draws_with_discoveries
    assert total_fdr <= 10, total_fdr
    m = SIDE * SIDE
    assert np.mean(uncorrected) < 0.15 * m, uncorrected  # each area's test keeps its level (≤ α·m expected)
    if mean > 1:  # on counts that are not mostly ties, the uncorrected test rejects about α·m: FDR did the work
        assert np.mean(uncorrected) > 0.02 * m, uncorrected


def test_esdas_one_sided_fold_is_what_called_zeros_significant(w):
    """The old p (esda's p_sim, folded one-sided) on zero-heavy counts: many zero areas get p ≤ 0.1;
    the two-sided test gives none of them that."""
    rng = np.random.default_rng(7)
    y = rng.poisson(0.15, SIDE * SIDE).astype(float)
    _z, p_old = hs.gi_star(y, w, permutations=999, seed=3)
    r = hs.local_gi(y, w, permutations=999, seed=3, correction="none")
    zeros = y == 0
    assert (p_old[zeros] <= 0.10).sum() > 50
    assert (r["class"][zeros] != "not_significant").sum() < (p_old[zeros] <= 0.10).sum() / 5


def test_a_planted_cluster_is_found(w):
    rng = np.random.default_rng(42)
    y = rng.poisson(1.0, SIDE * SIDE).astype(float)
    cluster = np.zeros((SIDE, SIDE), dtype=bool)
    cluster[4:10, 5:11] = True  # a 6 × 6 block: 36 areas
    cluster = cluster.ravel()
    y[cluster] = rng.poisson(5.0, cluster.sum())
    y[cluster & (y == 0)] = 0  # keep any zero the draw gave: it must not come out hot
    r = hs.local_gi(y, w, permutations=999, seed=9)
    hot = np.char.startswith(r["class"].astype(str), "hot")
    inner = np.zeros((SIDE, SIDE), dtype=bool)
    inner[5:9, 6:10] = True  # the block without its rim
    inner = inner.ravel()
    assert hot[inner].mean() >= 0.9  # recall inside the cluster
    assert hot[cluster].mean() >= 0.6
    # outside the cluster and its one-area rim, (almost) nothing is hot
    rim = np.zeros((SIDE, SIDE), dtype=bool)
    rim[3:11, 4:12] = True
    assert hot[~rim.ravel()].sum() <= 2
    assert not hot[y == 0].any()
    assert (r["direction"][hot] == 1).all() and (r["q_value"][hot] <= 0.10).all()
    # direction and significance from the same test: a hot area's observed Gi* beats most replications
    assert (r["sim_z"][hot] > 0).all()


def test_analytic_mode_and_bad_correction(w):
    y = np.arange(SIDE * SIDE, dtype=float) % 3
    r = hs.local_gi(y, w, permutations=0)
    assert np.allclose(r["q_value"], hs.bh_qvalues(r["p_value"]))
    with pytest.raises(AnalysisError) as e:
        hs.local_gi(y, w, correction="bonferroni")
    assert e.value.field == "correction"


def test_hotspots_service_zero_areas_never_hot_and_rates(sessionmaker, loaded_city, cats, backend):
    """On the test city (16 cells): a busy block of 4 cells beside an empty cell; the empty cell is
    never hot however busy its neighbours; the rate measure divides by households."""
    counts = {NW[0]: 30, NW[1]: 25, NW[2]: 28, NW[3]: 30, "330999001002001": 2}
    with transaction(sessionmaker) as s:
        items = []
        for code, n in counts.items():
            x, y = centre(loaded_city, code)
            items += [(code, x, y, at(1 + k % 20)) for k in range(n)]
        add_cases(s, cats["litter"], items)
    with sessionmaker() as s:
        fc = hs.hotspots(s, SYSTEM, level="cell", date_from="2026-03-01", date_to="2026-03-31", correction="none")
        fdr = hs.hotspots(s, SYSTEM, level="cell", date_from="2026-03-01", date_to="2026-03-31")
        rate = hs.hotspots(s, SYSTEM, level="cell", date_from="2026-03-01", date_to="2026-03-31", measure="rate")
        with pytest.raises(AnalysisError):
            hs.hotspots(s, SYSTEM, measure="per_capita")
    assert fdr["correction"] == "fdr" and "Benjamini" in fdr["correction_method"]
    for out in (fc, fdr, rate):
        for f in out["features"]:
            p = f["properties"]
            if p["count"] == 0:
                assert not p["class"].startswith("hot"), p
            if p["class"] != "not_significant":
                assert p["direction"] == (1 if p["class"].startswith("hot") else -1)
    props = {f["properties"]["code"]: f["properties"] for f in fdr["features"]}
    assert all(props[c]["q_value"] >= props[c]["p_value"] for c in props)
    assert any(props[c]["class"].startswith("hot") for c in NW)
    r = {f["properties"]["code"]: f["properties"] for f in rate["features"]}
    assert rate["measure"] == "rate"
    assert r[NW[0]]["per_1000_households"] == pytest.approx(30 * 1000 / r[NW[0]]["households"], abs=1e-3)
