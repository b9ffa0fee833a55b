"""The centre's indicator tree (gridmap.analysis.indicators) and its page, on PostGIS and SpatiaLite.

Cases (limit 2 natural days; T0 = 2026-03-02 01:00 UTC; "now" = T0 + 4 days):
  west street (cell CELL, worker W1)
    a litter   closed on time (T0 + 1…4 h), evaluated 5 (satisfied)
    b litter   dispatched T0 + 1 d + 2 h → deadline T0 + 3 d + 2 h: overdue now; supervised
    c litter   dispatched T0 + 3 d + 2 h → deadline T0 + 5 d + 2 h: open, not overdue
    d dispute  dispatched T0 + 2 h → deadline T0 + 2 d + 2 h: overdue now
  east street (cell OTHER_CELL, worker W2)
    e dispute  dispatched T0 + 2 h, handled T0 + 3 d, closed T0 + 3 d + 1 h: closed late
    f litter   self-handled and closed T0 + 1…2 h, evaluated 2 (not satisfied)
"""
from __future__ import annotations

import datetime as dt

import pytest

from gridmap.accounts.actor import SYSTEM
from gridmap.analysis.indicators import CentreFilter, indicator_rows, indicator_total, parse_filter, quick_period
from gridmap.db import transaction
from tests.casehelpers import ADMIN, CELL, OTHER_CELL, T0, area, make_case, make_category, make_worker
from tests.test_pages import as_user, ids, text, web  # noqa: F401  (fixtures)

D = dt.timedelta(days=1)
H = dt.timedelta(hours=1)
NOW = T0 + 4 * D
MARCH = {"date_from": dt.date(2026, 3, 1), "date_to": dt.date(2026, 3, 31), "period": "custom"}


@pytest.fixture
def centre_cases(sessionmaker, loaded_city):
    with transaction(sessionmaker) as s:
        city = make_category(s, "city", name="城市管理", limit=(2, "natural_days"))
        litter = make_category(s, "city.litter", name="暴露垃圾", parent=city, limit=(2, "natural_days"))
        dispute = make_category(s, "dispute", name="矛盾纠纷", kind="dispute", limit=(2, "natural_days"))
        w1 = make_worker(s, "W1", cell_code=CELL, name="张伟")
        w2 = make_worker(s, "W2", cell_code=OTHER_CELL, name="王芳")
        make_case(s, "evaluated", category=litter, worker=w1, at=T0, satisfaction=5)
        b = make_case(s, "dispatched", category=litter, worker=w1, at=T0 + D)
        from gridmap.incidents.lifecycle import apply_action

        apply_action(s, b.id, "supervise", ADMIN, comment="限期办结", now=T0 + 2 * D)
        make_case(s, "dispatched", category=litter, worker=w1, at=T0 + 3 * D)
        make_case(s, "dispatched", category=dispute, worker=w1, at=T0)
        make_case(s, "closed", category=dispute, worker=w2, cell_code=OTHER_CELL, at=T0,
                  times={"accept": T0 + 3 * H, "feedback": T0 + 3 * D, "verify_pass": T0 + 3 * D + H})
        make_case(s, "evaluated", category=litter, worker=w2, cell_code=OTHER_CELL, at=T0, self_handled=True,
                  satisfaction=2)
    return {"city": city.code, "dispute": dispute.code}


def _rows(s, f, parent=None):
    p = area(s, parent) if parent else None
    return {r["code"]: r for r in indicator_rows(s, SYSTEM, f, parent=p, now=NOW)}


def _filtered(s, category=None, **kw) -> CentreFilter:
    from gridmap.incidents.queries import category_ids_with_children

    f = CentreFilter(**MARCH)
    if category:
        f.category, f.category_ids = category, category_ids_with_children(s, category)
    for k, v in kw.items():
        setattr(f, k, v)
    return f


COUNTS = ("filed", "due", "closed", "open", "overdue_open", "self_handled", "supervised")


def test_tree_levels_and_subtotals(sessionmaker, centre_cases):
    with sessionmaker() as s:
        f = _filtered(s)
        top = _rows(s, f)
        streets = _rows(s, f, "330999")
        comms = _rows(s, f, "330999001")
        total = indicator_total(s, SYSTEM, f, now=NOW)
    assert list(top) == ["330999"] and top["330999"]["has_children"]
    west, east = streets["330999001"], streets["330999002"]
    assert (west["filed"], west["closed"], west["open"], west["overdue_open"]) == (4, 1, 3, 2)
    assert (east["filed"], east["closed"], east["open"], east["overdue_open"]) == (2, 2, 0, 0)
    assert west["supervised"] == 1 and east["supervised"] == 0
    assert west["satisfaction_rate"] == 1.0 and east["satisfaction_rate"] == 0.0
    assert east["on_time_rate"] == pytest.approx(0.5)  # e late, f (no deadline) on time
    for key in COUNTS:  # a parent row is the subtotal of its children
        assert top["330999"][key] == west[key] + east[key] == total[key], key
        assert sum(r[key] for r in comms.values()) == west[key], key
    assert all(r["level"] == "community" and not r["has_children"] for r in comms.values())
    assert comms["330999001001"]["filed"] == 4 and total["any_cases"]


