"""Sessions and tokens that end, users that can be disabled, login throttling every process sees,
Open311 keys kept out of URLs and logs, and the audit log with its admin page.

Cast from tests/test_pages.py (``web`` fixture): w1, w2 (workers), head, street, street2, city;
every password ``PASSWORD``.
"""
from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import func, select, update

from gridmap.accounts.models import ApiToken, LoginFailure, User, UserSession
from gridmap.audit import AuditEntry
from gridmap.db import transaction, utcnow
from tests.casehelpers import auth, make_token, make_user
from tests.test_pages import PASSWORD, as_user, csrf_from, login, text, web, wire  # noqa: F401 (fixture)


def _audit(sessionmaker, action: str) -> list[AuditEntry]:
    with sessionmaker() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def _from(app, address: str):
    """A client whose requests come from this address."""
    cl = app.test_client()
    cl.environ_base["REMOTE_ADDR"] = address
    return cl


def _replay(app, old_client):
    """A fresh client carrying the session cookie ``old_client`` had (an attacker's copy)."""
    cookie = old_client.get_cookie("session")
    assert cookie is not None
    cl = app.test_client()
    cl.set_cookie("session", cookie.value)
    return cl


# ============================================================================ sessions end
def test_cookie_replayed_after_logout_is_refused(web, sessionmaker):
    app = web[0]
    cl = as_user(app, "w1")
    stolen = _replay(app, cl)
    assert stolen.get("/worker").status_code == 200      # the copy works while the session lives
    token = csrf_from(text(cl.get("/worker")))
    assert cl.post("/logout", data={"csrf_token": token}).status_code == 302
    r = stolen.get("/worker")
    assert r.status_code == 302 and r.location.startswith("/login")
    with sessionmaker() as s:
        row = s.scalar(select(UserSession))
        assert row.ended_at is not None and row.end_reason == "logout"
    assert [e.actor_name for e in _audit(sessionmaker, "logout")] == ["w1"]


def test_password_change_by_command_ends_sessions(web, sessionmaker):
    app = web[0]
    cl = as_user(app, "w1")
    other = as_user(app, "w1")                            # a second login (the phone)
    r = app.test_cli_runner().invoke(args=["users", "passwd", "w1", "--password", "another good password"])
    assert r.exit_code == 0, r.output
    for c in (cl, other):
        assert c.get("/worker").status_code == 302
    assert login(app.test_client(), "w1").status_code == 401
    assert login(app.test_client(), "w1", "another good password").status_code == 302
    [e] = _audit(sessionmaker, "user.passwd")
    assert e.target == "w1" and e.params["sessions_ended"] == 2 and e.actor_name.startswith("cli:")
    short = app.test_cli_runner().invoke(args=["users", "passwd", "w1", "--password", "short"])
    assert short.exit_code != 0 and "8 characters" in short.output


@pytest.mark.parametrize("column, age, reason", [
    ("last_seen_at", dt.timedelta(minutes=121), "idle"),       # default idle timeout 120 min
    ("created_at", dt.timedelta(hours=12, minutes=1), "absolute"),  # default absolute 12 h
])
def test_sessions_time_out(web, sessionmaker, column, age, reason):
    app = web[0]
    cl = as_user(app, "w1")
    assert cl.get("/worker").status_code == 200
    with transaction(sessionmaker) as s:
        s.execute(update(UserSession).values({column: utcnow() - age}))
    assert cl.get("/worker").status_code == 302
    with sessionmaker() as s:
        assert s.scalar(select(UserSession.end_reason)) == reason


def test_timeouts_are_configurable(web, sessionmaker):
    app = web[0]
    app.config["GRIDMAP_SESSION_IDLE_MINUTES"] = 5
    cl = as_user(app, "w1")
    with transaction(sessionmaker) as s:
        s.execute(update(UserSession).values(last_seen_at=utcnow() - dt.timedelta(minutes=4)))
    assert cl.get("/worker").status_code == 200           # 4 min idle: still in
    with transaction(sessionmaker) as s:
        s.execute(update(UserSession).values(last_seen_at=utcnow() - dt.timedelta(minutes=6)))
    assert cl.get("/worker").status_code == 302


