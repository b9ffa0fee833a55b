"""The address register: normalisation, CSV import (UTF-8/GBK, bad rows, idempotence), fuzzy matching."""
from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from gridmap.db import transaction
from gridmap.geo import coords
from gridmap.incidents.addresses import AddressImportError, import_addresses_csv
from gridmap.registry.addresses import _AddressIndex, address_score, chinese_number, match_address, normalize_address
from gridmap.registry.models import Address


@pytest.mark.parametrize("raw, expected", [
    ("浙江省舟山市定海区解放西路123号", "定海区解放西路123号"),
    ("舟山市 定海区 解放西路 一百二十三号", "定海区解放西路123号"),
    ("定海区解放西路１２３号", "定海区解放西路123号"),                 # full-width digits
    ("解放西路123号3号楼2单元301室", "解放西路123号3幢2单元301"),      # 号楼 → 幢, trailing 室 dropped
    ("解放西路123号三栋二单元", "解放西路123号3幢2单元"),              # 栋 → 幢, numerals before units
    ("解放西路123号第3座", "解放西路123号3幢"),
    ("解放西路123号5#", "解放西路123号5幢"),
    ("三江路十二弄五号", "三江路12弄5号"),                             # 三江 is a name, not a number
    ("浙江省杭州市西湖区文三路5号", "西湖区文三路5号"),                 # any city after a province
    ("农贸市场路3号", "农贸市场路3号"),                                 # 市 inside a name stays
    ("解放西路12号3-2-301", "解放西路12号3-2-301"),                     # dashes between digits kept
    ("（定海区）解放西路，123号！", "定海区解放西路123号"),              # punctuation
    ("", ""),
    (None, ""),
])
def test_normalize(raw, expected):
    assert normalize_address(raw) == expected


@pytest.mark.parametrize("cn, n", [("一百零五", 105), ("十二", 12), ("二十", 20), ("一二三", 123), ("两千零五", 2005),
                                   ("十", 10), ("三", 3), ("路", None), ("二三十", None)])
def test_chinese_numbers(cn, n):
    assert chinese_number(cn) == n


REG = normalize_address("浙江省舟山市定海区解放西路123号")


@pytest.mark.parametrize("query, lo, hi", [
    ("浙江省舟山市定海区解放西路123号", 1.0, 1.0),          # exact
    ("解放西路123号", 0.9, 0.99),                             # missing district
    ("定海区解放西路一百二十三号", 1.0, 1.0),                 # another number format, same address
    ("定海区解放四路123号", 0.8, 0.95),                       # a typo in the road
    ("解放西路123号3幢2单元301室", 0.8, 0.99),                # more detail than the register
    ("解放西路", 0.0, 0.79),                                  # a road alone is not a place
    ("解放西路125号", 0.0, 0.5),                              # another door
    ("解放路123号", 0.0, 0.79),                               # which 解放 road?
    ("普陀区沈家门街道东河路88号", 0.0, 0.1),                 # elsewhere
])
def test_score(query, lo, hi):
    assert lo <= address_score(normalize_address(query), REG) <= hi


