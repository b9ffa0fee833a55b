"""The HTTP API and the `gridmap` command for boundaries and lookup, end to end on both databases."""
import csv
import json

import pytest
from sqlalchemy import func, select

from gridmap.accounts.service import create_token, create_user
from gridmap.boundaries.models import Area
from gridmap.db import transaction
from gridmap.geo import coords


@pytest.fixture
def token(sessionmaker, loaded_city):
    with transaction(sessionmaker) as s:
        create_user(s, "centre", "city", password="centre-password")
        return create_token(s, "centre")


def test_locate_requires_authentication(client, loaded_city):
    r = client.get("/api/v1/locate?lon=122.005&lat=30.035")
    assert r.status_code == 401 and "Bearer" in r.get_json()["error"]
    r = client.get("/api/v1/locate?lon=122.005&lat=30.035", headers={"Authorization": "Bearer gm_wrong"})
    assert r.status_code == 401


def test_locate_api_matches_cli_json(client, runner, token):
    g_lon, g_lat = coords.wgs84_to_gcj02(122.005, 30.035)
    r = client.get(f"/api/v1/locate?lon={float(g_lon)}&lat={float(g_lat)}&crs=gcj02",
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    api = r.get_json()
    assert api["cell"]["code"] == "330999001001001" and api["street"]["name"] == "西街道"
    assert abs(api["wgs84"]["lon"] - 122.005) < 1e-7
    res = runner.invoke(args=["locate", str(float(g_lon)), str(float(g_lat)), "--crs", "gcj02", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == api


@pytest.mark.parametrize("query,needle", [
    ("lat=30", "lon"), ("lon=abc&lat=30", "number"), ("lon=122&lat=95", "between"),
    ("lon=122&lat=30&crs=mars", "unknown coordinate system"), ("lon=nan&lat=30", "finite"),
    ("lon=122&lat=30&snap_m=-1", "snap_m"),
])
def test_locate_bad_parameters_are_400(client, token, query, needle):
    r = client.get(f"/api/v1/locate?{query}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400
    assert needle in r.get_json()["error"]


def test_locate_snapping_and_nothing(client, token):
    h = {"Authorization": f"Bearer {token}"}
    lat = 30.0 - 60 / 110540  # 60 m south of the city
    out = client.get(f"/api/v1/locate?lon=122.015&lat={lat}", headers=h).get_json()
    assert out["snapped"] is True and 59 < out["distance_m"] < 61 and out["cell"] is not None
    out = client.get(f"/api/v1/locate?lon=122.015&lat={lat}&snap_m=10", headers=h).get_json()
    assert out["cell"] is None and out["distance_m"] is None and out["snapped"] is False


def test_cli_import_check_export(runner, city_files, tmp_path):
    for level in ("district", "street", "community", "cell"):
        args = ["boundaries", "import", str(city_files[level]), "--level", level]
        if level != "district":
            args += ["--parent-field", "parent"]
        res = runner.invoke(args=args)
        assert res.exit_code == 0, res.output
        assert "wrote" in res.output
    res = runner.invoke(args=["boundaries", "check"])
    assert res.exit_code == 0 and "coverage ok" in res.output
    out = tmp_path / "cells.gpkg"
    res = runner.invoke(args=["boundaries", "export", "--level", "cell", "-o", str(out)])
    assert res.exit_code == 0 and out.exists() and "16" in res.output
    res = runner.invoke(args=["locate", "122.005", "30.035"])
    assert res.exit_code == 0 and "330999001001001" in res.output and "西街道" in res.output
    res = runner.invoke(args=["locate", "30.035", "122.005"])
    assert res.exit_code != 0 and "swapped" in res.output


def test_cli_import_refusal_names_file_and_writes_nothing(runner, sessionmaker, tmp_path):
    bad = tmp_path / "nocrs.geojson"
    bad.write_text("not json at all", encoding="utf-8")
    res = runner.invoke(args=["boundaries", "import", str(bad), "--level", "cell"])
    assert res.exit_code != 0 and "nocrs.geojson" in res.output
    assert "Traceback" not in res.output
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Area)) == 0


def test_cli_dry_run(runner, city_files, sessionmaker):
    res = runner.invoke(args=["boundaries", "import", str(city_files["district"]), "--level", "district", "--dry-run"])
    assert res.exit_code == 0 and "would write" in res.output
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Area)) == 0


def test_geocode_csv_keeps_columns_and_reports_bad_rows(runner, loaded_city, tmp_path):
    src = tmp_path / "in.csv"
    rows = [("a", "122.005", "30.035"), ("b", "abc", "30.0"), ("c", "30.035", "122.005"),
            ("d", "121.0", "31.0"), ("e", "122.015", str(30.0 - 60 / 110540))]
    with open(src, "w", newline="", encoding="gbk") as fh:  # Excel in China writes GBK
        w = csv.writer(fh)
        w.writerow(["名称", "lon", "lat"])
        w.writerows(rows)
    out = tmp_path / "out.csv"
    res = runner.invoke(args=["geocode", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "5 rows" in res.output and "2 bad rows" in res.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel on Chinese Windows
    got = list(csv.DictReader(open(out, encoding="utf-8-sig")))
    assert [r["名称"] for r in got] == ["a", "b", "c", "d", "e"]
    assert got[0]["cell_code"] == "330999001001001" and got[0]["community_code"] == "330999001001"
    assert got[0]["street_code"] == "330999001" and got[0]["snapped"] == "false" and got[0]["error"] == ""
    assert "not a number" in got[1]["error"] and got[1]["cell_code"] == ""
    assert "swapped" in got[2]["error"]
    assert got[3]["cell_code"] == "" and got[3]["error"] == ""
    assert got[4]["snapped"] == "true" and 59 < float(got[4]["distance_m"]) < 61


def test_geocode_missing_column_is_a_clear_error(runner, loaded_city, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("x,y\n1,2\n", encoding="utf-8")
    res = runner.invoke(args=["geocode", str(src), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code != 0 and "--lon-col" in res.output


def test_users_and_tokens_cli(runner, loaded_city, client):
    res = runner.invoke(args=["users", "create", "jiefang", "--role", "street", "--area", "330999001",
                              "--password", "long-enough-pw"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(args=["users", "create", "x", "--role", "street", "--area", "330999001001"])
    assert res.exit_code != 0 and "street" in res.output
    res = runner.invoke(args=["tokens", "create", "jiefang"])
    assert res.exit_code == 0
    token = res.output.strip().splitlines()[-1]
    r = client.get("/api/v1/locate?lon=122.005&lat=30.035", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
