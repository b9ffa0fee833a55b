"""The taxonomy: loading data/categories.json, idempotent upserts, bad files, lookups, limits, the CLI."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from gridmap.assign.models import Department
from gridmap.db import transaction
from gridmap.incidents.categories import (DEFAULT_PATH, CategoryFileError, UnknownCategory, effective_limit,
                                          get_category, load_categories)
from gridmap.incidents.cli_categories import categories_group
from gridmap.incidents.models import Category

REQUIRED_NAMES = [
    # events and components
    "市容环境", "宣传广告", "施工管理", "街面秩序", "突发事件", "其他事件", "公用设施", "道路交通", "园林绿化", "房屋土地",
    # 9+X
    "实有人口", "特殊人群", "重点青少年", "社会治安", "校园及周边安全", "护路护线",
    # disputes
    "矛盾纠纷", "邻里纠纷", "婚姻家庭纠纷", "损害赔偿纠纷", "房屋宅基地纠纷", "村务管理纠纷", "劳资纠纷", "物业纠纷",
    "征地拆迁纠纷", "医疗纠纷", "其他纠纷",
    # hazards
    "消防安全隐患", "燃气安全隐患", "自建房安全隐患", "防汛防台隐患", "安全生产隐患", "交通安全隐患", "地质灾害隐患",
    "民生服务", "走访", "12345工单",
]


def _doc() -> dict:
    return json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))


def _write(tmp_path, doc, name="cats.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return p


def _counts(sessionmaker) -> tuple[int, int]:
    with sessionmaker() as s:
        return s.scalar(select(func.count()).select_from(Category)), s.scalar(select(func.count()).select_from(Department))


def test_load_the_shipped_taxonomy(sessionmaker):
    n_cats = len(_doc()["categories"])
    with transaction(sessionmaker) as s:
        rep = load_categories(s)
    assert rep["categories"] == {"created": n_cats, "updated": 0, "unchanged": 0}
    assert rep["departments"]["created"] == len(_doc()["departments"])
    with sessionmaker() as s:
        names = set(s.scalars(select(Category.name)))
        assert [n for n in REQUIRED_NAMES if n not in names] == []
        labour = get_category(s, "dispute.labour")
        assert labour.department.code == "labour" and labour.kind == "dispute"
        assert get_category(s, "dispute.neighbour").department_id is None
        assert {c.kind for c in s.scalars(select(Category))} == {"event", "component", "governance", "dispute",
                                                                  "hazard", "service"}
        # kinds and limits inherited from parents
        water = get_category(s, "city.emergency.waterlogging")
        assert water.kind == "event" and water.limit_value is None
        assert effective_limit(water) == (1.0, "urgent_hours", "city.emergency")
        assert effective_limit(get_category(s, "city.environment")) == (3.0, "working_days", "city")
        assert effective_limit(get_category(s, "hazard.gas.leak")) == (1.0, "urgent_hours", "hazard.gas.leak")
        assert get_category(s, "city.environment.litter").parent.code == "city.environment"
        # every category resolves a time limit
        assert all(effective_limit(c) is not None for c in s.scalars(select(Category)))


def test_load_is_idempotent_and_updates_by_code(sessionmaker, tmp_path):
    with transaction(sessionmaker) as s:
        load_categories(s)
    with sessionmaker() as s:
        ids = dict(s.execute(select(Category.code, Category.id)).all())
    with transaction(sessionmaker) as s:
        rep = load_categories(s)
    assert rep["categories"] == {"created": 0, "updated": 0, "unchanged": len(ids)}
    assert rep["departments"]["created"] == rep["departments"]["updated"] == 0
    doc = _doc()
    for c in doc["categories"]:
        if c["code"] == "hazard.fire":
            c["limit"] = {"value": 6, "unit": "working_hours"}
    doc["categories"] = [c for c in doc["categories"] if c["code"] != "visit.enterprise"]
    doc["categories"].append({"code": "hazard.fire.lithium", "name": "锂电池储能隐患"})
    with transaction(sessionmaker) as s:
        rep = load_categories(s, _write(tmp_path, doc))
    assert rep["categories"]["created"] == 1 and rep["categories"]["updated"] == 1
    assert rep["not_in_file"] == ["visit.enterprise"]  # left alone: cases may refer to it
    with sessionmaker() as s:
        assert dict(s.execute(select(Category.code, Category.id)).all()).items() >= ids.items()
        new = get_category(s, "hazard.fire.lithium")
        assert new.kind == "hazard" and effective_limit(new) == (6.0, "working_hours", "hazard.fire")


def test_a_bad_file_changes_nothing_and_names_every_problem(sessionmaker, tmp_path):
    with transaction(sessionmaker) as s:
        load_categories(s)
    before = _counts(sessionmaker)
    doc = _doc()
    doc["departments"].append({"code": "port_authority", "name": "港航管理局"})
    doc["categories"] += [
        {"code": "hazard.flood.typhoon", "name": "台风", "limit": {"value": 2, "unit": "hours"}},
        {"code": "hazard.bridge", "name": "桥梁", "limit": {"value": 1.5, "unit": "working_days"}},
        {"code": "orphan.child", "name": "孤儿", "kind": "event"},
        {"code": "dispute.tenancy", "name": "租赁纠纷", "department": "courts"},
        {"code": "dispute.neighbour", "name": "重复"},
        {"code": "Hazard.Fire2", "name": "大写", "kind": "hazard", "limit": {"value": 1, "unit": "working_days"}},
        {"code": "newtop", "name": "无时限", "kind": "event"},
        {"code": "service.pets", "name": "宠物", "limt": {"value": 1, "unit": "working_days"}},
    ]
    doc["categories"][0]["name"] = "城市管理事件（改）"  # a valid change that must not be written either
    with pytest.raises(CategoryFileError) as ei:
        with transaction(sessionmaker) as s:
            load_categories(s, _write(tmp_path, doc))
    msg = str(ei.value)
    for needle in ("hazard.flood.typhoon: unknown limit unit 'hours'", "hazard.bridge: working_days must be whole",
                   "orphan.child: parent orphan is neither", "dispute.tenancy: unknown department 'courts'",
                   "dispute.neighbour: duplicate code", "Hazard.Fire2: a code is lower-case",
                   "newtop: no time limit", "service.pets: unknown key 'limt'"):
        assert needle in msg, needle
    assert len(ei.value.problems) == 8
    assert _counts(sessionmaker) == before
    with sessionmaker() as s:
        assert get_category(s, "city").name == "城市管理事件"
        assert s.scalar(select(Department).where(Department.code == "port_authority")) is None


@pytest.mark.parametrize("content, needle", [
    ("{not json", "not valid UTF-8 JSON"),
    ("[]", "must hold a JSON object"),
    ('{"departments": [], "categories": []}', "'categories' must be a non-empty list"),
    ('{"categories": [{"code": "x", "name": "x", "kind": "event", "limit": {"value": -1, "unit": "natural_days"}}]}',
     "limit value must be a number > 0"),
    ('{"categories": [{"code": "x", "name": "x", "kind": "event", "limit": {"value": 9000, "unit": "natural_days"}}]}',
     "exceeds 366 natural_days"),
    ('{"categories": [{"code": "x", "name": "x", "kind": "incident", "limit": {"value": 1, "unit": "natural_days"}}]}',
     "x: unknown kind 'incident'"),
])
def test_bad_files_are_explained(sessionmaker, tmp_path, content, needle):
    p = tmp_path / "bad.json"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(CategoryFileError, match="nothing was loaded") as ei:
        with transaction(sessionmaker) as s:
            load_categories(s, p)
    assert needle in str(ei.value)
    assert _counts(sessionmaker) == (0, 0)


def test_unknown_category_suggests_close_codes(sessionmaker):
    with transaction(sessionmaker) as s:
        load_categories(s)
    with sessionmaker() as s:
        with pytest.raises(UnknownCategory) as ei:
            get_category(s, "city.enviroment.liter")
        assert ei.value.suggestions and ei.value.suggestions[0].startswith("city.environment.litter")
        assert "did you mean" in str(ei.value) and "unknown category 'city.enviroment.liter'" in str(ei.value)
        with pytest.raises(UnknownCategory) as ei:
            get_category(s, "labour")
        assert any(x.startswith("dispute.labour") for x in ei.value.suggestions)
        with pytest.raises(UnknownCategory) as ei:
            get_category(s, "消防")
        assert any(x.startswith("hazard.fire") for x in ei.value.suggestions)
        with pytest.raises(UnknownCategory, match="gridmap categories list"):
            get_category(s, "zzzzzzzz")


def test_cli_load_and_list(app, tmp_path):
    runner = app.test_cli_runner()
    res = runner.invoke(categories_group, ["load"])
    assert res.exit_code == 0, res.output
    assert f"categories {len(_doc()['categories'])} created" in res.output
    res = runner.invoke(categories_group, ["load"])
    assert "0 created, 0 updated" in res.output
    res = runner.invoke(categories_group, ["list"])
    assert res.exit_code == 0
    lines = {ln.split("\t")[0]: ln for ln in res.output.splitlines()}
    assert "劳资纠纷" in lines["dispute.labour"] and "→ labour" in lines["dispute.labour"]
    assert "1 urgent_hours (from city.emergency)" in lines["city.emergency.waterlogging"]
    bad = _write(tmp_path, {"categories": [{"code": "x", "name": "x"}]})
    res = runner.invoke(categories_group, ["load", str(bad)])
    assert res.exit_code == 1 and "x: no kind" in res.output and "Traceback" not in res.output
