"""The base registry: checksums, masks, encryption, the import of every kind (GBK, XLSX, bad rows by
line, idempotence), placement in cells and re-placement, summaries, households per cell, export
and the access log, and that no identity number or phone is readable in the database."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import func, select, text, update

from gridmap.boundaries.models import Area
from gridmap.db import transaction
from gridmap.registry import pii
from gridmap.registry.files import RegistryFileError
from gridmap.registry.imports import import_file
from gridmap.registry.models import AccessLog, Address, Building, Household, Organisation, Person
from gridmap.registry.placement import replace_records
from gridmap.registry.service import export_text, households_by_cell, list_records, reveal, summary

KEYS = pii.PiiKeys("test-key-" + "x" * 40)


def make_id(region: str, born: str, seq: str) -> str:
    first = region + born + seq
    return first + pii.id_check_digit(first)


def make_credit(body: str) -> str:
    return body + pii.credit_check_char(body)


# ----------------------------------------------------------------------------- pure functions

def test_identity_number_checksum():
    assert pii.id_problem("11010519491231002X") is None  # the standard's example
    assert pii.id_problem("110105194912310021") == "identity number fails its check digit (GB 11643)"
    assert "birth date" in pii.id_problem("110105194913310028")  # month 13
    assert "18 characters" in pii.id_problem("11010519491231002")
    future = make_id("330902", (dt.date.today() + dt.timedelta(days=400)).strftime("%Y%m%d"), "123")
    assert "out of range" in pii.id_problem(future)
    idn = make_id("330902", "19900101", "123")
    assert pii.id_problem(idn) is None and pii.id_birth_date(idn) == dt.date(1990, 1, 1)
    assert pii.id_gender(idn) == "M" and pii.id_gender(make_id("330902", "19900101", "124")) == "F"
    assert pii.normalize_id(" 11010519491231002x ") == "11010519491231002X"


def test_credit_code_checksum():
    assert pii.credit_code_problem("91350100M000100Y43") is None  # a published valid code
    assert "check character" in pii.credit_code_problem("91350100M000100Y44")
    assert "18 characters" in pii.credit_code_problem("91350100M000100YI3")  # I is not allowed
    assert pii.credit_code_problem(make_credit("91330902MA2A0000X")) is None


def test_masks_and_phone_normalisation():
    assert pii.mask_id("33090219900101123X") == "330902********123X"
    assert pii.mask_phone("13812345678") == "138****5678"
    assert pii.mask_phone("05802021234") == "*******1234"
    assert pii.normalize_phone("+86 138-1234-5678") == ("13812345678", None)
    assert pii.normalize_phone("") == (None, None)
    assert pii.normalize_phone("12345")[1] is not None


def test_digest_is_keyed_and_encryption_round_trips_across_a_rotation():
    idn = "11010519491231002X"
    other = pii.PiiKeys("another-key-" + "y" * 40)
    assert KEYS.digest(idn) == KEYS.digest(idn) != other.digest(idn)
    assert len(KEYS.digest(idn)) == 64 and idn not in KEYS.digest(idn)
    c1, c2 = KEYS.encrypt(idn), KEYS.encrypt(idn)
    assert c1 != c2 and idn not in c1 and KEYS.decrypt(c1) == idn
    with pytest.raises(pii.PiiKeyError):
        other.decrypt(c1)
    rotated = pii.PiiKeys("another-key-" + "y" * 40, old=["test-key-" + "x" * 40])
    assert rotated.decrypt(c1) == idn and rotated.key_id_of(rotated.encrypt(idn)) == rotated.key_id != KEYS.key_id
    with pytest.raises(pii.PiiKeyError):
        pii.PiiKeys("short")


def test_instance_key_file_is_made_once_with_mode_0600(tmp_path):
    k1 = pii.keys_from_config({}, tmp_path)
    k2 = pii.keys_from_config({"GRIDMAP_PII_KEY": ""}, tmp_path)
    assert k1.key_id == k2.key_id
    assert (tmp_path / "pii_key").stat().st_mode & 0o777 == 0o600
    assert pii.keys_from_config({"GRIDMAP_PII_KEY": "z" * 40}, tmp_path).key_id != k1.key_id


# ----------------------------------------------------------------------------- a small register

CELL_NW1 = "330999001001001"  # 122.00–122.02 E, 30.03–30.04 N
CELL_NW2 = "330999001001002"  # 122.02–122.04 E, 30.03–30.04 N
ID_A = make_id("330902", "19450302", "122")   # woman, 1945
ID_B = make_id("330902", "19800715", "131")   # man
ID_C = make_id("330903", "20150101", "142")   # girl


def _write(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def load_register(sessionmaker, tmp_path, keys=KEYS):
    files = {
        "addresses": ("code,address,lon,lat\n"
                      "A1,浙江省舟山市定海区解放西路123号,122.01,30.035\n"
                      "A2,定海区解放西路125号3幢2单元301室,122.03,30.035\n"),
        "buildings": "code,address_code,name,floors,kind\nB1,A1,解放西路123号楼,6,住宅\n",
        "households": "code,address_code,room,size,use\nH1,A1,101,2,自住\nH2,A2,301,1,出租\n",
        "persons": ("id_number,name,phone,household_code,birth_date,gender,tags\n"
                    f"{ID_A},张桂英,13812345678,H1,1945-03-02,女,独居老人;低保\n"
                    f"{ID_B},李建国,,H1,,男,\n"
                    f"{ID_C},王小雨,13900001111,H2,,,留守儿童\n"),
        "organisations": ("credit_code,name,address_code,kind,contact,phone\n"
                          f"{make_credit('91330902MA2A0000X')},舟山海鲜小店,A2,商铺,陈老板,13700002222\n"),
    }
    reps = {}
    for kind, body in files.items():
        with transaction(sessionmaker) as s:
            reps[kind] = import_file(s, kind, _write(tmp_path, f"{kind}.csv", body, "gbk"), keys=keys)
    return files, reps


def test_import_every_kind_places_records_in_cells(sessionmaker, loaded_city, tmp_path):
    files, reps = load_register(sessionmaker, tmp_path)
    assert {k: (r.inserted, len(r.bad)) for k, r in reps.items()} == {
        "addresses": (2, 0), "buildings": (1, 0), "households": (2, 0), "persons": (3, 0), "organisations": (1, 0)}
    assert reps["addresses"].encoding == "gbk"
    with sessionmaker() as s:
        cell = dict(s.execute(select(Area.code, Area.id)).all())
        a2 = s.scalar(select(Address).where(Address.code == "A2"))
        assert (a2.road, a2.number, a2.building, a2.unit, a2.room) == ("解放西路", "125", "3", "2", "301")
        assert a2.cell_id == cell[CELL_NW2] and a2.community_id == cell["330999001001"]
        assert a2.street_id == cell["330999001"] and a2.district_id == cell["330999"]
        h1 = s.scalar(select(Household).where(Household.code == "H1"))
        assert h1.cell_id == cell[CELL_NW1] and h1.building_id == s.scalar(select(Building.id))
        assert h1.use == "own"
        people = {p.name: p for p in s.scalars(select(Person))}
        assert people["王小雨"].cell_id == cell[CELL_NW2] and people["张桂英"].cell_id == cell[CELL_NW1]
        assert people["张桂英"].id_masked == ID_A[:6] + "********" + ID_A[-4:]
        assert people["张桂英"].phone_masked == "138****5678" and people["李建国"].gender == "M"
        assert people["王小雨"].birth_date == dt.date(2015, 1, 1)
        assert KEYS.decrypt(people["张桂英"].id_cipher) == ID_A
        assert s.scalar(select(Organisation.cell_id)) == cell[CELL_NW2]
        assert households_by_cell(s) == {cell[CELL_NW1]: 1, cell[CELL_NW2]: 1}
        res = summary(s, "cell")
        row = {r["code"]: r for r in res["rows"]}
        assert row[CELL_NW1]["persons"] == 2 and row[CELL_NW1]["tags"] == {"elderly_alone": 1, "dibao": 1}
        assert row[CELL_NW2]["organisations"] == 1 and row[CELL_NW2]["households"] == 1
        assert res["totals"]["persons"] == 3 and len(res["rows"]) == 16
        comm = {r["code"]: r for r in summary(s, "community")["rows"]}
        assert comm["330999001001"]["addresses"] == 2 and comm["330999001002"]["addresses"] == 0


def test_rerun_changes_nothing_and_a_changed_row_updates(sessionmaker, loaded_city, tmp_path):
    files, _ = load_register(sessionmaker, tmp_path)
    with sessionmaker() as s:
        before = {r.id: (r.id_cipher, r.updated_at) for r in s.scalars(select(Person))}
    for kind, body in files.items():
        with transaction(sessionmaker) as s:
            rep = import_file(s, kind, _write(tmp_path, f"again-{kind}.csv", body), keys=KEYS)
        assert (rep.inserted, rep.updated, len(rep.bad)) == (0, 0, 0), kind
        assert rep.unchanged == body.count("\n") - 1
    with sessionmaker() as s:
        assert {r.id: (r.id_cipher, r.updated_at) for r in s.scalars(select(Person))} == before
    changed = files["persons"].replace("13900001111,H2,,,留守儿童", "13900009999,H1,,,残疾人")
    with transaction(sessionmaker) as s:
        rep = import_file(s, "persons", _write(tmp_path, "p2.csv", changed), keys=KEYS)
    assert (rep.inserted, rep.updated, rep.unchanged) == (0, 1, 2)
    with sessionmaker() as s:
        p = s.scalar(select(Person).where(Person.name == "王小雨"))
        assert KEYS.decrypt(p.phone_cipher) == "13900009999" and p.phone_masked == "139****9999"
        assert p.cell_id == s.scalar(select(Area.id).where(Area.code == CELL_NW1))
        rows, total = list_records(s, "persons", tag="disabled")
        assert total == 1 and rows[0]["tags"] == ["残疾人"]


def test_bad_rows_are_named_by_line_and_the_rest_import(sessionmaker, loaded_city, tmp_path):
    load_register(sessionmaker, tmp_path)
    addr = ("code,address,lon,lat\n"
            "A3,定海区人民路1号,122.05,30.01\n"
            "A3,定海区人民路2号,122.05,30.01\n"          # duplicate code in the file
            "A4,定海区人民路3号,121.50,30.01\n"          # outside the city
            "A5,定海区人民路4号,abc,30.01\n"
            "A6,定海区人民路5号,30.01,122.05\n")         # swapped
    with transaction(sessionmaker) as s:
        rep = import_file(s, "addresses", _write(tmp_path, "a.csv", addr, "gbk"))
    bad = dict(rep.bad)
    assert rep.inserted == 1 and sorted(bad) == [3, 4, 5, 6]
    assert "repeats line 2" in bad[3] and "outside every cell" in bad[4]
    assert "numbers" in bad[5] and "swapped" in bad[6]
    people = ("id_number,name,phone,household_code,birth_date,gender,tags\n"
              f"{ID_A[:-1]}{'0' if ID_A[-1] != '0' else '1'},甲,,H1,,,\n"        # 2 checksum
              f"{make_id('330902', '19700101', '011')},乙,,H9,,,\n"              # 3 unknown household
              f"{make_id('330902', '19700101', '021')},丙,,H1,1970-02-01,,\n"    # 4 birth date differs
              f"{make_id('330902', '19700101', '031')},丁,,H1,,,不存在的标签\n"   # 5 unknown tag
              f"{make_id('330902', '19700101', '041')},戊,12345,H1,,,\n"         # 6 phone
              f"{make_id('330902', '19700101', '051')},己,,H1,,,\n"              # 7 good
              f"{make_id('330902', '19700101', '051')},庚,,H1,,,\n"              # 8 duplicate
              f"{make_id('330902', '19700101', '061')},辛,,H1,,女,\n"            # 9 gender differs
              f"{make_id('330902', '19700101', '071')},壬,,H1,,,,,1900-01-01\n")  # 10 moved out too early
    with transaction(sessionmaker) as s:
        rep = import_file(s, "persons", _write(tmp_path, "p.csv", people.replace(
            "gender,tags\n", "gender,tags,residence,moved_out_on\n")), keys=KEYS)
    bad = dict(rep.bad)
    assert rep.inserted == 1 and sorted(bad) == [2, 3, 4, 5, 6, 8, 9, 10], bad
    assert "check digit" in bad[2] and "unknown household code H9" in bad[3]
    assert "differs" in bad[4] and "unknown tag" in bad[5] and "phone" in bad[6]
    assert "repeats line 7" in bad[8] and "gender" in bad[9] and "out of range" in bad[10]
    orgs = ("credit_code,name,address_code,kind,contact,phone\n"
            "91350100M000100Y44,坏店,A1,,,\n"
            f"{make_credit('91330902MA2A0001X')},好店,A9,,,\n")
    with transaction(sessionmaker) as s:
        rep = import_file(s, "organisations", _write(tmp_path, "o.csv", orgs), keys=KEYS)
    assert rep.inserted == 0 and "check character" in dict(rep.bad)[2] and "unknown address code A9" in dict(rep.bad)[3]
    hh = "code,address_code,room,size,use\nH3,A1,201,99,自住\nH4,A1,202,3,借住\n"
    with transaction(sessionmaker) as s:
        rep = import_file(s, "households", _write(tmp_path, "h.csv", hh), keys=KEYS)
    assert rep.inserted == 0 and "0 to 50" in dict(rep.bad)[2] and "use must be one of" in dict(rep.bad)[3]


def test_unreadable_files_are_refused_whole(sessionmaker, loaded_city, tmp_path):
    cases = [("empty.csv", b""), ("binary.csv", b"\xff\xfe\x00\x01" * 50), ("nocols.csv", "foo,bar\n1,2\n".encode()),
             ("broken.xlsx", b"PK\x03\x04not really a zip")]
    for name, data in cases:
        p = tmp_path / name
        p.write_bytes(data)
        with transaction(sessionmaker) as s:
            with pytest.raises(RegistryFileError):
                import_file(s, "addresses", p)
    with pytest.raises(RegistryFileError):
        with transaction(sessionmaker) as s:
            import_file(s, "addresses", tmp_path / "missing.csv")
    with sessionmaker() as s:
        assert s.scalar(select(func.count(Address.id))) == 0


def test_xlsx_import(sessionmaker, loaded_city, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["code", "address", "lon", "lat"])
    ws.append(["X1", "定海区昌国路1号", 122.011, 30.031])
    ws.append(["X2", "定海区昌国路2号", 200, 30.031])
    p = tmp_path / "a.xlsx"
    wb.save(p)
    with transaction(sessionmaker) as s:
        rep = import_file(s, "addresses", p)
    assert rep.inserted == 1 and [ln for ln, _ in rep.bad] == [3] and rep.encoding == "xlsx"


def test_no_identity_number_or_phone_is_readable_in_the_database(sessionmaker, loaded_city, tmp_path, engine):
    load_register(sessionmaker, tmp_path)
    secrets_ = [ID_A, ID_B, ID_C, "13812345678", "13900001111", "13700002222", ID_A[6:14], ID_A[-8:]]
    tables = [r[0] for r in engine.connect().execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'" if engine.dialect.name == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'table'"))]
    dump = io.StringIO()
    with engine.connect() as c:
        for t in tables:
            for row in c.execute(text(f'SELECT * FROM "{t}"')):
                dump.write(repr(tuple(row)))
    raw = dump.getvalue()
    assert "张桂英" in raw  # the scan sees the register
    for sec in secrets_:
        assert sec not in raw, sec
    if engine.dialect.name == "sqlite":  # and the database file's bytes, free pages and WAL included
        from pathlib import Path

        path = Path(engine.url.database)
        data = b"".join(p.read_bytes() for p in (path, Path(str(path) + "-wal")) if p.exists())
        assert "张桂英".encode() in data
        for sec in secrets_:
            assert sec.encode() not in data, sec


def test_replace_records_after_boundaries_change(sessionmaker, loaded_city, tmp_path):
    load_register(sessionmaker, tmp_path)
    with transaction(sessionmaker) as s:  # as if a republish had left the register in stale cells
        s.execute(update(Address).values(cell_id=None, community_id=None))
        for m in (Household, Person, Building, Organisation):
            s.execute(update(m).values(cell_id=None))
    with transaction(sessionmaker) as s:
        rep = replace_records(s)
    assert rep == {"addresses": 2, "moved": 2, "unplaced": 0}
    with sessionmaker() as s:
        nw1 = s.scalar(select(Area.id).where(Area.code == CELL_NW1))
        assert s.scalar(select(func.count(Person.id)).where(Person.cell_id == nw1)) == 2
        assert s.scalar(select(Address.community_id).where(Address.code == "A1")) is not None
    with transaction(sessionmaker) as s:
        assert replace_records(s)["moved"] == 0


def test_export_and_whole_views_are_logged_and_masked_by_default(sessionmaker, loaded_city, tmp_path):
    from gridmap.registry.service import RegistryError

    load_register(sessionmaker, tmp_path)
    with transaction(sessionmaker) as s:
        with pytest.raises(RegistryError):
            export_text(s, "persons", None, role="community", actor_name="c", user_id=None, purpose="x")
        masked, n = export_text(s, "persons", None, role="city", actor_name="centre", user_id=None, purpose="走访")
        whole, _ = export_text(s, "persons", KEYS, role="city", actor_name="centre", user_id=None, purpose="核对",
                               whole=True)
        pid = s.scalar(select(Person.id).where(Person.name == "张桂英"))
        with pytest.raises(RegistryError):
            reveal(s, "persons", pid, KEYS, role="worker", actor_name="w", user_id=None, purpose="x")
        d = reveal(s, "persons", pid, KEYS, role="street", actor_name="jiefang", user_id=None, purpose="核实身份")
    assert n == 3 and ID_A not in masked and pii.mask_id(ID_A) in masked and ID_A in whole
    assert d["id_number"] == ID_A and d["phone"] == "13812345678"
    with sessionmaker() as s:
        log = [(a.action, a.kind, a.record_id, a.rows, a.purpose) for a in s.scalars(select(AccessLog).order_by(AccessLog.id))]
    assert log == [("export", "persons", None, 3, "走访"), ("export", "persons", None, 3, "核对"),
                   ("view_full", "persons", pid, 1, "核实身份")]


def test_cli_import_names_bad_lines_and_refuses_unreadable_files(app, runner, loaded_city, tmp_path):
    from gridmap import migrate

    p = _write(tmp_path, "a.csv", "code,address,lon,lat\nA1,定海区解放西路1号,122.01,30.035\nA2,x,1000,30\n", "gbk")
    res = runner.invoke(args=["registry", "import", "addresses", str(p)])
    assert res.exit_code == 0, res.output
    assert "1 inserted" in res.output and "line 3:" in res.output
    res = runner.invoke(args=["registry", "import", "addresses", str(p)])
    assert "0 inserted, 0 updated, 1 unchanged" in res.output
    empty = _write(tmp_path, "e.csv", "")
    res = runner.invoke(args=["registry", "import", "addresses", str(empty)])
    assert res.exit_code == 1 and "empty" in res.output
    assert migrate.current_revision(app.extensions["gridmap.engine"]) == migrate.head_revision()


def test_households_come_from_the_register_with_the_synthetic_figure_as_fallback(sessionmaker, loaded_city, tmp_path):
    from gridmap.analysis.common import households
    from gridmap.analysis.rates import rates

    with sessionmaker() as s:
        ids = dict(s.execute(select(Area.code, Area.id)).all())
        assert households(s, "cell")[ids[CELL_NW1]] == 301  # the synthetic figure (300 + seq)
    load_register(sessionmaker, tmp_path)
    with sessionmaker() as s:
        cell = households(s, "cell")
        assert cell[ids[CELL_NW1]] == 1 and cell[ids[CELL_NW2]] == 1
        assert cell[ids["330999001001003"]] == 303  # nothing registered there: fallback
        assert households(s, "community")[ids["330999001001"]] == 1 + 1 + 303 + 304
        rows = {r["code"]: r for r in rates(s, None, level="cell", date_from="2026-01-01", date_to="2026-01-31")["rows"]}
        assert rows[CELL_NW1]["households"] == 1 and rows["330999001001004"]["households"] == 304


@pytest.mark.parametrize("query, lo, hi", [
    ("解放街道解放西路一百二十三号", 0.9, 0.99),        # a street name the register does not give
    ("舟山市定海区解放街道解放西路123号", 0.9, 0.99),
    ("定海区解放街道中昌社区解放西路123号", 0.9, 0.99),  # and a community name
    ("普陀区解放西路123号", 0.0, 0.79),                  # same road and door, another district
    ("解放路123号", 0.0, 0.79),
])
def test_matching_leaves_out_admin_names_one_side_lacks(query, lo, hi):
    from gridmap.registry.addresses import address_score, normalize_address

    assert lo <= address_score(normalize_address(query), normalize_address("浙江省舟山市定海区解放西路123号")) <= hi


def test_address_parts():
    from gridmap.registry.addresses import address_parts

    assert address_parts("浙江省舟山市定海区解放街道解放西路一百二十五号三栋二单元301室") == {
        "road": "解放西路", "number": "125", "building": "3", "unit": "2", "room": "301"}
    assert address_parts("新村路12号") == {"road": "新村路", "number": "12", "building": None, "unit": None,
                                          "room": None}
    assert address_parts("某某小区")["number"] is None


def test_key_rotation_rekeys_ciphertexts_and_digests(sessionmaker, loaded_city, tmp_path):
    from gridmap.registry.service import rekey

    load_register(sessionmaker, tmp_path)
    new_secret, old_secret = "rotated-key-" + "r" * 40, "test-key-" + "x" * 40
    rotated = pii.PiiKeys(new_secret, old=[old_secret])
    with transaction(sessionmaker) as s:
        assert rekey(s, rotated) == {"persons": 3, "organisations": 1}
    with transaction(sessionmaker) as s:
        assert rekey(s, rotated) == {"persons": 0, "organisations": 0}  # idempotent
    only_new = pii.PiiKeys(new_secret)
    with sessionmaker() as s:
        p = s.scalar(select(Person).where(Person.id_digest == only_new.digest(ID_A)))
        assert p is not None and only_new.decrypt(p.id_cipher) == ID_A
        assert only_new.decrypt(p.phone_cipher) == "13812345678"
        assert s.scalar(select(func.count(Person.id)).where(Person.id_digest == KEYS.digest(ID_A))) == 0
    # a re-import of the same file with the new key finds every resident unchanged
    with transaction(sessionmaker) as s:
        body = (f"id_number,name,phone,household_code,birth_date,gender,tags\n"
                f"{ID_A},张桂英,13812345678,H1,1945-03-02,女,独居老人;低保\n")
        rep = import_file(s, "persons", _write(tmp_path, "again.csv", body), keys=only_new)
    assert (rep.inserted, rep.updated, rep.unchanged) == (0, 0, 1)


def test_cli_export_needs_a_permitted_user_and_logs(app, runner, loaded_city, sessionmaker, tmp_path):
    from gridmap.accounts.service import create_user
    from gridmap.registry.pii import keys_from_config

    load_register(sessionmaker, tmp_path, keys=keys_from_config(app.config, app.instance_path))
    with transaction(sessionmaker) as s:
        create_user(s, "centre", "city", password="correct horse battery")
        create_user(s, "comm", "community", password="correct horse battery", area_code="330999001001")
    out = tmp_path / "persons-out.csv"
    res = runner.invoke(args=["registry", "export", "persons", str(out)])
    assert res.exit_code == 1 and "--user" in res.output
    res = runner.invoke(args=["registry", "export", "persons", str(out), "--user", "comm", "--purpose", "走访"])
    assert res.exit_code == 1 and "may not export" in res.output
    res = runner.invoke(args=["registry", "export", "persons", str(out), "--user", "centre", "--purpose", "年度核查"])
    assert res.exit_code == 0, res.output
    text_ = out.read_text(encoding="utf-8-sig")
    assert "330902********" in text_ and ID_A not in text_ and text_.count("\n") == 4
    res = runner.invoke(args=["registry", "export", "persons", str(out), "--user", "centre", "--purpose", "核对", "--whole"])
    assert res.exit_code == 0 and ID_A in out.read_text(encoding="utf-8-sig")
    with sessionmaker() as s:
        assert [(a.action, a.rows, a.purpose) for a in s.scalars(select(AccessLog).order_by(AccessLog.id))] == [
            ("export", 3, "年度核查"), ("export", 3, "核对")]
    # the export re-imports: nothing changes
    with transaction(sessionmaker) as s:
        rep = import_file(s, "persons", out, keys=keys_from_config(app.config, app.instance_path))
    assert (rep.inserted, rep.updated, rep.unchanged, rep.bad) == (0, 0, 3, [])
