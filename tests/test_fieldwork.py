"""A grid worker's day, both backends: today's tasks (her cases, rework, mediation, inspections due,
hazards to rectify or re-check; nearest deadline first, overdue first), notifications derived from
the history (new assignments, rework, deadlines approaching) with a badge that mark-seen clears,
and the same through GET /api/v1/tasks and /api/v1/notifications and her phone page."""
from __future__ import annotations

import datetime as dt

import pytest

from gridmap.accounts.actor import SYSTEM
from gridmap.db import transaction
from gridmap.fieldwork.notifications import mark_seen, notifications_for
from gridmap.fieldwork.tasks import counts, tasks_for
from gridmap.hazards import inspections as insp
from gridmap.hazards import service as hz
from gridmap.incidents.lifecycle import apply_action
from tests.casehelpers import (ADMIN, CELL, OTHER_CELL, T0, auth, make_case, make_category, make_token, make_user,
                               make_worker, worker_actor)

UTC = dt.timezone.utc
NOW = T0 + dt.timedelta(days=2, hours=12)   # Wednesday 4 March 2026, 21:00 in Zhoushan


@pytest.fixture
def day(sessionmaker, loaded_city):
    """W1 (cell CELL) and W2 (OTHER_CELL); W1's work planted with known deadlines."""
    with transaction(sessionmaker) as s:
        litter = make_category(s, "test.litter", name="暴露垃圾", limit=(3, "natural_days"))
        dispute = make_category(s, "dispute.neighbour", name="邻里纠纷", limit=(10, "natural_days"))
        w1 = make_worker(s, "W1", name="张伟")
        w2 = make_worker(s, "W2", name="李娜", cell_code=OTHER_CELL)
        w3 = make_worker(s, "W3", name="赵敏", responsibility="backup")  # CELL's backup worker
        user, me = make_user(s, "w1", "worker", worker=w1)
        token = make_token(s, "w1")
        # dispatched at T0+2h with 3 natural days: due T0+3d+2h (after NOW, within 24 h: due soon)
        soon = make_case(s, "dispatched", category=litter, worker=w1, description="垃圾满溢")
        # dispatched a week earlier: overdue at NOW
        late = make_case(s, "dispatched", category=litter, worker=w1, description="乱堆杂物",
                         at=T0 - dt.timedelta(days=7))
        # checked and sent back: rework (返工)
        rework = make_case(s, "handled", category=litter, worker=w1, description="路面破损")
        apply_action(s, rework.id, "verify_fail", ADMIN, now=T0 + dt.timedelta(hours=7), comment="未清理干净")
        # a dispute she mediates
        mediation = make_case(s, "in_progress", category=dispute, worker=w1, description="邻里噪音")
        # closed: no task
        closed = make_case(s, "closed", category=litter, worker=w1, description="已结案")
        # W2's case: not hers
        make_case(s, "dispatched", category=litter, worker=w2, cell_code=OTHER_CELL, description="别人的")
        hz.load_types(s)
        mine = hz.create_hazard(s, {"type": "fire", "title": "楼道堆放杂物", "lon": 122.005, "lat": 30.035},
                                SYSTEM, now=T0)
        other = hz.create_hazard(s, {"type": "fire", "title": "消防通道堵塞", "lon": 122.006, "lat": 30.036},
                                 SYSTEM, now=T0)
        # rectified by the backup worker W3: W1 re-checks it; a hazard W1 rectified herself: no re-check
        hz.apply_action(s, other.id, "rectify", worker_actor(w3), comment="已清理", now=T0 + dt.timedelta(hours=3))
        own = hz.create_hazard(s, {"type": "fire", "title": "电线私拉", "lon": 122.007, "lat": 30.037}, SYSTEM, now=T0)
        hz.apply_action(s, own.id, "rectify", worker_actor(w1), comment="已整改", now=T0 + dt.timedelta(hours=3))
        sched = insp.create_schedule(s, SYSTEM, hazard_id=mine.id, interval_days=7, start_date=dt.date(2026, 3, 2))
        insp.generate_due(s, NOW)
        ids = {"soon": soon.id, "late": late.id, "rework": rework.id, "mediation": mediation.id, "mine": mine.id,
               "other": other.id, "own": own.id, "closed": closed.id, "schedule": sched.id, "user": user.id}
    return {"ids": ids, "actor": me, "token": token}


def test_tasks_are_hers_ordered_overdue_first_then_by_deadline(sessionmaker, day):
    ids = day["ids"]
    with sessionmaker() as s:
        tasks = tasks_for(s, day["actor"], now=NOW)
    got = [(t["kind"], t["id"]) for t in tasks]
    assert ("case", ids["late"]) == got[0]                       # the only overdue case comes first
    assert tasks[0]["overdue"] and not tasks[0]["due_soon"]
    kinds = {(t["kind"], t["id"]) for t in tasks}
    assert {("case", ids["soon"]), ("rework", ids["rework"]), ("mediation", ids["mediation"]),
            ("hazard_rectify", ids["mine"]), ("hazard_recheck", ids["other"])} <= kinds
    assert ("hazard_recheck", ids["own"]) not in kinds          # she rectified it: someone else checks
    assert ("hazard_rectify", ids["other"]) not in kinds         # already rectified
    soon = next(t for t in tasks if t["id"] == ids["soon"] and t["kind"] == "case")
    assert soon["due_soon"] and not soon["overdue"]
    assert [t for t in tasks if t["kind"] == "inspection"], tasks   # the schedule's task of 2 March is due
    dated = [t["due_at"] for t in tasks if not t["overdue"] and t["due_at"]]
    assert dated == sorted(dated)
    c = counts(tasks)
    assert c["total"] == len(tasks) and c["case"] == 2 and c["rework"] == 1 and c["mediation"] == 1


