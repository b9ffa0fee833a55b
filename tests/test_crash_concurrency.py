"""Crashes and concurrency against PostGIS (slow).

- ``kill -9`` during a bulk case import (a subprocess): the re-run completes the file with nothing
  lost and nothing duplicated (one case per external_id, one report event per case);
- ``kill -9`` during a boundary publish (a subprocess held inside its transaction after every write
  of the publish was flushed, just before its commit): before, during and after the kill no reader sees a half-published version,
  and publishing again completes it;
- 50 concurrent clients on loopback (a live server, one thread each) submitting cases and acting on
  shared cases: no lost or duplicated case, no 5xx, each history contiguous and consistent with its case.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import func, select, text

from gridmap.boundaries.models import AreaGeometry
from gridmap.db import transaction
from gridmap.incidents.models import Case, CaseEvent
from tests.casehelpers import CELL, OTHER_CELL, auth, make_category, make_token, make_user, make_worker

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["postgis"])]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _spawn(script: str, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)


def _wait_for(pred, timeout=120.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out waiting")


# ----------------------------------------------------------------------------- bulk import
IMPORT = """
import sys
from gridmap.db import make_engine, make_sessionmaker
from gridmap.incidents.bulk import import_cases_csv
sm = make_sessionmaker(make_engine(sys.argv[1]))
print(import_cases_csv(sm, sys.argv[2], batch=int(sys.argv[3]), snap_m=100.0), flush=True)
"""


def test_kill_9_during_bulk_import_then_rerun_loses_and_duplicates_nothing(db, sessionmaker, loaded_city, tmp_path):
    url = db[0]
    with transaction(sessionmaker) as s:
        make_category(s, "test.litter")
        make_worker(s, "W1", cell_code=CELL)
    n = 12000
    path = tmp_path / "cases.csv"
    lines = ["external_id,category,description,lon,lat"] + [
        f"k{i},test.litter,第{i}件 路边垃圾,{122.001 + (i % 70) * 0.001:.3f},{30.001 + (i % 37) * 0.001:.3f}"
        for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def count():
        with sessionmaker() as s:
            return s.scalar(select(func.count(Case.id)))

    kills = 0
    for _ in range(2):  # two kills at two different points of the file
        before = count()
        p = _spawn(IMPORT, url, path, 300)
        _wait_for(lambda: count() >= before + 300 or p.poll() is not None)
        assert p.poll() is None, "the import finished before it could be killed: the test proves nothing"
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        kills += 1
        assert p.returncode == -signal.SIGKILL
        assert before < count() < n
    # restart: the same command, to the end
    p = _spawn(IMPORT, url, path, 300)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    with sessionmaker() as s:
        assert s.scalar(select(func.count(Case.id))) == n
        assert s.scalar(select(func.count(func.distinct(Case.external_id)))) == n
        assert s.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.action == "report")) == n
        orphans = s.scalar(select(func.count(Case.id)).where(~Case.id.in_(
            select(CaseEvent.case_id).where(CaseEvent.action == "report"))))
        assert orphans == 0
    assert kills == 2


# ----------------------------------------------------------------------------- boundary publish
PUBLISH = """
import sys, time
from sqlalchemy.orm import Session
import gridmap.redraw.publish as pub
from gridmap.accounts.actor import Actor
from gridmap.db import make_engine, make_sessionmaker
def held_commit(self):
    self.flush()  # every write of the publish is in the database, not yet committed
    open(sys.argv[3], "w").write("written")
    time.sleep(600)  # held inside the transaction: the kill lands here
Session.commit = held_commit
sm = make_sessionmaker(make_engine(sys.argv[1]))
with sm() as s:
    pub.publish_draft(s, int(sys.argv[2]), Actor(name="市中心", role="city"), reason="调整")
    s.commit()
