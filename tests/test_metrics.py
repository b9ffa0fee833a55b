"""Metrics on a small fixture whose expected values are worked out by hand below.

Period: March 2026, Asia/Shanghai = [2026-02-28 16:00 UTC, 2026-03-31 16:00 UTC).
Category limit: 2 natural days, so deadline = dispatch + 48 h. W1 works cell A (west street),
W2 cell B (east street). Times are UTC; h = hours after dispatch.

  C1 A W1  dispatch 03-02 01:00, accept +2h, feedback +24h, closed 03-03 05:00 (on time), satisfaction 5
  C2 A W1  dispatch 03-10 01:00, accept +4h, feedback +72h, closed 03-13 02:00 (late), satisfaction 3
  C3 A W1  dispatch 03-20 01:00, accept +1h, extension approved (deadline 03-24 01:00), feedback,
           check failed (rework), feedback 03-23 04:00 (+75h), closed 03-23 05:00 (on time after extension)
  C4 B W2  dispatch 03-25 01:00, accept +1h, open (deadline 03-27: due, not closed)
  C5 B     dispatch 03-05 01:00 to W2, W2 returns it, re-dispatched 03-06 01:00 to W1; open (deadline 03-08)
  C6 A W1  self-handled 03-15 01:00, closed 03-15 02:00 (no deadline: on time)
  C7 A W1  filed and dispatched 02-28 17:00 (= 03-01 01:00 Shanghai: in the period), open (deadline 03-02)
  C8 A W1  filed and dispatched 03-31 17:00 (= 04-01 Shanghai: outside), open
  C9 A W1  dispatched 02-20, handled 02-28 01:00 (before the period), closed 03-01 01:00 (late)
  C10 A W1 dispatched 03-03 01:00 (deadline 03-05), parked 03-03 03:00: left out of "due"

All cases: filed 8 (C1–C7, C10), due 8 (closed in period: C1 C2 C3 C6 C9; deadline in period, open:
C4 C5 C7), closed 5, on time 3 (C1 C3 C6) → 结案率 5/8, 按期结案率 3/8 (excluding the extended C3:
2/7), 延期率 1/8; handled in period 4 (C1 C2 C3 C6), reworked 1 → 返工率 1/4; received = 1 return +
7 current dispatches in period (C1 C2 C3 C4 C5 C7 C10) → 回退率 1/8; checks 6 (C1 C2 C3×2 C6 C9), passed 5;
acceptance (2+4+1+1)/4 = 2 h; handling (24+72+75)/3 = 57 h; self-handled 1; satisfaction (5+3)/2, 2;
满意率 1/2 (C1's 5 is satisfied, C2's 3 is not). 督办: C4 (twice) and C7 in March → supervised 2, both
open; C8 is supervised in April (outside); by street: west 1 (C7), east 1 (C4).
"""
from __future__ import annotations

import datetime as dt

import pytest

from gridmap.accounts.scope import case_filter
from gridmap.db import transaction
from gridmap.incidents.lifecycle import apply_action
from gridmap.incidents.metrics import MetricsError, compute_metrics
from gridmap.web.metrics_api import bp
from tests.casehelpers import (ADMIN, auth, make_case, make_category, make_token, make_user, make_worker,
                               worker_actor)

UTC = dt.timezone.utc
CELL_A, CELL_B = "330999001001001", "330999002001001"
MARCH = {"date_from": dt.date(2026, 3, 1), "date_to": dt.date(2026, 3, 31)}