def test_someone_who_is_no_worker_has_no_tasks(sessionmaker, day):
    with sessionmaker() as s:
        assert tasks_for(s, SYSTEM, now=NOW) == []
        assert notifications_for(s, SYSTEM, now=NOW)["items"] == []


def test_notifications_and_the_badge(sessionmaker, day):
    ids = day["ids"]
    with sessionmaker() as s:
        out = notifications_for(s, day["actor"], now=NOW)
    kinds = [(n["kind"], n.get("case_id") or n.get("hazard_id")) for n in out["items"]]
    assert ("assigned", ids["soon"]) in kinds and ("assigned", ids["late"]) in kinds  # 9 days ago: in the window
    assert ("assigned", ids["closed"]) not in kinds  # over: no news
    assert ("rework", ids["rework"]) in kinds
    assert ("due_soon", ids["soon"]) in kinds
    assert ("hazard_assigned", ids["mine"]) in kinds
    assert out["unread"] == len(out["items"]) > 0
    at = [n["at"] for n in out["items"]]
    assert at == sorted(at, reverse=True)
    with transaction(sessionmaker) as s:
        mark_seen(s, ids["user"], NOW)
    with sessionmaker() as s:
        assert notifications_for(s, day["actor"], now=NOW)["unread"] == 0
        # a new assignment after she looked lights the badge again
        litter_case = make_case(s, "dispatched", category=_cat(s), worker=_w1(s), at=NOW + dt.timedelta(hours=1))
        s.commit()
        later = notifications_for(s, day["actor"], now=NOW + dt.timedelta(hours=3))
    assert later["unread"] >= 1
    assert ("assigned", litter_case.id, True) in {(n["kind"], n.get("case_id"), n["unread"]) for n in later["items"]}


def _cat(s):
    from sqlalchemy import select

    from gridmap.incidents.models import Category

    return s.scalar(select(Category).where(Category.code == "test.litter"))


def _w1(s):
    from sqlalchemy import select

    from gridmap.assign.models import Worker

    return s.scalar(select(Worker).where(Worker.code == "W1"))


def test_the_api_answers_her_tasks_and_marks_seen(client, day, sessionmaker):
    from gridmap.db import utcnow

    with transaction(sessionmaker) as s:  # assigned an hour ago (the API answers for the real now)
        fresh = make_case(s, "dispatched", category=_cat(s), worker=_w1(s), at=utcnow() - dt.timedelta(hours=1),
                          step=dt.timedelta(minutes=10))
        fresh_id = fresh.id
    h = auth(day["token"])
    r = client.get("/api/v1/tasks", headers=h)
    assert r.status_code == 200
    body = r.get_json()
    assert body["counts"]["total"] == len(body["items"]) > 0
    assert all(t["cell"] in (CELL, None) for t in body["items"])
    n = client.get("/api/v1/notifications", headers=h).get_json()
    assert n["unread"] > 0 and ("assigned", fresh_id) in {(i["kind"], i.get("case_id")) for i in n["items"]}
    r = client.post("/api/v1/notifications/seen", headers=h, json={})
    assert r.status_code == 200 and r.get_json()["unread"] == 0
    assert client.get("/api/v1/notifications", headers=h).get_json()["unread"] == 0
    bad = client.post("/api/v1/notifications/seen", headers=h, json={"at": "0001-01-01T00:00:00+14:00"})
    assert bad.status_code == 400 and bad.get_json()["field"] == "at"
    assert client.get("/api/v1/tasks").status_code == 401


def test_the_phone_page_shows_the_tasks_as_cards(client, day, sessionmaker):
    from gridmap.db import utcnow
    from tests.test_pages import login

    with transaction(sessionmaker) as s:
        make_case(s, "dispatched", category=_cat(s), worker=_w1(s), at=utcnow() - dt.timedelta(hours=1),
                  step=dt.timedelta(minutes=10))

    assert login(client, "w1").status_code in (302, 303)
    html = client.get("/worker").get_data(as_text=True)
    assert 'id="tasks"' in html and 'data-kind="rework"' in html and "is-overdue" in html
    assert 'id="notice-badge"' in html
    # marking them read clears the badge
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    assert client.post("/worker/notifications/seen", data={"csrf_token": token}).status_code == 303
    assert 'id="notice-badge"' not in client.get("/worker").get_data(as_text=True)
    from html import unescape

    html_en = unescape(client.get("/worker?lang=en").get_data(as_text=True))
    assert "Today's tasks" in html_en and "Rework" in html_en
