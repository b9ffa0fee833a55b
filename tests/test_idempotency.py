"""Replays that change nothing (Idempotency-Key / client_id) on the cases API, both backends: the
same request twice makes one case and one transition; a different body under the same key is
refused naming the key; a refusal is answered again; copies sent at the same moment make one case."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from gridmap.fieldwork.models import IdempotencyKey
from gridmap.incidents.models import Case, CaseEvent
from tests.casehelpers import auth, make_category, make_token, make_user, make_worker

REPORT = {"category": "test.litter", "description": "路灯不亮", "location": {"lon": 122.0123, "lat": 30.0345}}


@pytest.fixture
def setup(app, loaded_city, sessionmaker):
    with sessionmaker() as s:
        make_category(s, "test.litter", name="暴露垃圾")
        w = make_worker(s, "W1", name="张伟")
        make_user(s, "w1", "worker", worker=w)
        make_user(s, "w2", "worker", worker=make_worker(s, "W2", name="李娜"))
        t1, t2 = make_token(s, "w1"), make_token(s, "w2")
        s.commit()
    return {"t1": t1, "t2": t2}


def count(sessionmaker, model=Case, *where):
    with sessionmaker() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_a_replayed_report_makes_one_case(client, setup, sessionmaker):
    h = {**auth(setup["t1"]), "Idempotency-Key": "phone-1-0001"}
    r1 = client.post("/api/v1/cases", json=REPORT, headers=h)
    assert r1.status_code == 201, r1.get_json()
    r2 = client.post("/api/v1/cases", json=dict(reversed(list(REPORT.items()))), headers=h)  # same body, keys reordered
    assert r2.status_code == 201
    assert r2.headers.get("Idempotent-Replayed") == "true"
    assert r2.get_json()["id"] == r1.get_json()["id"]
    assert count(sessionmaker) == 1
    assert count(sessionmaker, CaseEvent, CaseEvent.action == "report") == 1


def test_client_id_in_the_body_works_like_the_header(client, setup, sessionmaker):
    body = {**REPORT, "client_id": "9b1d5f0e-1c3a-4f7e-a1b2-c3d4e5f60718"}
    a = client.post("/api/v1/cases", json=body, headers=auth(setup["t1"]))
    b = client.post("/api/v1/cases", json=body, headers=auth(setup["t1"]))
    assert a.status_code == b.status_code == 201
    assert a.get_json()["id"] == b.get_json()["id"] and count(sessionmaker) == 1


def test_same_key_different_body_is_refused_naming_the_key(client, setup, sessionmaker):
    h = {**auth(setup["t1"]), "Idempotency-Key": "phone-1-0002"}
    assert client.post("/api/v1/cases", json=REPORT, headers=h).status_code == 201
    r = client.post("/api/v1/cases", json={**REPORT, "description": "另一件事"}, headers=h)
    assert r.status_code == 409
    assert "phone-1-0002" in r.get_json()["error"] and r.get_json()["field"] == "Idempotency-Key"
    assert count(sessionmaker) == 1


def test_keys_belong_to_their_user(client, setup, sessionmaker):
    key = {"Idempotency-Key": "shared-key-0003"}
    a = client.post("/api/v1/cases", json=REPORT, headers={**auth(setup["t1"]), **key})
    b = client.post("/api/v1/cases", json=REPORT, headers={**auth(setup["t2"]), **key})
    assert a.status_code == b.status_code == 201
    assert a.get_json()["id"] != b.get_json()["id"] and count(sessionmaker) == 2


def test_a_refusal_is_answered_again_and_writes_nothing(client, setup, sessionmaker):
    h = {**auth(setup["t1"]), "Idempotency-Key": "phone-1-0004"}
    bad = {**REPORT, "category": "no.such.category"}
    r1 = client.post("/api/v1/cases", json=bad, headers=h)
    r2 = client.post("/api/v1/cases", json=bad, headers=h)
    assert r1.status_code == r2.status_code and 400 <= r1.status_code < 500
    assert r2.get_json() == r1.get_json() and r2.headers.get("Idempotent-Replayed") == "true"
    assert count(sessionmaker) == 0
    assert count(sessionmaker, IdempotencyKey) == 1


def test_a_replayed_action_is_one_transition(client, setup, sessionmaker):
    case = client.post("/api/v1/cases", json=REPORT, headers=auth(setup["t1"])).get_json()
    assert case["status"] == "dispatched", case
    h = {**auth(setup["t1"]), "Idempotency-Key": "phone-1-accept-0005"}
    body = {"action": "accept", "version": case["version"]}
    r1 = client.post(f"/api/v1/cases/{case['id']}/actions", json=body, headers=h)
    r2 = client.post(f"/api/v1/cases/{case['id']}/actions", json=body, headers=h)
    assert r1.status_code == r2.status_code == 200, (r1.get_json(), r2.get_json())
    assert r2.headers.get("Idempotent-Replayed") == "true"
    assert count(sessionmaker, CaseEvent, CaseEvent.case_id == case["id"], CaseEvent.action == "accept") == 1
    # without the key the same action is a second, refused transition (the case is in progress now)
    r3 = client.post(f"/api/v1/cases/{case['id']}/actions", json=body, headers=auth(setup["t1"]))
    assert r3.status_code == 409


def test_a_bad_key_is_refused(client, setup, sessionmaker):
    r = client.post("/api/v1/cases", json=REPORT, headers={**auth(setup["t1"]), "Idempotency-Key": "x"})
    assert r.status_code == 400 and r.get_json()["field"] == "Idempotency-Key"
    r = client.post("/api/v1/cases", json={**REPORT, "client_id": 12345678}, headers=auth(setup["t1"]))
    assert r.status_code == 400
    assert count(sessionmaker) == 0


def test_a_replayed_photo_is_stored_once(client, setup, sessionmaker):
    import io

    from gridmap.incidents.models import CasePhoto

    case = client.post("/api/v1/cases", json=REPORT, headers=auth(setup["t1"])).get_json()
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="PNG")
    png = buf.getvalue()
    h = {**auth(setup["t1"]), "Idempotency-Key": "phone-1-photo-0006"}
    codes = [client.post(f"/api/v1/cases/{case['id']}/photos", headers=h,
                         data={"photo": (io.BytesIO(png), "p.png")}, content_type="multipart/form-data").status_code
             for _ in range(2)]
    assert codes == [201, 201]
    assert count(sessionmaker, CasePhoto, CasePhoto.case_id == case["id"]) == 1


def test_copies_sent_at_the_same_moment_make_one_case(app, setup, sessionmaker, backend):
    """Four threads send the same keyed report at once: one case; every answer is the case or a
    409 "still being processed", never a second case."""
    if backend == "spatialite":
        n = 2  # SQLite serializes writers; two copies are enough to cross the key's uniqueness
    else:
        n = 4
    barrier = threading.Barrier(n)
    answers = []

    def send():
        c = app.test_client()
        barrier.wait()
        r = c.post("/api/v1/cases", json=REPORT, headers={**auth(setup["t1"]), "Idempotency-Key": "phone-1-race-07"})
        answers.append((r.status_code, (r.get_json() or {}).get("id")))

    threads = [threading.Thread(target=send) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == n
    assert count(sessionmaker) == 1
    ids = {i for code, i in answers if code == 201}
    assert len(ids) == 1
    assert all(code in (201, 409) for code, _ in answers), answers
