"""The dictionary translator of the web pages (gridmap/web/i18n.py): every visible string of the pages
exists in Chinese and English, the request's language is chosen right, times are Asia/Shanghai."""
from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pytest
from flask import Flask

from gridmap.web import i18n

ROOT = Path(i18n.__file__).resolve().parents[1]
TEMPLATES = sorted((ROOT / "templates").glob("*.html"))  # the web app's own (not ledgers/ etc.)
VIEW_FILES = [ROOT / "web" / "pages.py", ROOT / "web" / "forms.py", *sorted((ROOT / "web" / "views").glob("*.py"))]
HAN = re.compile(r"[\u3400-\u9fff]")
#: Chinese text that is deliberately not translated: the language switch's own name
UNTRANSLATED = {"中文"}
_CALL = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_QUOTED = re.compile(r""""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'""")


def _calls(text: str) -> list[str]:
    return [a if a else b for a, b in _CALL.findall(text)]


def test_templates_exist():
    assert TEMPLATES and any(p.name == "base.html" for p in TEMPLATES)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_messages_have_english(path):
    text = path.read_text(encoding="utf-8")
    missing = [m for m in _calls(text) if m not in i18n.EN]
    assert not missing, f"{path.name}: no English for {missing}"
    # Chinese string literals inside Jinja tags (e.g. a list of labels passed to _ later) too
    for tag in _JINJA.findall(text):
        for a, b in _QUOTED.findall(tag):
            s = a or b
            if HAN.search(s) and s not in UNTRANSLATED:
                assert s in i18n.EN, f"{path.name}: no English for {s!r} in {tag!r}"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_no_bare_chinese_in_templates(path):
    """Visible Chinese text is written only through _() (so the English page has no Chinese left)."""
    text = _JINJA.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"<(script|style)\b.*?</\1>", "", text, flags=re.S)
    bare = HAN.findall(text)
    leftovers = re.sub("|".join(map(re.escape, UNTRANSLATED)), "", text)
    assert not HAN.search(leftovers), f"{path.name}: Chinese outside _(): {''.join(bare)[:60]}"


@pytest.mark.parametrize("path", VIEW_FILES, ids=lambda p: p.name)
def test_python_messages_have_english(path):
    """Every Chinese string constant in the views is a message with an English translation."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and HAN.search(node.value):
            if node.value not in i18n.EN and node.value not in UNTRANSLATED:
                missing.append(node.value)
    # docstrings are not messages
    docs = {ast.get_docstring(n) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))}
    missing = [m for m in missing if m not in docs and m.strip() not in {(d or "").strip() for d in docs}]
    assert not missing, f"{path.name}: no English for {missing}"


def test_labels_and_script_messages_have_english():
    from gridmap.web.views.base import COMMON_JS_MESSAGES

    for table in (i18n.STATUS_ZH, i18n.ACTION_ZH, i18n.ROLE_ZH, i18n.LEVEL_ZH, i18n.SOURCE_ZH):
        for zh in table.values():
            assert zh in i18n.EN, zh
    for m in COMMON_JS_MESSAGES:
        assert m in i18n.EN, m
    # placeholders survive translation
    for zh, en in i18n.EN.items():
        assert set(re.findall(r"\{(\w+)\}", zh)) == set(re.findall(r"\{(\w+)\}", en)), zh


def test_english_has_no_chinese_left():
    for zh, en in i18n.EN.items():
        if zh in UNTRANSLATED:
            continue
        assert not HAN.search(en), (zh, en)


@pytest.fixture
def app():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="x", GRIDMAP_DEFAULT_LANGUAGE="zh_CN", GRIDMAP_TIMEZONE="Asia/Shanghai")
    return app


def test_normalize():
    assert i18n.normalize("zh-CN") == i18n.normalize("zh_cn") == i18n.normalize("zh") == "zh_CN"
    assert i18n.normalize("en-US") == i18n.normalize("EN") == "en"
    assert i18n.normalize("fr") is None and i18n.normalize(None) is None and i18n.normalize("") is None


def test_gettext_by_query_and_cookie(app):
    with app.test_request_context("/?lang=en"):
        assert i18n.get_lang() == "en"
        assert i18n.gettext("登录") == "Log in"
        assert i18n.gettext("已分派给 {name}。", name="<b>") == "Routed to <b>."
        assert i18n.status_label("in_progress") == "in progress"
        assert i18n.gettext("没有这句") == "没有这句"      # unknown: shown as written
    with app.test_request_context("/", headers={"Cookie": f"{i18n.COOKIE}=en"}):
        assert i18n.get_lang() == "en"
    with app.test_request_context("/?lang=zh", headers={"Cookie": f"{i18n.COOKIE}=en"}):
        assert i18n.gettext("登录") == "登录"
        assert i18n.gettext("已分派给 {name}。", name="张伟") == "已分派给 张伟。"
        assert i18n.status_label("in_progress") == "处置中" and i18n.status_label("weird") == "weird"
    with app.test_request_context("/?lang=xx"):
        assert i18n.get_lang() == "zh_CN"


def test_default_language_from_config(app):
    app.config["GRIDMAP_DEFAULT_LANGUAGE"] = "en"
    with app.test_request_context("/"):
        assert i18n.get_lang() == "en"


def test_cookie_set_by_query(app):
    i18n.init_i18n(app)

    @app.get("/x")
    def x():
        return i18n.gettext("登录")

    c = app.test_client()
    r = c.get("/x?lang=en")
    assert r.get_data(as_text=True) == "Log in"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("gm_lang=en") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert c.get("/x").get_data(as_text=True) == "Log in"
    assert c.get("/x?lang=zh-CN").get_data(as_text=True) == "登录"
    assert c.get("/x").get_data(as_text=True) == "登录"


def test_localtime(app):
    with app.app_context():
        utc = dt.datetime(2026, 3, 1, 17, 30, tzinfo=dt.timezone.utc)
        assert i18n.localtime(utc) == "2026-03-02 01:30"
        assert i18n.localtime(utc.replace(tzinfo=None)) == "2026-03-02 01:30"      # naive = UTC
        assert i18n.localtime("2026-03-01T17:30:00+00:00") == "2026-03-02 01:30"
        assert i18n.localtime("2026-03-01T17:30:00Z", "%H:%M") == "01:30"
        assert i18n.localtime(None) == "" and i18n.localtime("not a time") == "not a time"
        assert i18n.localtime(dt.date(2026, 3, 2)) == "2026-03-02"
        app.config["GRIDMAP_TIMEZONE"] = "UTC"
        assert i18n.localtime(utc) == "2026-03-01 17:30"


def test_filters_in_jinja(app):
    i18n.init_i18n(app)
    with app.test_request_context("/?lang=en"):
        from flask import render_template_string

        out = render_template_string("{{ _('登录') }}|{{ 'closed'|status }}|{{ t|localtime }}|{{ 0.5|percent }}|"
                                     "{{ html_lang }}|{{ _('已分派给 {name}。', name=n) }}",
                                     t=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), n="<script>")
        assert out == "Log in|closed|2026-01-01 08:00|50.0%|en|Routed to &lt;script&gt;."