"""


def _current_geometries(sessionmaker) -> set[tuple[int, int]]:
    with sessionmaker() as s:
        return set(s.execute(select(AreaGeometry.area_id, AreaGeometry.version).where(AreaGeometry.valid_to.is_(None))))


def test_kill_9_during_publish_never_shows_a_half_published_version(db, sessionmaker, loaded_city, tmp_path):
    from gridmap.accounts.actor import Actor
    from gridmap.redraw import split_cell
    from gridmap.redraw.models import BoundaryDraft
    from gridmap.redraw.publish import publish_draft

    url = db[0]
    with transaction(sessionmaker) as s:
        from tests.casehelpers import area

        street = Actor(name="西街道", role="street", area_id=area(s, CELL[:9]).id)
        d = split_cell(s, street, CELL, {"type": "LineString", "coordinates": [[122.01, 30.045], [122.01, 30.025]]})
        did = d.id
    before = _current_geometries(sessionmaker)
    kills = 0
    for attempt in range(2):
        marker = tmp_path / f"written-{attempt}"
        p = _spawn(PUBLISH, url, did, marker)
        _wait_for(lambda: marker.exists() or p.poll() is not None)
        assert p.poll() is None, p.stdout.read().decode()
        # the publisher has written the new versions and holds its transaction open: nothing shows
        assert _current_geometries(sessionmaker) == before
        with sessionmaker() as s:
            assert s.get(BoundaryDraft, did).status == "draft"
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        kills += 1
        assert _current_geometries(sessionmaker) == before
        with sessionmaker() as s:
            assert s.get(BoundaryDraft, did).status == "draft"
            # the killed session's locks are gone (PostgreSQL ended the backend): a reader is not blocked
            s.execute(text("SELECT 1"))
    with transaction(sessionmaker) as s:
        publish_draft(s, did, Actor(name="市中心", role="city"), reason="调整")
    after = _current_geometries(sessionmaker)
    assert after != before and len({a for a, _v in after}) == len(after)  # one current version per area
    with sessionmaker() as s:
        assert s.get(BoundaryDraft, did).status == "published"
    assert kills == 2


# ----------------------------------------------------------------------------- 50 concurrent clients
CLIENTS = 50


@pytest.fixture
def live_server(app, loaded_city):
    """The app on loopback (werkzeug, one thread per request), as tests/browser/conftest.py serves it."""
    from werkzeug.serving import make_server

    from tests.test_pages import wire

    wire(app)
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, name="gridmap-concurrency-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        thread.join(timeout=10)
        srv.server_close()


def _call(base, method, path, body=None, headers=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_fifty_concurrent_clients_lose_and_duplicate_nothing(live_server, sessionmaker):
    with transaction(sessionmaker) as s:
        make_category(s, "test.litter")
        w1 = make_worker(s, "W1", cell_code=CELL)
        w2 = make_worker(s, "W2", cell_code=OTHER_CELL)
        make_user(s, "zw", "worker", worker=w1)
        make_user(s, "wf", "worker", worker=w2)
        make_user(s, "city", "city")
        toks = {u: auth(make_token(s, u)) for u in ("zw", "wf", "city")}
    base = live_server
    # a few shared cases that every client also acts on (a race on each one's version)
    shared = []
    for i in range(5):
        st, body = _call(base, "POST", "/api/v1/cases", {"category": "test.litter", "description": f"共享{i}",
                                                         "location": {"lon": 122.005, "lat": 30.035}}, toks["zw"])
        assert st == 201, body
        shared.append(body["id"])
    results: list[tuple] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(i):
        who = ("zw", "wf")[i % 2]
        lon = 122.005 if who == "zw" else 122.045
        start.wait()
        out = []
        st, body = _call(base, "POST", "/api/v1/cases", {"category": "test.litter", "description": f"客户端{i}",
                                                         "external_id": f"c{i}",
                                                         "location": {"lon": lon, "lat": 30.035}}, toks[who])
        out.append(("create", st, body.get("id") if isinstance(body, dict) else None))
        if st == 201:
            st2, _ = _call(base, "POST", f"/api/v1/cases/{body['id']}/actions", {"action": "accept"}, toks[who])
            out.append(("accept own", st2, body["id"]))
        cid = shared[i % len(shared)]
        st3, _ = _call(base, "POST", f"/api/v1/cases/{cid}/actions",
                       {"action": ("accept", "feedback")[i % 2], "comment": f"并发{i}"}, toks["zw"])
        out.append(("shared", st3, cid))
        st4, _ = _call(base, "GET", "/api/v1/cases?per_page=200", None, toks["city"])
        out.append(("list", st4, None))
        with lock:
            results.extend(out)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == CLIENTS * 4 - sum(1 for r in results if r[0] == "create" and r[1] != 201)
    five = [r for r in results if r[1] >= 500]
    assert five == []
    created = [r for r in results if r[0] == "create"]
    assert all(r[1] == 201 for r in created), created
    assert all(r[1] == 200 for r in results if r[0] in ("accept own", "list"))
    assert all(r[1] in (200, 409) for r in results if r[0] == "shared")  # a lost race is a 409, never a 5xx
    with sessionmaker() as s:
        ext = list(s.scalars(select(Case.external_id).where(Case.external_id.isnot(None))))
        assert sorted(ext) == sorted(f"c{i}" for i in range(CLIENTS))   # none lost, none twice
        assert s.scalar(select(func.count(Case.id))) == CLIENTS + len(shared)
        for case in s.scalars(select(Case)):
            events = list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)))
            assert [e.seq for e in events] == list(range(1, len(events) + 1)), case.id   # contiguous, no twins
            assert events[-1].to_status == case.status, case.id
            changes = [e for e in events if e.action not in ("report", "photo")]
            assert case.version == 1 + len(changes), (case.id, case.version, [e.action for e in events])
    ok_shared = sum(1 for r in results if r[0] == "shared" and r[1] == 200)
    print(f"concurrent: {CLIENTS} clients, {len(results)} requests, {ok_shared} shared actions won, 0 5xx")
