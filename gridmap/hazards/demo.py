"""Demo hazards (隐患) for the demo city, made through the real services so every page opens on real work.

Owns: ``demo_hazards``: hazards of every type in every status over the past months (registered,
rectified by the responsible worker, verified by a supervisor, closed, some reopened), some
overdue, some extended or under 督办, a fifth of them major (重大); links to the demo cases of
their cell; an inspection schedule for each open one with its tasks generated week by week as the
days passed (``inspections.generate_due``) and mostly done, some late, some missed. Seeded: the
same database gets the same demo.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

import numpy as np
from sqlalchemy import select

from gridmap.accounts.actor import SYSTEM, Actor
from gridmap.db import transaction

TITLES = {"fire": ["楼道电动车充电", "消防通道堵塞", "灭火器过期", "楼道堆放杂物"],
          "gas": ["餐饮店燃气软管老化", "燃气表箱锈蚀", "液化气钢瓶违规存放"],
          "self_built": ["自建房违规加层", "自建房墙体开裂", "出租屋隔断不规范"],
          "flood": ["低洼地段排水不畅", "海塘护坡松动", "地下车库挡水板缺失"],
          "work_safety": ["码头作业区防护缺失", "船厂动火作业无监护", "仓库货物超高堆放"],
          "traffic": ["路口视线遮挡", "学校门口缺少减速带", "护栏缺损"],
          "geological": ["山体边坡落石", "挡土墙渗水", "滑坡体裂缝扩大"],
          "other": ["广告牌松动", "井盖缺失", "高空坠物风险"]}
UNITS = ["幸福小区物业", "舟山港务公司", "定海燃气公司", "沈家门渔港管理处", "街道城建办", "某船舶修造厂", "社区居委会"]
#: the statuses a hazard is left in (every type gets each once, then at random)
STATES = ("open", "open_overdue", "rectified", "verified", "closed", "reopened")
SUPERVISOR = Actor(name="区综治中心核查员", role="city")


def demo_hazards(sessionmaker, *, n: int = 60, days: int = 120, now: dt.datetime | None = None,
                 echo: Callable[[str], None] = print, seed: int = 16) -> str:
    """Register ``n`` demo hazards (at least one per type and status) over the last ``days`` days."""
    from gridmap.boundaries.lookup import get_index
    from gridmap.hazards.models import HazardType
    from gridmap.hazards.service import HazardError

    import shapely

    rng = np.random.default_rng(seed)
    now = now or dt.datetime.now(dt.timezone.utc)
    with sessionmaker() as s:
        idx = get_index(s)
        types = [c for c, in s.execute(select(HazardType.code).where(HazardType.active.is_(True))
                                       .order_by(HazardType.code))]
    if not len(idx) or not types:
        return "hazards: no cells or types"
    plan = [(t, st) for t in types for st in STATES]
    while len(plan) < n:
        plan.append((types[int(rng.integers(len(types)))], STATES[int(rng.choice(len(STATES), p=[.25, .15, .15, .1,
                                                                                                  .3, .05]))]))
    pts = shapely.point_on_surface(idx.geoms[rng.choice(len(idx), size=len(plan))])
    made, refused, ids = 0, 0, []
    echo(f"demo hazards: {len(plan)} over {days} days")
    for i, (t, state) in enumerate(plan):
        found = now - dt.timedelta(days=float(rng.uniform(12, days)))
        if state == "open":
            found = now - dt.timedelta(days=float(rng.uniform(0.5, 2.5)))  # not due yet
        data = {"type": t, "title": TITLES.get(t, ["隐患"])[i % len(TITLES.get(t, ["隐患"]))],
                "grade": "major" if rng.random() < 0.2 else "general",
                "lon": float(shapely.get_x(pts[i])), "lat": float(shapely.get_y(pts[i])),
                "responsible_unit": UNITS[int(rng.integers(len(UNITS)))], "external_id": f"demo-hz{i:04d}",
                "found_at": found.isoformat(), "description": "示范数据：巡查中发现。"}
        try:
            with transaction(sessionmaker) as s:
                ids.append(_one(s, data, state, found, now, rng))
            made += 1
        except HazardError as e:
            refused += 1
            if refused <= 3:
                echo(f"  demo hazard {i} refused: {e.field}: {e.message}")
    tasks = _inspections(sessionmaker, ids, now, days, rng)
    return f"hazards: {made} demo hazards in every status ({refused} refused), {tasks} inspection tasks"


def _one(s, data, state, found, now, rng) -> int:
    from gridmap.assign.models import Worker
    from gridmap.hazards import actions
    from gridmap.hazards.service import apply_action, create_hazard, link_case
    from gridmap.incidents.models import Case

    h = create_hazard(s, data, SYSTEM, source="patrol", now=found)
    w = s.get(Worker, h.responsible_worker_id) if h.responsible_worker_id else None
    # the responsible worker rectifies; where nobody is on duty, the responsible unit (recorded by the centre)
    doer = Actor(name=w.name, role="worker", worker_id=w.id) if w else Actor(name=f"{h.responsible_unit}整改人", role="city")
    span = (h.rectify_deadline - found) if h.rectify_deadline else dt.timedelta(days=7)
    case_id = s.scalar(select(Case.id).where(Case.cell_id == h.cell_id).order_by(Case.id).limit(1))
    if case_id is not None and rng.random() < 0.5:
        link_case(s, h.id, case_id, SYSTEM, relation="related", now=found + dt.timedelta(hours=2))
    if h.grade == "major" and rng.random() < 0.7:
        actions.supervise(s, h.id, SUPERVISOR, comment="重大隐患，挂牌督办，每周报告治理进展",
                          now=found + dt.timedelta(hours=6))
    if state == "open_overdue" and rng.random() < 0.4:
        actions.extend(s, h.id, SUPERVISOR, deadline=(h.rectify_deadline + span / 2).isoformat(),
                       reason="需协调产权单位，申请延期", now=found + span / 3)
        s.refresh(h)
    if state in ("open", "open_overdue"):
        return h.id
    late = rng.random() < 0.25
    t_rect = found + span * (rng.uniform(1.05, 1.6) if late else rng.uniform(0.2, 0.9))
    t_rect = min(t_rect, now - dt.timedelta(days=6))
    apply_action(s, h.id, "rectify", doer, comment="已按要求整改，现场拍照留存", now=t_rect)
    if state == "rectified":
        return h.id
    fail = rng.random() < 0.15
    if fail:
        apply_action(s, h.id, "verify", SUPERVISOR, comment="复查仍有隐患，退回整改", data={"passed": False},
                     now=t_rect + dt.timedelta(hours=20))
        t_rect = t_rect + dt.timedelta(days=1)
        apply_action(s, h.id, "rectify", doer, comment="再次整改完毕", now=t_rect)
    apply_action(s, h.id, "verify", SUPERVISOR, comment="现场核查通过", now=t_rect + dt.timedelta(days=1))
    if state == "verified":
        return h.id
    apply_action(s, h.id, "close", SUPERVISOR, comment="销号", now=t_rect + dt.timedelta(days=2))
    if state == "reopened":
        apply_action(s, h.id, "reopen", SUPERVISOR, comment="回头看发现隐患反弹", now=t_rect + dt.timedelta(days=3))
    return h.id


def _inspections(sessionmaker, ids: list[int], now: dt.datetime, days: int, rng) -> int:
    """A schedule per hazard not closed, its tasks generated week by week, most done on time."""
    from zoneinfo import ZoneInfo

    from gridmap.hazards.inspections import complete_task, create_schedule, generate_due
    from gridmap.hazards.models import Hazard, InspectionTask

    tz = ZoneInfo("Asia/Shanghai")
    with transaction(sessionmaker) as s:
        for hid in ids:
            h = s.get(Hazard, hid)
            if h.status != "closed":
                create_schedule(s, SYSTEM, hazard_id=hid, interval_days=7, start_date=h.found_at.astimezone(tz).date(),
                                now=h.found_at)
    step = now - dt.timedelta(days=days)
    while step <= now:
        with transaction(sessionmaker) as s:
            generate_due(s, now=step)
        step += dt.timedelta(days=7)
    with transaction(sessionmaker) as s:
        generate_due(s, now=now)
    today = now.astimezone(tz).date()
    done = 0
    with transaction(sessionmaker) as s:
        tasks = list(s.scalars(select(InspectionTask).where(InspectionTask.due_date < today)
                               .order_by(InspectionTask.id)))
        for t in tasks:
            r = rng.random()
            if r < 0.15:
                continue  # missed
            day = t.due_date + dt.timedelta(days=int(rng.integers(1, 4)) if r < 0.27 else 0)
            at = dt.datetime.combine(min(day, today), dt.time(10, 30), tz)
            who = Actor(name="网格员", role="worker", worker_id=t.worker_id) if t.worker_id else SUPERVISOR
            issue = rng.random() < 0.15
            complete_task(s, t.id, who, result="issue" if issue else "ok",
                          note="隐患仍在，已督促责任单位" if issue else None, now=at)
            done += 1
        total = len(tasks)
    return total
