"""Checks that must not switch off: a NaN or absurd tolerance (setting or --tolerance-m), a CSV with one
unclosed quote (every CSV import: cases, workers, hazards, addresses), a hazard found on 0001-01-01.
Each is refused with a message naming what and where, and nothing is written."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gridmap.boundaries.models import Area
from gridmap.db import transaction
from gridmap.hazards.models import Hazard
from gridmap.incidents.models import Address, Case
from tests.casehelpers import make_category
from tests.test_hazards import city, hzapp  # noqa: F401  (fixtures)


# ----------------------------------------------------------------------------- tolerance
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-1", "1e308"])
def test_tolerance_setting_out_of_range_is_refused_at_start(monkeypatch, tmp_path, value):
    from gridmap.config import load_config

    monkeypatch.setenv("GRIDMAP_TOLERANCE_M", value)
    with pytest.raises(ValueError, match="GRIDMAP_TOLERANCE_M must be a number from 0 to 1000"):
        load_config(tmp_path)


def test_a_setting_that_is_not_a_number_names_itself(monkeypatch, tmp_path):
    from gridmap.config import load_config

    monkeypatch.setenv("GRIDMAP_SNAP_M", "lots")
    with pytest.raises(ValueError, match="GRIDMAP_SNAP_M"):
        load_config(tmp_path)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e308, -0.1])
def test_check_layer_refuses_a_tolerance_that_would_switch_checks_off(value):
    import geopandas as gpd
    import shapely

    from gridmap.boundaries.checks import check_layer

    kids = gpd.GeoDataFrame({"code": ["a", "b"], "name": ["a", "b"]},
                            geometry=[shapely.box(0, 0, 1, 1), shapely.box(0.5, 0, 1.5, 1)], crs=4326)
    assert any(p.kind == "overlap" for p in check_layer(kids, None, level="cell", tolerance_m=0.5))
    with pytest.raises(ValueError, match="tolerance"):
        check_layer(kids, None, level="cell", tolerance_m=value)


@pytest.mark.parametrize("value", ["nan", "1e308", "-5", "inf", "abc"])
def test_cli_tolerance_is_range_checked(runner, city_files, sessionmaker, value):
    from gridmap.boundaries.cli import boundaries_group

    r = runner.invoke(boundaries_group, ["import", str(city_files["district"]), "--level", "district",
                                         "--tolerance-m", value])
    assert r.exit_code == 2, r.output
    assert "--tolerance-m" in r.output and "Traceback" not in r.output
    with sessionmaker() as s:
        assert s.scalar(select(func.count(Area.id))) == 0
    r = runner.invoke(boundaries_group, ["check", "--tolerance-m", value])
    assert r.exit_code == 2 and "--tolerance-m" in r.output


# ----------------------------------------------------------------------------- CSV with an unclosed quote
UNCLOSED = 3  # the line of the stray quote in every file below


def _write(tmp_path, name, lines, encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return p


def test_cases_csv_with_unclosed_quote_names_the_line(sessionmaker, loaded_city, tmp_path):
    from gridmap.incidents.bulk import import_cases_csv

    with transaction(sessionmaker) as s:
        make_category(s, "test.litter")
    rows = ["external_id,category,description,lon,lat",
            "e1,test.litter,路边垃圾,122.01,30.035",
            'e2,test.litter,"井盖缺失,122.01,30.035',
            *[f"e{i},test.litter,第{i}行,122.01,30.035" for i in range(3, 30)]]
    rep = import_cases_csv(sessionmaker, _write(tmp_path, "c.csv", rows))
    bad = dict(rep["bad_rows"])
    assert UNCLOSED in bad, rep
    assert f"line {UNCLOSED}" in bad[UNCLOSED] and "never closed" in bad[UNCLOSED], rep
    with sessionmaker() as s:  # the row before is in, the swallowed ones are not silently one case
        descs = list(s.scalars(select(Case.description)))
    assert descs == ["路边垃圾"]


def test_workers_csv_with_unclosed_quote_names_the_line(runner, loaded_city, tmp_path, sessionmaker):
    from gridmap.assign.cli import workers_group
    from gridmap.assign.models import Worker

    rows = ["code,name,phone,role,employment,area_code,responsibility,valid_from",
            "W001,张三,13800000001,worker,full_time,330999001001001,,2026-01-01",
            'W002,"李四,13800000002,worker,full_time,330999001001001,,2026-01-01',
            "W003,王五,,worker,full_time,330999001001002,,2026-01-01"]
    r = runner.invoke(workers_group, ["import", str(_write(tmp_path, "w.csv", rows, "gbk"))])
    assert r.exit_code != 0
    assert f"line {UNCLOSED}" in r.output and "never closed" in r.output, r.output
    with sessionmaker() as s:
        assert s.scalar(select(func.count(Worker.id))) == 0


def test_hazards_csv_with_unclosed_quote_names_the_line(hzapp, city, tmp_path, sessionmaker):  # noqa: F811
    rows = ["type,title,lon,lat,severity", "fire,楼道堆物,122.005,30.035,high", 'gas,"燃气,122.045,30.035,low',
            "fire,x,122.005,30.035,low"]
    r = hzapp.test_cli_runner().invoke(args=["hazards", "import", str(_write(tmp_path, "h.csv", rows))])
    assert r.exit_code == 1
    assert f"line {UNCLOSED}" in r.output and "never closed" in r.output, r.output
    with sessionmaker() as s:
        assert s.scalar(select(func.count(Hazard.id))) == 0


def test_addresses_csv_with_unclosed_quote_names_the_line(sessionmaker, loaded_city, tmp_path):
    from gridmap.incidents.addresses import import_addresses_csv

    rows = ["code,address,lon,lat", "A1,临城街道1号,122.01,30.035", 'A2,"临城街道2号,122.01,30.035',
            "A3,临城街道3号,122.01,30.035"]
    with transaction(sessionmaker) as s:
        rep = import_addresses_csv(s, _write(tmp_path, "a.csv", rows))
    lines = {b[0]: b[1] for b in rep["bad"]}
    assert UNCLOSED in lines and "never closed" in lines[UNCLOSED], rep
    with sessionmaker() as s:
        assert list(s.scalars(select(Address.code))) == ["A1"]


# ----------------------------------------------------------------------------- dates in imports
@pytest.mark.parametrize("found_at", ["0001-01-01", "9999-12-31", "0001-01-01T00:00:00", "9999-12-31T23:59:59Z"])
def test_hazards_import_with_a_date_at_the_calendars_edge(hzapp, city, tmp_path, sessionmaker, found_at):  # noqa: F811
    rows = ["type,title,lon,lat,found_at", "fire,楼道堆物,122.005,30.035,2026-03-01", f"fire,燃气,122.005,30.035,{found_at}"]
    r = hzapp.test_cli_runner().invoke(args=["hazards", "import", str(_write(tmp_path, "h.csv", rows))])
    assert r.exit_code == 1, r.output
    assert "row 3" in r.output and "found_at" in r.output and "outside 1900-01-01" in r.output, r.output
    assert "OverflowError" not in r.output and "Traceback" not in r.output
    with sessionmaker() as s:
        assert s.scalar(select(func.count(Hazard.id))) == 0


def test_cases_import_with_a_date_at_the_calendars_edge(sessionmaker, loaded_city, tmp_path):
    from gridmap.incidents.bulk import import_cases_csv

    with transaction(sessionmaker) as s:
        make_category(s, "test.litter")
    rows = ["external_id,category,description,lon,lat,reported_at", "e1,test.litter,甲,122.01,30.035,0001-01-01",
            "e2,test.litter,乙,122.01,30.035,9999-12-31T00:00:00"]
    rep = import_cases_csv(sessionmaker, _write(tmp_path, "c.csv", rows))
    lines = dict(rep["bad_rows"])
    assert set(lines) == {2, 3} and all("outside 1900-01-01" in m for m in lines.values()), rep
    assert rep["imported"] == 0
