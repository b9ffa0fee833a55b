"""Routing reasons and system comments stored as codes with parameters and rendered per language
(gridmap.web.reasons), on PostGIS and SpatiaLite; old rows (text only) stay readable."""
from __future__ import annotations

import json

from gridmap.accounts.actor import SYSTEM
from gridmap.incidents.intake import create_case
from gridmap.incidents.models import Case, CaseEvent
from gridmap.web.reasons import render_route_reason
from tests.casehelpers import CELL, OTHER_CELL, T0
from tests.test_pages import as_user, ids, text, web  # noqa: F401  (fixtures)


def _intake(sessionmaker, lon, lat, **extra) -> int:
    with sessionmaker() as s:
        c = create_case(s, {"category": "test.litter", "description": "垃圾未及时清运",
                            "location": {"lon": lon, "lat": lat}, **extra}, SYSTEM, source="patrol", now=T0)
        s.commit()
        return c.id


def test_intake_stores_codes_and_the_pages_render_them_per_language(web, ids, sessionmaker):
    app = web[0]
    cid = _intake(sessionmaker, 122.006, 30.036)
    with sessionmaker() as s:
        c = s.get(Case, cid)
        assert c.route_reason == f"cell {CELL}: primary worker W1 张伟"  # the English text stays
        assert c.route_reason_code == "cell.primary"
        assert json.loads(c.route_reason_params) == {"cell": CELL, "worker": "W1 张伟"}
        evs = {e.action: e for e in s.query(CaseEvent).filter(CaseEvent.case_id == cid)}
        assert (evs["file"].comment_code, evs["dispatch"].comment_code) == ("auto_filed", "auto_dispatched")
    city = as_user(app, "city")
    zh = text(city.get(f"/cases/{cid}"))
    assert f"网格 {CELL}：专职网格员 W1 张伟" in zh and "上报时自动立案" in zh and "上报时自动派遣" in zh
    assert "auto-filed on intake" not in zh and "版本" not in zh  # no internal version counter either
    en = text(city.get(f"/cases/{cid}?lang=en"))
    assert f"cell {CELL}: primary worker W1 张伟" in en and "filed automatically on intake" in en
    # an old row (text only, no code) is shown as stored
    old = text(city.get(f"/cases/{ids['mine']}?lang=en"))
    assert f"cell {CELL}, primary worker 张伟" in old
    # the JSON API gives both
    from tests.casehelpers import make_token

    with sessionmaker() as s:
        tok = make_token(s, "city")
        s.commit()
    body = city.get(f"/api/v1/cases/{cid}", headers={"Authorization": f"Bearer {tok}"}).get_json()
    routing = body["routing"]
    assert routing["reason_code"] == "cell.primary" and routing["reason_params"]["cell"] == CELL


def test_snapped_and_fallback_reasons_render_with_their_parameters(web, ids, sessionmaker):
    app = web[0]
    with app.test_request_context("/?lang=en"):
        text_en = render_route_reason("cell.primary", {"cell": CELL, "worker": "W1 张伟", "snapped_m": 42,
                                                       "snapped_cell": CELL}, "stored")
        assert text_en == f"cell {CELL}: primary worker W1 张伟 (snapped 42 m to cell {CELL})"
        q = render_route_reason("fallback.queue", {"level": "district", "area": "330999 测试区", "cell": OTHER_CELL},
                                "stored")
        assert q == f"nobody on duty in cell {OTHER_CELL}; the territory answers: queue of district 330999 测试区"
        assert render_route_reason("cell.primary", {"cell": CELL}, "stored text") == "stored text"  # missing worker
        assert render_route_reason("no.such.code", {}, "stored text") == "stored text"
        assert render_route_reason(None, None, None) is None
    with app.test_request_context("/?lang=zh"):
        zh = render_route_reason("escalated.staff", {"level": "street", "area": "330999001 西街道",
                                                     "worker": "W100 钱七", "escalation": 2}, "stored")
        assert zh == "超时升级（第 2 级）：街道/乡镇 330999001 西街道 的 W100 钱七"
        assert render_route_reason("returned", json.dumps({"by": "张伟", "reason": "需要城管处理"}), "x") == \
            "张伟 回退：需要城管处理"