def t(month: int, day: int, hour: int = 1, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def fixture_cases(sessionmaker, loaded_city):
    with transaction(sessionmaker) as s:
        cat = make_category(s, "test.litter", limit=(2, "natural_days"))
        w1 = make_worker(s, "W1", cell_code=CELL_A, name="张伟")
        w2 = make_worker(s, "W2", cell_code=CELL_B, name="王芳")
        a1, a2 = worker_actor(w1), worker_actor(w2)

        def mk(state, worker, cell, d0, times, **kw):
            times = {"file": d0, "dispatch": d0, **times}
            return make_case(s, state, category=cat, worker=worker, cell_code=cell, at=d0 - dt.timedelta(minutes=5),
                             times=times, **kw)

        mk("evaluated", w1, CELL_A, t(3, 2), {"accept": t(3, 2, 3), "feedback": t(3, 3, 1), "verify_pass": t(3, 3, 5),
                                              "evaluate": t(3, 5)}, satisfaction=5)
        mk("evaluated", w1, CELL_A, t(3, 10), {"accept": t(3, 10, 5), "feedback": t(3, 13, 1),
                                               "verify_pass": t(3, 13, 2), "evaluate": t(3, 14)}, satisfaction=3)
        c3 = mk("in_progress", w1, CELL_A, t(3, 20), {"accept": t(3, 20, 2)})
        apply_action(s, c3.id, "request_extension", a1, comment="需物业配合", now=t(3, 21))
        apply_action(s, c3.id, "approve_extension", ADMIN, now=t(3, 21, 2))
        assert c3.deadline_at == t(3, 24)
        apply_action(s, c3.id, "feedback", a1, comment="已清理", now=t(3, 23, 1))
        apply_action(s, c3.id, "verify_fail", ADMIN, comment="未清理干净", now=t(3, 23, 2))
        apply_action(s, c3.id, "feedback", a1, comment="已彻底清理", now=t(3, 23, 4))
        apply_action(s, c3.id, "verify_pass", ADMIN, now=t(3, 23, 5))
        c4 = mk("in_progress", w2, CELL_B, t(3, 25), {"accept": t(3, 25, 2)})
        c5 = mk("dispatched", w2, CELL_B, t(3, 5), {})
        apply_action(s, c5.id, "return", a2, comment="需要城管处理", now=t(3, 5, 2))
        apply_action(s, c5.id, "dispatch", ADMIN, data={"worker_id": w1.id}, now=t(3, 6))
        mk("closed", w1, CELL_A, t(3, 15), {"self_handle": t(3, 15), "verify_pass": t(3, 15, 2)}, self_handled=True)
        c7 = mk("dispatched", w1, CELL_A, t(2, 28, 17), {})
        c8 = mk("dispatched", w1, CELL_A, t(3, 31, 17), {})
        mk("closed", w1, CELL_A, t(2, 20), {"accept": t(2, 20, 2), "feedback": t(2, 28, 1), "verify_pass": t(3, 1)})
        c10 = mk("dispatched", w1, CELL_A, t(3, 3), {})
        apply_action(s, c10.id, "park", ADMIN, comment="待专项资金", now=t(3, 3, 3))
        # 督办: C4 twice in March (one case), C7 once in March, C8 in April (outside March)
        apply_action(s, c4.id, "supervise", ADMIN, comment="督办", now=t(3, 26))
        apply_action(s, c4.id, "supervise", ADMIN, comment="再次督办", now=t(3, 27))
        apply_action(s, c7.id, "supervise", ADMIN, comment="督办", now=t(3, 2))
        apply_action(s, c8.id, "supervise", ADMIN, comment="督办", now=t(4, 2))
        return {"w1": w1.id, "w2": w2.id}


def test_metrics_for_the_whole_city(sessionmaker, fixture_cases):
    with sessionmaker() as s:
        [row] = compute_metrics(s, group_by="none", **MARCH)
    assert row["group"] is None
    assert (row["filed"], row["due"], row["closed"], row["closed_on_time"]) == (8, 8, 5, 3)
    assert row["closure_rate"] == pytest.approx(5 / 8)
    assert row["on_time_rate"] == pytest.approx(3 / 8)
    assert row["extension_rate"] == pytest.approx(1 / 8)
    assert (row["handled"], row["reworked"]) == (4, 1) and row["rework_rate"] == pytest.approx(1 / 4)
    assert (row["received"], row["returned"]) == (8, 1) and row["return_rate"] == pytest.approx(1 / 8)
    assert (row["verified"], row["verify_passed"]) == (6, 5) and row["verify_pass_rate"] == pytest.approx(5 / 6)
    assert row["avg_accept_hours"] == pytest.approx(2.0)
    assert row["avg_handle_hours"] == pytest.approx(57.0)
    assert row["self_handled"] == 1
    assert (row["satisfaction_mean"], row["satisfaction_count"]) == (pytest.approx(4.0), 2)
    assert (row["satisfied"], row["satisfaction_rate"]) == (1, pytest.approx(0.5))
    assert (row["supervised"], row["supervised_open"]) == (2, 2)


def test_excluding_extended_cases_from_on_time(sessionmaker, fixture_cases):
    with sessionmaker() as s:
        [row] = compute_metrics(s, group_by="none", exclude_extended=True, **MARCH)
    assert (row["closed_on_time"], row["on_time_denominator"]) == (2, 7)
    assert row["on_time_rate"] == pytest.approx(2 / 7)
    assert row["closure_rate"] == pytest.approx(5 / 8)  # unchanged


def test_metrics_by_street_and_by_worker(sessionmaker, fixture_cases):
    with sessionmaker() as s:
        streets = {r["group"]["code"]: r for r in compute_metrics(s, group_by="street", **MARCH)}
        workers = {r["group"]["code"]: r for r in compute_metrics(s, group_by="worker", **MARCH)}
        cells = compute_metrics(s, group_by="cell", **MARCH)
        [district] = compute_metrics(s, group_by="district", **MARCH)
    assert set(streets) == {"330999001", "330999002"}
    west, east = streets["330999001"], streets["330999002"]
    assert west["group"]["name"] == "西街道" and west["group"]["level"] == "street"
    assert (west["filed"], west["due"], west["closed"], west["closed_on_time"]) == (6, 6, 5, 3)
    assert west["closure_rate"] == pytest.approx(5 / 6) and west["on_time_rate"] == pytest.approx(0.5)
    assert (east["filed"], east["due"], east["closed"], east["received"], east["returned"]) == (2, 2, 0, 3, 1)
    assert east["closure_rate"] == 0.0 and east["rework_rate"] is None and east["avg_accept_hours"] == pytest.approx(1.0)
    assert (west["supervised"], east["supervised"]) == (1, 1)
    assert east["satisfaction_rate"] is None and west["satisfaction_rate"] == pytest.approx(0.5)
    # by worker: C5 now belongs to W1, but its return counts for W2 who returned it
    assert set(workers) == {"W1", "W2"} and workers["W1"]["group"]["name"] == "张伟"
    w1, w2 = workers["W1"], workers["W2"]
    assert (w1["due"], w1["closed"], w1["received"], w1["returned"]) == (7, 5, 6, 0)
    assert (w2["due"], w2["closed"], w2["received"], w2["returned"]) == (1, 0, 2, 1)
    assert w2["return_rate"] == pytest.approx(0.5) and w1["return_rate"] == 0.0
    assert w1["avg_accept_hours"] == pytest.approx(7 / 3)
    assert sum(r["due"] for r in cells) == 8 and [r["group"]["code"] for r in cells] == [CELL_A, CELL_B]
    assert district["group"]["code"] == "330999" and (district["filed"], district["due"], district["closed"]) == (8, 8, 5)


def test_period_boundaries_follow_shanghai_dates(sessionmaker, fixture_cases):
    with sessionmaker() as s:
        [feb] = compute_metrics(s, date_from=dt.date(2026, 2, 1), date_to=dt.date(2026, 2, 28))
        [apr1] = compute_metrics(s, date_from=dt.date(2026, 4, 1), date_to=dt.date(2026, 4, 1))
    # February: C9 (filed 02-20) only; C7 was filed at 01:00 on 1 March Shanghai time
    assert feb["filed"] == 1 and feb["closed"] == 0
    assert apr1["filed"] == 1 and apr1["due"] == 0  # C8: deadline 04-02 17:00 UTC = 04-03 Shanghai


def test_scope_filter_restricts_the_cases(sessionmaker, fixture_cases):
    with transaction(sessionmaker) as s:
        _, east = make_user(s, "east", "street", area_code="330999002")
        [row] = compute_metrics(s, scope_filter=case_filter(s, east), **MARCH)
    assert (row["filed"], row["due"], row["closed"], row["returned"]) == (2, 2, 0, 1)


def test_bad_parameters(sessionmaker):
    with sessionmaker() as s:
        with pytest.raises(MetricsError, match="unknown group_by 'planet'"):
            compute_metrics(s, group_by="planet", **MARCH)
        with pytest.raises(MetricsError, match="ends .* before it starts"):
            compute_metrics(s, date_from=dt.date(2026, 3, 2), date_to=dt.date(2026, 3, 1))
        [empty] = compute_metrics(s, **MARCH)
    assert empty["due"] == 0 and empty["closure_rate"] is None and empty["avg_accept_hours"] is None


@pytest.fixture
def api(app, sessionmaker, fixture_cases):
    if "metrics_api" not in app.blueprints:
        app.register_blueprint(bp)
    with transaction(sessionmaker) as s:
        make_user(s, "city", "city")
        make_user(s, "east", "street", area_code="330999002")
        tokens = {"city": make_token(s, "city"), "east": make_token(s, "east")}
    return app.test_client(), tokens


def test_metrics_api(api):
    client, tokens = api
    r = client.get("/api/v1/metrics?group_by=street&from=2026-03-01&to=2026-03-31", headers=auth(tokens["city"]))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["group_by"] == "street" and body["timezone"] == "Asia/Shanghai"
    assert "closed / due" in body["definitions"]["closure_rate"]
    assert "due to close" in body["definitions"]["due"]
    assert "satisfied (satisfaction 4 or 5) / evaluated" in body["definitions"]["satisfaction_rate"]
    assert "supervise" in body["definitions"]["supervised"]
    rows = {row["group"]["code"]: row for row in body["rows"]}
    assert rows["330999001"]["closure_rate"] == pytest.approx(5 / 6)
    assert rows["330999002"]["return_rate"] == pytest.approx(1 / 3)
    assert rows["330999001"]["satisfaction_rate"] == pytest.approx(0.5) and rows["330999002"]["supervised"] == 1
    # the east street's user sees only the east street
    r = client.get("/api/v1/metrics?from=2026-03-01&to=2026-03-31&exclude_extended=1", headers=auth(tokens["east"]))
    [row] = r.get_json()["rows"]
    assert (row["due"], row["closed"]) == (2, 0) and r.get_json()["exclude_extended"] is True
    assert "left out" in r.get_json()["definitions"]["on_time_rate"]


@pytest.mark.parametrize("query, needle", [
    ("group_by=planet", "group_by"),
    ("from=2026-13-01", "'from' must be a date"),
    ("from=2026-03-31&to=2026-03-01", "before it starts"),
    ("exclude_extended=maybe", "exclude_extended"),
    ("from=2000-01-01&to=2026-01-01", "longer than"),
])
def test_metrics_api_rejects_bad_parameters(api, query, needle):
    client, tokens = api
    r = client.get(f"/api/v1/metrics?{query}", headers=auth(tokens["city"]))
    assert r.status_code == 400 and needle in r.get_json()["error"]


def test_metrics_api_needs_a_login(api):
    client, _ = api
    assert client.get("/api/v1/metrics").status_code == 401