def test_secure_cookie_when_configured(web, app):
    r = login(web[0].test_client(), "w1")
    cookie = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "Secure" not in cookie
    from gridmap import create_app

    secure = wire(create_app({**{k: app.config[k] for k in ("GRIDMAP_DATABASE_URL", "SECRET_KEY")},
                              "TESTING": True, "INSTANCE_PATH": app.instance_path, "GRIDMAP_SECURE_COOKIES": True}))
    try:
        cl = secure.test_client()
        token = csrf_from(text(cl.get("/login", base_url="https://localhost")))
        r = cl.post("/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"},
                    data={"username": "w1", "password": PASSWORD, "csrf_token": token})
        cookie = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith("session="))
        assert r.status_code == 302 and "Secure" in cookie and "HttpOnly" in cookie
    finally:
        secure.extensions["gridmap.engine"].dispose()


# ============================================================================ users disable / enable
def test_disabled_user_is_refused_everywhere(web, sessionmaker):
    app = web[0]
    cl = as_user(app, "w1")
    with transaction(sessionmaker) as s:
        tok = make_token(s, "w1")
    api = app.test_client()
    assert api.get("/api/v1/cases", headers=auth(tok)).status_code == 200
    runner = app.test_cli_runner()
    r = runner.invoke(args=["users", "disable", "w1"])
    assert r.exit_code == 0, r.output
    assert cl.get("/worker").status_code == 302                                  # the session ended
    assert api.get("/api/v1/cases", headers=auth(tok)).status_code == 401        # the token is refused
    assert login(app.test_client(), "w1").status_code == 401                      # no new login
    assert "disabled" in runner.invoke(args=["users", "list"]).output
    assert runner.invoke(args=["users", "disable", "w1"]).exit_code != 0          # already disabled
    assert runner.invoke(args=["users", "enable", "w1"]).exit_code == 0
    assert api.get("/api/v1/cases", headers=auth(tok)).status_code == 200
    assert login(app.test_client(), "w1").status_code == 302
    assert cl.get("/worker").status_code == 302          # the old session does not come back
    assert [e.action for e in _audit(sessionmaker, "user.disable") + _audit(sessionmaker, "user.enable")] == \
        ["user.disable", "user.enable"]
    assert runner.invoke(args=["users", "disable", "nobody"]).exit_code != 0


