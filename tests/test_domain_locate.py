"""Locate answers the worker (issue 13, item 8): /api/v1/locate, `gridmap locate --json` and
`gridmap geocode` name the responsible worker (code, name, masked phone) and the level of the answer
(primary, substitute, fallback); `gridmap locate` takes negative coordinates. Real PostGIS and SpatiaLite.
"""
from __future__ import annotations

import csv
import datetime as dt
import json

import pytest

from gridmap.assign.models import Absence
from gridmap.db import transaction, utcnow
from tests.casehelpers import CELL, auth, make_token, make_user, make_worker

P = (122.005, 30.035)  # in CELL


@pytest.fixture
def duty(sessionmaker, loaded_city):
    with transaction(sessionmaker) as s:
        w1 = make_worker(s, "W1", cell_code=CELL, name="张伟")
        w1.phone = "13812345678"
        w2 = make_worker(s, "W2", cell_code=None, name="李娜", area_code=CELL[:12])
        w2.phone = "13987654321"
        make_worker(s, "H1", cell_code=None, role="head", name="王网格长", area_code=CELL[:12])
        make_user(s, "centre", "city")
        return {"w1": w1.id, "w2": w2.id, "tok": auth(make_token(s, "centre"))}


def test_the_api_names_the_primary_worker_with_a_masked_phone(client, duty):
    r = client.get(f"/api/v1/locate?lon={P[0]}&lat={P[1]}", headers=duty["tok"])
    assert r.status_code == 200
    out = r.get_json()
    assert out["cell"]["code"] == CELL
    resp = out["responsible"]
    assert resp["level"] == "primary"
    assert resp["worker"]["code"] == "W1" and resp["worker"]["name"] == "张伟"
    assert resp["worker"]["phone"] != "13812345678" and resp["worker"]["phone"].startswith("138")
    assert "5678" in resp["worker"]["phone"] and "*" in resp["worker"]["phone"]
    assert "13812345678" not in r.get_data(as_text=True)


def test_substitute_and_fallback_levels(client, sessionmaker, duty):
    now = utcnow()
    with transaction(sessionmaker) as s:
        s.add(Absence(worker_id=duty["w1"], start=now - dt.timedelta(days=1), end=now + dt.timedelta(days=1),
                      substitute_id=duty["w2"]))
    out = client.get(f"/api/v1/locate?lon={P[0]}&lat={P[1]}", headers=duty["tok"]).get_json()
    assert out["responsible"]["level"] == "substitute" and out["responsible"]["worker"]["code"] == "W2"
    assert "substitute" in out["responsible"]["reason"]
    with transaction(sessionmaker) as s:  # the substitute away too: the community's head (属地兜底)
        s.add(Absence(worker_id=duty["w2"], start=now - dt.timedelta(days=1), end=now + dt.timedelta(days=1)))
    out = client.get(f"/api/v1/locate?lon={P[0]}&lat={P[1]}", headers=duty["tok"]).get_json()
    assert out["responsible"]["level"] == "fallback" and out["responsible"]["worker"]["code"] == "H1"


def test_cli_locate_json_matches_the_api_and_takes_negative_coordinates(app, client, duty):
    runner = app.test_cli_runner()
    res = runner.invoke(args=["locate", str(P[0]), str(P[1]), "--json"])
    assert res.exit_code == 0, res.output
    api = client.get(f"/api/v1/locate?lon={P[0]}&lat={P[1]}", headers=duty["tok"]).get_json()
    assert json.loads(res.output) == api
    res = runner.invoke(args=["locate", str(P[0]), str(P[1])])
    assert "responsible: 张伟 W1 138" in res.output and "(primary)" in res.output
    # a negative longitude is a coordinate, not an option (New York: no cell of this city)
    res = runner.invoke(args=["locate", "-73.95", "40.65"])
    assert res.exit_code == 1 and "no cell" in res.output, res.output
    res = runner.invoke(args=["locate", "-73.95", "40.65", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["cell"] is None
    res = runner.invoke(args=["locate", "--help"])
    assert "-73.95" in res.output


def test_geocode_adds_the_responsible_worker_columns(app, duty, tmp_path):
    src = tmp_path / "点位.csv"
    src.write_text(f"名称,lon,lat\n甲,{P[0]},{P[1]}\n乙,121.0,31.0\n", encoding="utf-8")
    out = tmp_path / "结果.csv"
    res = app.test_cli_runner().invoke(args=["geocode", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(data.decode("utf-8-sig").splitlines()))
    assert rows[0]["worker_code"] == "W1" and rows[0]["worker_name"] == "张伟"
    assert rows[0]["responsible_level"] == "primary" and "13812345678" not in data.decode("utf-8-sig")
    assert rows[1]["cell_code"] == "" and rows[1]["worker_code"] == ""
    res = app.test_cli_runner().invoke(args=["geocode", str(src), "-o", str(out), "--output-encoding", "gbk",
                                             "--no-workers"])
    assert res.exit_code == 0, res.output
    text = out.read_bytes().decode("gbk")
    assert "甲" in text and "worker_code" not in text
