"""A small city with two workers' data and a user of every role, for the access matrix and the
schemathesis run (tests/test_access_matrix.py, tests/test_openapi.py).

West (in scope of the west-side users): case ``mine`` in CELL (worker w1 张伟), hazard ``hz_mine``,
its inspection task, a photo, the west street's draft. East (out of scope of every west user):
case ``other`` in OTHER_CELL (worker w2 李娜), hazard ``hz_other``, its task and photo, the east
street's draft. A department case routed to department ``labour``. The east objects carry
MARKERS: text that must never appear in an answer to a west-side user.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from gridmap.accounts.models import ApiToken
from gridmap.accounts.service import set_active
from gridmap.db import transaction, utcnow
from tests.casehelpers import (CELL, OTHER_CELL, auth, make_case, make_category, make_department, make_token,
                               make_user, make_worker)

ROLES = ("worker", "head", "community", "street", "district", "city", "admin", "department")
#: identities that hold no valid credentials
NO_CREDENTIALS = ("anonymous", "revoked", "expired", "disabled")
IDENTITIES = NO_CREDENTIALS + ROLES
#: roles whose scope excludes the east street (and so every east object)
WEST_ONLY = ("worker", "head", "community", "street", "department")
#: text of the east objects (and the code of the east worker's cell): never in an answer to a WEST_ONLY user
MARKERS = ("东街道的事件MARK", "东隐患MARK", "李娜", "东街草稿MARK", OTHER_CELL)
OTHER_STREET = "330999002"
def _png() -> bytes:
    """A small readable PNG (photos are decoded and re-encoded on upload: a made-up header is refused)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()
#: the area each role's pages and ledgers are asked about (in scope)
HOME_AREA = {"worker": CELL, "head": "330999001001", "community": "330999001001", "street": "330999001",
             "district": "330999", "city": "330999", "admin": "330999", "department": "330999"}


def build_world(app, sessionmaker) -> dict:
    """Create the world (the ``loaded_city`` fixture must have run); returns ids and tokens."""
    from gridmap.hazards import inspections as insp
    from gridmap.hazards import service as hz

    with transaction(sessionmaker) as s:
        hz.load_types(s)
        dept = make_department(s)
        top = make_category(s, "test", name="测试事件", limit=(2, "natural_days"))
        cat = make_category(s, "test.litter", name="暴露垃圾", parent=top)
        w1 = make_worker(s, "W1", name="张伟")
        w2 = make_worker(s, "W2", name="李娜", cell_code=OTHER_CELL)
        head_w = make_worker(s, "H1", name="王网格长", role="head", cell_code=None, area_code="330999001001")
        make_user(s, "worker", "worker", worker=w1)
        make_user(s, "worker2", "worker", worker=w2)
        make_user(s, "head", "head", worker=head_w, area_code="330999001001")
        make_user(s, "community", "community", area_code="330999001001")
        make_user(s, "street", "street", area_code="330999001")
        make_user(s, "street2", "street", area_code=OTHER_STREET)
        make_user(s, "district", "district", area_code="330999")
        make_user(s, "city", "city")
        make_user(s, "admin", "admin")
        make_user(s, "department", "department", department=dept)
        for name in ("revoked", "expired", "disabled"):
            make_user(s, name, "city")
        tokens = {name: make_token(s, name) for name in ROLES + ("worker2", "street2") + NO_CREDENTIALS[1:]}
        mine = make_case(s, "dispatched", category=cat, worker=w1, description="西边井盖缺失")
        other = make_case(s, "dispatched", category=cat, worker=w2, cell_code=OTHER_CELL,
                          description="东街道的事件MARK", lon=122.045, lat=30.035)
        dcase = make_case(s, "dispatched", category=cat, worker=w1, description="部门事件")
        dcase.assignee_department_id, dcase.assignee_worker_id = dept.id, None
        from geoalchemy2 import WKTElement

        for c in (mine, other, dcase):
            if c.lon is None:
                c.lon, c.lat = 122.006, 30.036
            c.geom = WKTElement(f"POINT({c.lon} {c.lat})", srid=4326)
        s.flush()
        ids = {"mine": mine.id, "other": other.id, "dcase": dcase.id, "cat": cat.code}
        for key, c in (("mine", mine), ("other", other), ("dcase", dcase)):
            ids[f"{key}_number"] = c.number or str(c.id)  # the Open311 service_request_id
        rev = s.scalar(select(ApiToken).join(ApiToken.user).where(ApiToken.user.has(username="revoked")))
        rev.revoked_at = utcnow()
        s.execute(update(ApiToken).where(ApiToken.user.has(username="expired"))
                  .values(expires_at=utcnow() - dt.timedelta(minutes=1)))
        set_active(s, "disabled", False)

    cl = app.test_client()
    city = auth(tokens["city"])
    for key, lon, title in (("hz_mine", 122.005, "西隐患"), ("hz_other", 122.045, "东隐患MARK")):
        r = cl.post("/api/v1/hazards", json={"type": "fire", "title": title, "lon": lon, "lat": 30.035}, headers=city)
        assert r.status_code == 201, r.get_json()
        ids[key] = r.get_json()["id"]
        r = cl.post(f"/api/v1/hazards/{ids[key]}/schedules", json={"interval_days": 7}, headers=city)
        assert r.status_code == 201, r.get_json()
    for key in ("mine", "other"):
        import io

        r = cl.post(f"/api/v1/cases/{ids[key]}/photos", headers=city,
                    data={"photo": (io.BytesIO(PNG), "p.png")}, content_type="multipart/form-data")
        assert r.status_code == 201, r.get_json()
        ids[f"photo_{key}"] = r.get_json()["id"]
    with transaction(sessionmaker) as s:
        insp.generate_due(s)
    from gridmap.hazards.models import InspectionTask

    with sessionmaker() as s:
        by_hazard = {t.hazard_id: t.id for t in s.scalars(select(InspectionTask))}
    ids["task_mine"], ids["task_other"] = by_hazard[ids["hz_mine"]], by_hazard[ids["hz_other"]]
    for key, who, cell, x in (("draft_mine", "street", CELL, 122.01), ("draft_other", "street2", OTHER_CELL, 122.05)):
        r = cl.post("/api/v1/boundaries/drafts", headers=auth(tokens[who]),
                    json={"operation": "split", "cell": cell, "note": "东街草稿MARK" if key == "draft_other" else "西",
                          "line": {"type": "LineString", "coordinates": [[x, 30.045], [x, 30.025]]}})
        assert r.status_code == 201, r.get_json()
        ids[key] = r.get_json()["id"]
    return {"ids": ids, "tokens": tokens}