# ============================================================================ tokens
def test_token_expiry_list_and_revoke(web, sessionmaker):
    app = web[0]
    runner = app.test_cli_runner()
    r = runner.invoke(args=["tokens", "create", "street", "--days", "7", "--label", "gis desk"])
    assert r.exit_code == 0, r.output
    tok = r.output.strip().splitlines()[-1]
    cl = app.test_client()
    assert cl.get("/api/v1/cases", headers=auth(tok)).status_code == 200
    with sessionmaker() as s:
        row = s.scalar(select(ApiToken))
        left = row.expires_at - utcnow()
        assert dt.timedelta(days=6, hours=23) < left <= dt.timedelta(days=7)
        tid = row.id
    listing = runner.invoke(args=["tokens", "list"]).output
    assert f"{tid}\tstreet\tgis desk" in listing and "active" in listing and tok not in listing
    assert runner.invoke(args=["tokens", "create", "street", "--days", "0"]).exit_code != 0
    # expired → 401 (and listed as expired with --all only)
    with transaction(sessionmaker) as s:
        s.execute(update(ApiToken).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert cl.get("/api/v1/cases", headers=auth(tok)).status_code == 401
    assert f"{tid}\t" not in runner.invoke(args=["tokens", "list"]).output
    assert "expired" in runner.invoke(args=["tokens", "list", "--all"]).output
    # revoked → 401
    with transaction(sessionmaker) as s:
        s.execute(update(ApiToken).values(expires_at=utcnow() + dt.timedelta(days=1)))
    assert cl.get("/api/v1/cases", headers=auth(tok)).status_code == 200
    r = runner.invoke(args=["tokens", "revoke", str(tid)])
    assert r.exit_code == 0, r.output
    assert cl.get("/api/v1/cases", headers=auth(tok)).status_code == 401
    assert "revoked" in runner.invoke(args=["tokens", "list", "--all", "--user", "street"]).output
    assert runner.invoke(args=["tokens", "revoke", str(tid)]).exit_code != 0
    assert runner.invoke(args=["tokens", "revoke", "99999"]).exit_code != 0
    assert [e.params["token_id"] for e in _audit(sessionmaker, "token.revoke")] == [tid]


def test_token_use_is_audited_once_an_hour(web, sessionmaker):
    app = web[0]
    with transaction(sessionmaker) as s:
        tok = make_token(s, "city")
    cl = app.test_client()
    for _ in range(3):
        assert cl.get("/api/v1/cases", headers=auth(tok)).status_code == 200
    assert len(_audit(sessionmaker, "token.use")) == 1
    with transaction(sessionmaker) as s:
        s.execute(update(ApiToken).values(audited_at=utcnow() - dt.timedelta(minutes=61)))
    assert cl.get("/api/v1/cases", headers=auth(tok)).status_code == 200
    uses = _audit(sessionmaker, "token.use")
    assert len(uses) == 2 and {e.actor_name for e in uses} == {"city"}


# ============================================================================ throttling in the database
def _second_app(app):
    """Another app on the same database: what a second worker process sees."""
    from gridmap import create_app

    return wire(create_app({"GRIDMAP_DATABASE_URL": app.config["GRIDMAP_DATABASE_URL"], "TESTING": True,
                            "SECRET_KEY": app.config["SECRET_KEY"], "INSTANCE_PATH": app.instance_path}))


def test_throttle_is_shared_by_processes(web, sessionmaker):
    app = web[0]
    other = _second_app(app)
    try:
        for _ in range(5):
            assert login(app.test_client(), "w2", "not the password").status_code == 401
        assert login(other.test_client(), "w2").status_code == 429       # the other process refuses too
        assert login(other.test_client(), "w1").status_code == 302       # another name is fine
        # another address is not affected by this pair's failures
        assert login(_from(other, "10.9.9.9"), "w2").status_code == 302
    finally:
        other.extensions["gridmap.engine"].dispose()
    assert len(_audit(sessionmaker, "login.failed")) == 5
    assert len(_audit(sessionmaker, "login.throttled")) == 1


def test_password_spraying_from_one_address_is_slowed(web, sessionmaker):
    app = web[0]
    app.config["GRIDMAP_LOGIN_MAX_FAILURES_PER_ADDRESS"] = 6
    for i in range(6):                                    # one guess per name: never 5 for one name
        assert login(_from(app, "10.0.0.66"), f"user{i}", "Summer2026!").status_code == 401
    r = login(_from(app, "10.0.0.66"), "w1")  # even a right password waits now
    assert r.status_code == 429
    assert login(_from(app, "10.0.0.67"), "w1").status_code == 302


def test_one_name_from_many_addresses_is_slowed(web, sessionmaker):
    app = web[0]
    app.config["GRIDMAP_LOGIN_MAX_FAILURES_PER_NAME"] = 4
    for i in range(4):
        cl = _from(app, f"10.1.0.{i}")
        assert login(cl, "w1", "wrong password").status_code == 401
    assert login(_from(app, "10.1.0.99"), "w1").status_code == 429
    assert login(app.test_client(), "w2").status_code == 302


def test_throttle_window_passes(web, sessionmaker):
    app = web[0]
    for _ in range(5):
        login(app.test_client(), "w2", "not the password")
    assert login(app.test_client(), "w2").status_code == 429
    with transaction(sessionmaker) as s:  # 16 minutes later
        s.execute(update(LoginFailure).values(at=utcnow() - dt.timedelta(minutes=16)))
    assert login(app.test_client(), "w2").status_code == 302
    with sessionmaker() as s:  # a success clears the pair; stale rows were pruned or cleared
        assert s.scalar(select(func.count()).select_from(LoginFailure)
                        .where(LoginFailure.username == "w2", LoginFailure.address == "127.0.0.1")) == 0
    assert [e.actor_name for e in _audit(sessionmaker, "login")] == ["w2"]


# ============================================================================ Open311 keys
@pytest.fixture
def o311(web, sessionmaker):
    with transaction(sessionmaker) as s:
        return make_token(s, "city")


def test_open311_key_in_header_not_in_url(web, o311):
    cl = web[0].test_client()
    assert cl.get("/open311/v2/requests.json", headers={"X-Api-Key": o311}).status_code == 200
    assert cl.get("/open311/v2/requests.json", headers=auth(o311)).status_code == 200
    r = cl.get("/open311/v2/requests.json", query_string={"api_key": o311})
    assert r.status_code == 401 and "X-Api-Key" in r.json[0]["description"]
    assert cl.get("/open311/v2/requests.json", headers={"X-Api-Key": "gm_wrong"}).status_code == 401
    web[0].config["GRIDMAP_OPEN311_QUERY_KEY"] = True  # GeoReport compatibility switched on
    assert cl.get("/open311/v2/requests.json", query_string={"api_key": o311}).status_code == 200


def test_keys_are_masked_in_access_logs(web, caplog):
    from gridmap.web.open311 import SecretMaskFilter, mask_secrets

    assert mask_secrets("GET /open311/v2/requests.json?api_key=gm_abc-DEF_1&status=open HTTP/1.1") == \
        "GET /open311/v2/requests.json?api_key=***&status=open HTTP/1.1"
    logger = logging.getLogger("werkzeug")
    assert any(isinstance(f, SecretMaskFilter) for f in logger.filters)  # installed with the blueprint
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logger.info('%s - - "%s" %s', "127.0.0.1", "GET /open311/v2/requests.json?api_key=gm_secret1 HTTP/1.1", 200)
    assert "gm_secret1" not in caplog.text and "api_key=***" in caplog.text


# ============================================================================ audit log page
def test_audit_page_for_admins_only(web, sessionmaker):
    app = web[0]
    with transaction(sessionmaker) as s:
        make_user(s, "root", "admin")
    login(app.test_client(), "street", "wrong password")
    for name in ("w1", "street", "city"):
        cl = as_user(app, name)
        assert cl.get("/admin/audit").status_code == 403
    assert app.test_client().get("/admin/audit").status_code == 302
    adm = as_user(app, "root")
    page = text(adm.get("/admin/audit"))
    assert "审计日志" in page and 'data-action="login.failed"' in page and 'data-action="login"' in page
    only_failed = text(adm.get("/admin/audit?action=login.failed"))
    assert 'data-action="login.failed"' in only_failed and 'data-action="login"' not in only_failed
    assert only_failed.count("<tr data-action=") == 1 and "street" in only_failed
    by_who = text(adm.get("/admin/audit?who=w1"))
    assert by_who.count("<tr data-action=") == 1
    future = text(adm.get("/admin/audit?from=2999-01-01"))
    assert "<tr data-action=" not in future
    bad = adm.get("/admin/audit?action=drop+table&from=0001-01-01&to=not-a-date&page=x")
    assert bad.status_code == 200 and "<tr data-action=" in text(bad)  # bad filters dropped, not a 500
    en = text(adm.get("/admin/audit?lang=en"))
    assert "Audit log" in en and "Failed login" in en


def test_ledger_download_is_audited(web, sessionmaker):
    app = web[0]
    with transaction(sessionmaker) as s:
        tok = make_token(s, "street")
    r = app.test_client().get("/api/v1/ledgers/cases?area=330999001&from=2026-03-01&to=2026-03-31",
                              headers=auth(tok))
    assert r.status_code == 200
    [e] = _audit(sessionmaker, "export.personal")
    assert e.actor_name and e.params["kind"] == "cases" and e.params["area"] == "330999001"
    with sessionmaker() as s:
        assert s.scalar(select(User.username).where(User.id == e.actor_user_id)) == "street"


def test_boundary_publish_is_audited(web, sessionmaker):
    app = web[0]
    with transaction(sessionmaker) as s:
        make_user(s, "qu", "district", area_code="330999")
        toks = {u: make_token(s, u) for u in ("street", "qu")}
    cl = app.test_client()
    r = cl.post("/api/v1/boundaries/drafts", headers=auth(toks["street"]),
                json={"operation": "split", "cell": "330999001001001",
                      "line": {"type": "LineString", "coordinates": [[122.01, 30.045], [122.01, 30.025]]}})
    assert r.status_code == 201, r.get_json()
    did = r.get_json()["id"]
    r = cl.post(f"/api/v1/boundaries/drafts/{did}/publish", headers=auth(toks["street"]), json={"reason": "x"})
    assert r.status_code == 403
    assert _audit(sessionmaker, "boundary.publish") == []          # a refused publish leaves no entry
    r = cl.post(f"/api/v1/boundaries/drafts/{did}/publish", headers=auth(toks["qu"]), json={"reason": "调整网格"})
    assert r.status_code == 200, r.get_json()
    [e] = _audit(sessionmaker, "boundary.publish")
    published = r.get_json()["published"]
    assert e.params["draft_id"] == did and e.params["reason"] == "调整网格"
    assert (e.params["created"], e.params["changed"], e.params["retired"]) == \
        (published["created"], published["changed"], published["retired"]) and published["created"] >= 1
    with sessionmaker() as s:
        assert s.scalar(select(User.username).where(User.id == e.actor_user_id)) == "qu"