def _csv(tmp_path, text, encoding="utf-8", name="a.csv"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_import_reports_bad_rows_by_line_and_imports_the_rest(sessionmaker, loaded_city, tmp_path):
    gx, gy = (float(v) for v in coords.from_wgs84(122.05, 30.035, "gcj02"))
    text = ("code,address,lon,lat,crs\n"
            "A1,浙江省舟山市定海区解放西路123号,122.015,30.035,\n"
            "A2,定海区人民北路8号,notanumber,30.03,\n"
            ",定海区人民北路9号,122.01,30.03,\n"
            "A4,定海区人民北路10号,30.03,122.01,\n"
            f"A5,定海区昌国路1号,{gx},{gy},gcj02\n"
            "A6,定海区昌国路2号,122.01,30.03,mars\n"
            "A1,定海区重复,122.01,30.03,\n"
            "A8,,122.01,30.03,\n")
    with transaction(sessionmaker) as s:
        rep = import_addresses_csv(s, _csv(tmp_path, text))
    assert rep["inserted"] == 2
    bad = dict(rep["bad"])
    assert set(bad) == {3, 4, 5, 7, 8, 9}
    assert "number" in bad[3] and "code is empty" in bad[4] and "swapped" in bad[5]
    assert "crs" in bad[7] and "repeats line 2" in bad[8] and "address is empty" in bad[9]
    with sessionmaker() as s:
        a5 = s.scalar(select(Address).where(Address.code == "A5"))
        assert a5.lon == pytest.approx(122.05, abs=1e-7) and a5.lat == pytest.approx(30.035, abs=1e-7)
        assert a5.cell_code == "330999002001001"
        a1 = s.scalar(select(Address).where(Address.code == "A1"))
        assert a1.normalized == "定海区解放西路123号" and a1.cell_code == "330999001001001"


def test_import_is_idempotent_by_code_and_reads_gbk(sessionmaker, loaded_city, tmp_path):
    text = "code,address,lon,lat\nA1,定海区解放西路123号,122.015,30.035\nA2,定海区解放西路125号,122.055,30.035\n"
    p = _csv(tmp_path, text, "gbk")
    with transaction(sessionmaker) as s:
        assert import_addresses_csv(s, p)["inserted"] == 2
    with transaction(sessionmaker) as s:
        rep = import_addresses_csv(s, p)
        assert (rep["inserted"], rep["updated"], rep["unchanged"]) == (0, 0, 2)
    moved = text.replace("122.055,30.035", "122.056,30.036")
    with transaction(sessionmaker) as s:
        rep = import_addresses_csv(s, _csv(tmp_path, moved, "gbk", "b.csv"))
        assert (rep["inserted"], rep["updated"], rep["unchanged"]) == (0, 1, 1)
    with sessionmaker() as s:
        assert s.scalar(select(func.count(Address.id))) == 2
        assert s.scalar(select(Address.lon).where(Address.code == "A2")) == 122.056
        assert s.scalar(select(Address.address).where(Address.code == "A2")) == "定海区解放西路125号"


def test_import_refuses_a_file_without_the_columns(sessionmaker, loaded_city, tmp_path):
    with sessionmaker() as s:
        with pytest.raises(AddressImportError, match="no column lat"):
            import_addresses_csv(s, _csv(tmp_path, "code,address,lon\nA,b,1\n"))
        with pytest.raises(AddressImportError, match="empty"):
            import_addresses_csv(s, _csv(tmp_path, "", name="e.csv"))
        assert s.scalar(select(func.count(Address.id))) == 0


def test_match_finds_the_right_door_among_similar_ones(sessionmaker, loaded_city, tmp_path):
    lines = ["code,address,lon,lat"]
    for n in range(1, 200):
        lines.append(f"J{n},浙江省舟山市定海区解放西路{n}号,{122.0 + n * 0.0001:.6f},30.035")
        lines.append(f"D{n},浙江省舟山市定海区解放东路{n}号,{122.05 + n * 0.0001:.6f},30.035")
    with transaction(sessionmaker) as s:
        assert import_addresses_csv(s, _csv(tmp_path, "\n".join(lines) + "\n"))["inserted"] == 398
    with sessionmaker() as s:
        got = match_address(s, "解放西路一百二十三号")
        assert got[0][0].code == "J123" and got[0][1] >= 0.8
        assert all(score < 0.8 for _, score in got[1:])
        exact = match_address(s, "舟山市定海区解放东路17号")
        assert exact[0][0].code == "D17" and exact[0][1] == 1.0
        typo = match_address(s, "定海区解放东璐17号")
        assert typo[0][0].code == "D17" and typo[0][1] >= 0.8
        elsewhere = match_address(s, "普陀区沈家门东河路88号")
        assert all(score < 0.5 for _, score in elsewhere)
        assert match_address(s, "  ") == []


def test_the_index_picks_candidates_out_of_many():
    # 60k register entries in memory: the right one comes out of the candidate set
    rnd = random.Random(7)
    roads = [f"{a}{b}路" for a in "东西南北中新老长解人民和平" for b in "海山江湖河桥园港岛城"]
    rows = []
    for i in range(60_000):
        rows.append((i + 1, normalize_address(f"定海区{rnd.choice(roads)}{rnd.randint(1, 999)}号{rnd.randint(1, 20)}幢")))
    idx = _AddressIndex.build(rows, stamp=("t",))
    target = rows[12345][1]
    pos = idx.candidates(target)
    assert 12345 in set(pos.tolist()) and len(pos) <= 200
    best = max(pos, key=lambda p: address_score(target, idx.norms[p]))
    assert idx.norms[best] == target