def test_every_column_follows_category_overdue_and_status(sessionmaker, centre_cases):
    with sessionmaker() as s:
        by_cat = _rows(s, _filtered(s, category="city"), "330999")
        overdue = _rows(s, _filtered(s, overdue=True), "330999")
        closed = _rows(s, _filtered(s, status="closed"), "330999")
        open_ = _rows(s, _filtered(s, status="open"), "330999")
        dispute_overdue = _rows(s, _filtered(s, category="dispute", overdue=True), "330999")
    w, e = by_cat["330999001"], by_cat["330999002"]
    # litter only: west a, b, c; east f
    assert (w["filed"], w["closed"], w["open"], w["overdue_open"], w["supervised"]) == (3, 1, 2, 1, 1)
    assert (e["filed"], e["closed"], e["open"], e["self_handled"]) == (1, 1, 0, 1)
    # overdue: b and d (open past deadline), e (closed late)
    w, e = overdue["330999001"], overdue["330999002"]
    assert (w["filed"], w["closed"], w["open"], w["overdue_open"]) == (2, 0, 2, 2)
    assert (e["filed"], e["closed"], e["on_time_rate"], e["satisfaction_rate"]) == (1, 1, 0.0, None)
    # status: closed now (only e: a and f were evaluated since), open now (b, c, d)
    assert (closed["330999001"]["filed"], closed["330999002"]["closed"]) == (0, 1)
    assert closed["330999001"]["open"] == 0
    assert (open_["330999001"]["filed"], open_["330999001"]["open"], open_["330999002"]["filed"]) == (3, 3, 0)
    # two filters at once
    assert (dispute_overdue["330999001"]["open"], dispute_overdue["330999002"]["closed"]) == (1, 1)


def test_the_period_limits_every_column(sessionmaker, centre_cases):
    with sessionmaker() as s:
        f = _filtered(s)
        f.date_from = f.date_to = dt.date(2026, 3, 5)  # c was reported on 03-05 (Shanghai), e closed then
        day = _rows(s, f, "330999")
        f.date_from = f.date_to = dt.date(2026, 2, 1)
        empty = indicator_total(s, SYSTEM, f, now=NOW)
    assert (day["330999001"]["filed"], day["330999001"]["open"], day["330999002"]["closed"]) == (1, 1, 1)
    assert day["330999001"]["supervised"] == 0  # b was supervised on 03-04
    assert not empty["any_cases"] and empty["filed"] == 0


def test_quick_periods_and_bad_filter_values(sessionmaker, centre_cases):
    today = dt.date(2026, 3, 3)
    assert quick_period("last30", today) == (dt.date(2026, 2, 2), today)
    assert quick_period("month", today) == (dt.date(2026, 3, 1), today)
    assert quick_period("last_month", today) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert quick_period("quarter", dt.date(2026, 8, 9)) == (dt.date(2026, 7, 1), dt.date(2026, 8, 9))
    assert quick_period("year", today) == (dt.date(2026, 1, 1), today)
    with sessionmaker() as s:
        f = parse_filter(s, {}, today)
        assert (f.period, f.date_from, f.status, f.problems) == ("last30", dt.date(2026, 2, 2), "all", [])
        f = parse_filter(s, {"period": "month", "from": "2020-01-01"}, today)
        assert (f.period, f.date_from) == ("month", dt.date(2026, 3, 1))  # a quick period wins over stale dates
        f = parse_filter(s, {"from": "2026-03-10", "to": "2026-03-01"}, today)
        assert (f.period, f.date_from, f.date_to) == ("custom", dt.date(2026, 3, 1), dt.date(2026, 3, 10))
        assert [p[1] for p in f.problems] == ["reversed"]
        f = parse_filter(s, {"category": "no.such", "status": "lost", "period": "decade", "overdue": "maybe",
                             "to": "03/01/2026"}, today)
        assert sorted(p[1] for p in f.problems) == ["bad_date", "bad_flag", "unknown_category", "unknown_period",
                                                    "unknown_status"]
        assert (f.category_ids, f.status, f.overdue, f.period) == (None, "all", False, "last30")
        f = parse_filter(s, {"category": "city", "status": "open", "overdue": "1"}, today)
        assert f.category == "city" and len(f.category_ids) == 2 and f.status == "open" and f.overdue
        assert f.query() == {"period": "last30", "from": "2026-02-02", "to": "2026-03-03", "category": "city",
                             "status": "open", "overdue": "1"}


def test_centre_page_messages_rows_and_downloads(web, ids):
    cl = as_user(web[0], "city")
    body = text(cl.get("/centre"))  # the cast's cases are from March 2026: the last 30 days are empty
    assert 'id="no-cases"' in body and "没有符合条件的事件" in body
    assert "近30天" in body and 'data-hotspots-url="/api/v1/hotspots?' in body
    body = text(cl.get("/centre?period=decade&category=no.such&status=lost"))
    assert "没有时段“decade”" in body and "没有类别“no.such”" in body and "没有状态“lost”" in body
    assert 'id="indicators"' in body  # the table is still there, without the bad conditions
    body = text(cl.get("/centre?from=2026-03-01&to=2026-03-31&category=test"))
    assert 'id="no-cases"' not in body and 'class="chart chart-trend"' in body
    assert "kind=cases&amp;format=csv&amp;from=2026-03-01&amp;to=2026-03-31&amp;category=test" in body
    assert "/api/v1/ledgers/all?area=330999&amp;from=2026-03-01" in body
    r = cl.get("/centre/rows?parent=330999001&from=2026-03-01&to=2026-03-31")
    assert r.status_code == 200 and r.get_json()["rows"][0]["filed"] == 2
    for bad in ("/centre/rows", "/centre/rows?parent=999999999", "/centre/rows?parent=%3Cx%3E"):
        assert cl.get(bad).status_code == 404, bad
    export = cl.get("/api/v1/export?kind=cases&format=csv&from=2026-03-01&to=2026-03-31&category=test")
    assert export.status_code == 200 and export.headers["X-Gridmap-Rows"] == "3"
    assert as_user(web[0], "street").get("/centre/rows?parent=330999001").status_code == 403
