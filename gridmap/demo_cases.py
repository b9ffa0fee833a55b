"""The demo's cases: a few months of believable work, told through the real life-cycle.

Owns: what the synthetic cases say (categories with descriptions that belong to them), where
and when they are reported (cells drawn in proportion to their households, points inside the
cell, working hours on working days over the past ``DAYS`` days) and how each one's story
goes. Every step is a call of the ordinary services (``gridmap.incidents.intake.create_case``,
``gridmap.incidents.lifecycle.apply_action``, ``gridmap.assign.escalation.escalate_overdue``)
at the time it happens, by the actor who would do it (the cell's grid worker, the community's
grid head), so every history, deadline, on-time flag and metric is genuine.

Stories (``FATES``): closed on time, closed late, closed after an approved extension, reworked
after a failed check, returned by the worker and dispatched again, self-handled on the spot,
parked, rejected, evaluated by the head; recent cases still open (dispatched, in progress,
handled and waiting for the check, an extension waiting for approval, returned and waiting for
dispatch). Old cases still open are overdue; the final escalation run flags them and moves them
up, as the scheduled ``gridmap cases escalate`` would. A few stories are pinned to the cells of
the demo users (``PINNED``) so that each role opens on real work.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from sqlalchemy import select

from gridmap.accounts.actor import SYSTEM, Actor
from gridmap.assign.escalation import escalate_overdue
from gridmap.assign.models import Responsibility, Worker
from gridmap.boundaries.models import Area
from gridmap.db import transaction
from gridmap.incidents import lifecycle
from gridmap.incidents.intake import IntakeError, create_case
from gridmap.incidents.lifecycle import TransitionError
from gridmap.incidents.models import Case, Category

DAYS = 120
TZ = ZoneInfo("Asia/Shanghai")

#: category → what residents and workers write about it (each category's own words)
TEXTS: dict[str, list[str]] = {
    "city.environment.litter": ["小区门口垃圾散落未清扫", "路边绿化带内有大量暴露垃圾", "菜场后门垃圾袋堆积"],
    "city.environment.overflow": ["垃圾桶已满溢，周边散落垃圾", "分类垃圾箱满溢，异味较重"],
    "city.environment.piling": ["人行道上堆放建筑材料", "楼下空地乱堆杂物"],
    "city.advertising.flyposting": ["电线杆上张贴大量小广告", "单元门口被喷涂办证小广告"],
    "city.construction.noise": ["工地夜间施工噪声扰民", "装修噪声中午不停"],
    "city.construction.dust": ["工地未覆盖防尘网，扬尘严重"],
    "city.street_order.outside_shop": ["店家占用人行道经营", "水果店把货架摆到店外"],
    "city.street_order.vending": ["学校门口有流动摊贩"],
    "city.street_order.parking": ["机动车占用消防通道停放", "路口车辆乱停，影响通行"],
    "city.street_order.bicycles": ["共享单车堆放在盲道上"],
    "city.emergency.waterlogging": ["暴雨后路面积水较深，车辆难以通行"],
    "component.utilities.manhole": ["人行道井盖破损，存在安全隐患", "井盖缺失，已临时摆放警示物"],
    "component.utilities.street_light": ["小区路灯不亮已有一周", "路灯杆倾斜，灯罩破损"],
    "component.road.guardrail": ["道路护栏被撞坏"],
    "component.environment.bin": ["果皮箱破损无法使用"],
    "component.greening.tree": ["台风后行道树倒伏，压在人行道上", "行道树枝条遮挡路灯"],
    "dispute.neighbour": ["楼上楼下因漏水发生纠纷", "邻里因噪音发生纠纷", "邻居在公共楼道堆物引发争吵"],
    "dispute.property": ["业主与物业因停车费发生纠纷", "物业未及时维修电梯，业主不满"],
    "dispute.family": ["家庭成员因赡养老人问题发生矛盾"],
    "hazard.fire.ebike_charging": ["楼道内电动自行车飞线充电", "电动车停放在楼梯间充电"],
    "hazard.fire.blocked_exit": ["消防通道被杂物堵塞"],
    "hazard.self_built": ["自建房墙体出现裂缝"],
    "governance.population.rental": ["出租房新入住人员未登记"],
    "governance.special_groups.community_correction": ["社区矫正对象本月未按时报到"],
    "service.elderly": ["独居老人需要上门助餐服务", "高龄老人申请居家养老服务"],
    "service.assistance": ["困难家庭申请临时救助"],
    "visit.household": ["入户走访发现老人行动不便需帮扶"],
}
#: relative frequency of the categories (litter and parking far more common than disputes)
WEIGHTS = {"city.environment.litter": 9, "city.environment.overflow": 6, "city.street_order.parking": 7,
           "city.street_order.outside_shop": 5, "component.utilities.street_light": 5,
           "dispute.neighbour": 4, "hazard.fire.ebike_charging": 4}

#: stories of old cases (reported more than OPEN_DAYS ago) and of recent ones, with their weights
OLD_FATES = {"closed_on_time": 44, "closed_late": 12, "extended": 6, "rework": 5, "returned": 5,
             "self_handled": 12, "parked": 3, "rejected": 3, "overdue": 6, "handled": 2, "in_progress": 2}
RECENT_FATES = {"dispatched": 22, "in_progress": 20, "handled": 14, "closed_on_time": 16,
                "extension_pending": 6, "returned_waiting": 5, "self_handled": 10, "rejected": 2, "parked": 2}
OPEN_DAYS = 6
EVALUATED_SHARE = 0.55
SATISFACTION = ([5, 4, 3, 2, 1], [0.46, 0.33, 0.12, 0.06, 0.03])

#: stories pinned to the demo users' areas: (cell code prefix, fate, age in days[, category])
PINNED = [
    # wangge, the grid worker of 中昌社区第1网格: new cases, some in progress, an extension asked, history
    # (categories with limits of days, so that his open cases are still his: an overdue one climbs to the head)
    ("330903003003001", "dispatched", 0.2, "service.elderly"), ("330903003003001", "dispatched", 1.1, "dispute.neighbour"),
    ("330903003003001", "in_progress", 1.5, "dispute.property"), ("330903003003001", "in_progress", 2.2, "dispute.family"),
    ("330903003003001", "extension_pending", 3.0, "dispute.property"), ("330903003003001", "closed_on_time", 12),
    ("330903003003001", "closed_late", 25), ("330903003003001", "self_handled", 40),
    # zhongchang, the grid head of 中昌社区: checks to do, an extension to approve, a case to dispatch
    ("330903003003002", "handled", 1.0), ("330903003003003", "handled", 2.0),
    ("330903003003004", "extension_pending", 2.5), ("330903003003005", "returned_waiting", 1.2),
    ("330903003003006", "overdue", 15),
    # jiefang, 解放街道: checks, a returned case and overdue ones in its communities
    ("330902001001", "handled", 1.0), ("330902001002", "handled", 2.0), ("330902001003", "returned_waiting", 1.5),
    ("330902001004", "overdue", 20), ("330902001005", "overdue", 30), ("330902001006", "closed_late", 18),
    # one of every other story, so that even a small demo shows the whole life-cycle
    ("330902001007", "evaluated", 35), ("330902001008", "evaluated", 50), ("330902002", "closed_on_time", 45),
    ("330902003", "extended", 60), ("330902004", "rework", 70), ("330902005", "returned", 80),
    ("330903001", "self_handled", 55), ("330903002", "parked", 65), ("330903004", "rejected", 90),
    ("330921101", "closed_late", 100), ("330921", "overdue", 40), ("330922", "evaluated", 110),
]


@dataclass
class _Cells:
    ids: np.ndarray
    codes: np.ndarray
    community: np.ndarray
    geoms: np.ndarray
    households: np.ndarray


def _cells(session) -> _Cells:
    from gridmap.boundaries.lookup import get_index

    idx = get_index(session)
    rows = dict(session.execute(select(Area.code, Area.id).where(Area.level == "cell")).all())
    hh = dict(session.execute(select(Area.code, Area.households).where(Area.level == "cell")).all())
    parent = dict(session.execute(select(Area.id, Area.parent_id).where(Area.level == "cell")).all())
    ids = np.array([rows[c] for c in idx.codes])
    return _Cells(ids, idx.codes, np.array([parent[i] for i in ids]), idx.geoms,
                  np.array([max(int(hh.get(c) or 0), 1) for c in idx.codes], dtype=float))


def _points_in(rng, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One random point inside each polygon (24 tries in its bounds, else its point on surface)."""
    b = shapely.bounds(geoms)
    u, v = rng.random((len(geoms), 24)), rng.random((len(geoms), 24))
    x = b[:, [0]] + u * (b[:, [2]] - b[:, [0]])
    y = b[:, [1]] + v * (b[:, [3]] - b[:, [1]])
    inside = shapely.contains_xy(geoms[:, None], x, y)
    first = np.argmax(inside, axis=1)
    ok = inside[np.arange(len(geoms)), first]
    px, py = x[np.arange(len(geoms)), first], y[np.arange(len(geoms)), first]
    if (~ok).any():
        pos = shapely.point_on_surface(geoms[~ok])
        px[~ok], py[~ok] = shapely.get_x(pos), shapely.get_y(pos)
    return px, py


def _working_time(rng, now: dt.datetime, age_days: float) -> dt.datetime:
    """A moment about ``age_days`` before ``now`` in working hours (8:30–11:30, 13:30–16:00 local,
    Monday to Friday), never in the future."""
    local = (now - dt.timedelta(days=age_days)).astimezone(TZ)
    day = local.date()
    # (reports until 16:00, so that a recent case can be taken on the same day)
    hour = rng.uniform(8.5, 11.5) if rng.random() < 0.55 else rng.uniform(13.5, 16.0)
    for _ in range(10):  # the working day itself, or the one before when that moment is still to come
        while day.weekday() >= 5:
            day -= dt.timedelta(days=1)
        t = (dt.datetime.combine(day, dt.time(0), TZ) + dt.timedelta(hours=hour)).astimezone(dt.timezone.utc)
        if t < now - dt.timedelta(minutes=20):
            return t
        day -= dt.timedelta(days=1)
    return t


def _within_work(t: dt.datetime) -> dt.datetime:
    """``t`` moved forward into working hours (a worker acts in the daytime)."""
    local = t.astimezone(TZ)
    for _ in range(10):
        if local.weekday() < 5 and 8.5 <= local.hour + local.minute / 60 <= 17.5:
            return local.astimezone(dt.timezone.utc)
        nxt = (local + dt.timedelta(days=1)) if local.hour >= 17 else local
        local = dt.datetime.combine(nxt.date(), dt.time(8, 40), TZ)
        while local.weekday() >= 5:
            local += dt.timedelta(days=1)
    return local.astimezone(dt.timezone.utc)


def _last_work_before(now: dt.datetime) -> dt.datetime:
    """The latest moment in working hours before ``now`` (a few minutes ago, or the last 17:00)."""
    local = now.astimezone(TZ)
    if local.weekday() < 5 and 8.5 <= local.hour + local.minute / 60 <= 17.5:
        return now - dt.timedelta(minutes=5)
    day = local.date() if local.hour + local.minute / 60 > 17.5 else local.date() - dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(17, 0), TZ).astimezone(dt.timezone.utc)


class _Story:
    """One case's life, step by step; stops quietly when a step would lie in the future."""

    def __init__(self, session, case: Case, rng, now: dt.datetime):
        self.s, self.case, self.rng, self.now = session, case, rng, now
        self.t = case.reported_at
        self.alive = True

    def at(self, t: dt.datetime) -> bool:
        raw = max(t, self.t + dt.timedelta(minutes=5))
        t = _within_work(raw)
        if t >= self.now > raw:  # meant for before now, pushed past it by the night: the last working hour
            last = _last_work_before(self.now)
            t = last if last > self.t + dt.timedelta(minutes=5) else raw  # (or a little overtime)
        if t >= self.now:
            self.alive = False
        else:
            self.t = t
        return self.alive

    def do(self, action: str, actor: Actor, comment: str | None = None, data: dict | None = None,
           after: dt.timedelta | None = None, when: dt.datetime | None = None) -> bool:
        if not self.alive:
            return False
        if not self.at(when if when is not None else self.t + (after or dt.timedelta(minutes=30))):
            return False
        try:
            self.case = lifecycle.apply_action(self.s, self.case.id, action, actor, comment=comment, data=data,
                                               now=self.t)
        except TransitionError:  # e.g. the head handled it himself and may not check it: the story ends
            self.alive = False   # (apply_action checks before it writes: nothing half-done)
            return False
        return True

    def assignee(self) -> Actor | None:
        """The case's assigned grid worker as an actor (None when a department has it)."""
        w = self.s.get(Worker, self.case.assignee_worker_id) if self.case.assignee_worker_id else None
        return None if w is None else Actor(name=w.name, role="worker" if w.role != "head" else "head",
                                            worker_id=w.id, area_id=w.area_id if w.role == "head" else None)

    def minutes(self, lo: float, hi: float) -> dt.timedelta:
        return dt.timedelta(minutes=float(self.rng.uniform(lo, hi)))

    def before_deadline(self, lo: float, hi: float) -> dt.datetime:
        """A moment between ``lo`` and ``hi`` of the way from now-in-the-story to the deadline, or
        to the real now when the deadline lies beyond it (a recent case is worked on already)."""
        dl = self.case.deadline_at or (self.t + dt.timedelta(days=2))
        end = min(dl, self.now - dt.timedelta(minutes=10))
        if end <= self.t:
            end = dl
        return self.t + (end - self.t) * float(self.rng.uniform(lo, hi))


def _staff(session):
    """Per cell id: its primary worker; per community id: its head (as actors)."""
    workers = {}
    for cell_id, wid, name in session.execute(
            select(Responsibility.cell_id, Worker.id, Worker.name).join(Worker, Worker.id == Responsibility.worker_id)
            .where(Responsibility.role == "primary", Worker.role == "worker")):
        workers[cell_id] = Actor(name=name, role="worker", worker_id=wid)
    heads = {}
    for area_id, wid, name in session.execute(select(Worker.area_id, Worker.id, Worker.name)
                                              .where(Worker.role == "head")):
        heads[area_id] = Actor(name=name, role="head", worker_id=wid, area_id=area_id)
    return workers, heads


def _tell(story: _Story, fate: str, worker: Actor | None, head: Actor) -> None:
    """Play ``fate`` on a freshly reported (and, unless self-handled/rejected, dispatched) case."""
    st, rng = story, story.rng
    if fate == "self_handled":
        st.do("self_handle", worker, "现场劝导并处置完毕", after=st.minutes(5, 40))
        st.do("verify_pass", head, "核查属实，已处置", after=st.minutes(60, 600))
        _maybe_evaluate(st, head)
        return
    if fate == "rejected":
        st.do("file", SYSTEM, "立案", after=st.minutes(1, 5))
        st.do("reject", head, "经核实不属于受理范围，已告知上报人", after=st.minutes(30, 240))
        return
    if st.case.status != "dispatched":
        return  # not routed (a department's queue, say): it waits where the intake left it
    wk = st.assignee()
    if fate == "dispatched" or wk is None:
        return
    if fate in ("returned", "returned_waiting"):
        st.do("return", wk, "该问题属于相邻网格，请重新派遣", after=st.minutes(20, 180))
        if fate == "returned_waiting":
            return
        st.do("dispatch", head, "重新派遣", data={"worker_id": wk.worker_id}, after=st.minutes(30, 300))
    st.do("accept", wk, None, after=st.minutes(10, 120))
    wk = st.assignee() or wk
    if fate == "in_progress":
        return
    if fate == "parked":
        st.do("park", head, "需协调区级部门统一处置，暂时挂账", after=st.minutes(60, 600))
        return
    if fate == "overdue":
        return  # accepted and left: the deadline passes (escalated at the end)
    if fate in ("extended", "extension_pending"):
        st.do("request_extension", wk, "需协调物业及相关部门，申请延期", when=st.before_deadline(0.3, 0.7))
        if fate == "extension_pending":
            return
        st.do("approve_extension", head, None, after=st.minutes(30, 240))
    if fate == "closed_late":
        dl = st.case.deadline_at or st.t
        st.do("feedback", wk, "已处置完毕，现场照片已上传", when=dl + dt.timedelta(hours=float(rng.uniform(3, 60))))
    else:
        st.do("feedback", wk, "已处置完毕，现场照片已上传", when=st.before_deadline(0.2, 0.6))
    if fate == "handled":
        return
    if fate == "rework":
        st.do("verify_fail", head, "现场复核仍未整改到位，请返工", after=st.minutes(30, 180))
        st.do("feedback", wk, "已返工整改", when=st.before_deadline(0.5, 0.9))
    st.do("verify_pass", head, None, after=st.minutes(20, 240))
    _maybe_evaluate(st, head, always=fate == "evaluated")


def _maybe_evaluate(st: _Story, head: Actor, always: bool = False) -> None:
    if st.alive and st.case.status == "closed" and (always or st.rng.random() < EVALUATED_SHARE):
        score = int(st.rng.choice(SATISFACTION[0], p=SATISFACTION[1]))
        st.do("evaluate", head, "电话回访上报人", data={"satisfaction": score}, after=dt.timedelta(days=1))


def load_demo_cases(sessionmaker, n: int, *, seed: int = 2026, now: dt.datetime | None = None,
                    echo=print) -> str:
    """Report ``n`` synthetic cases (plus the pinned ones) and play their stories; one line of summary."""
    # the demo's "now" is the last working moment: loaded at 07:30 or on a Sunday, the stories of
    # "today" happened in the last working hours, not in the future (where they would be cut short)
    now = _last_work_before(now or dt.datetime.now(dt.timezone.utc)) + dt.timedelta(minutes=5)
    rng = np.random.default_rng(seed)
    with sessionmaker() as s:
        cells = _cells(s)
        known = set(s.scalars(select(Category.code).where(Category.active.is_(True))))
        # the categories the cell's grid worker keeps (权责清单: the others go to a department's queue)
        grid_kept = set(s.scalars(select(Category.code).where(Category.active.is_(True),
                                                             Category.department_id.is_(None))))
        workers, heads = _staff(s)
    if not len(cells.ids):
        return "cases: no cells"
    codes = [c for c in TEXTS if c in known]
    if not codes:
        return "cases: no categories (load them first)"
    w = np.array([WEIGHTS.get(c, 2) for c in codes], dtype=float)
    w /= w.sum()
    # a pinned story is a grid worker's (or her head's) work: its category stays in the cell
    grid_codes = [c for c in codes if c in grid_kept] or codes
    gw = np.array([WEIGHTS.get(c, 2) for c in grid_codes], dtype=float)
    gw /= gw.sum()
    p_cell = cells.households / cells.households.sum()

    plan = []  # (cell index, fate, age in days, category or None)
    for prefix, fate, age, *cat in PINNED:
        hit = np.flatnonzero(np.char.startswith(cells.codes.astype(str), prefix))
        if len(hit):
            plan.append((int(hit[0]), fate, age, cat[0] if cat and cat[0] in known
                         else str(rng.choice(grid_codes, p=gw))))
    ages = DAYS * rng.power(0.8, size=n)  # somewhat more cases recently than long ago
    picks = rng.choice(len(cells.ids), size=n, p=p_cell)
    for i, age in zip(picks, ages):
        fates = RECENT_FATES if age < OPEN_DAYS else OLD_FATES
        names, fw = list(fates), np.array(list(fates.values()), dtype=float)
        plan.append((int(i), str(rng.choice(names, p=fw / fw.sum())), float(age), None))
    lon, lat = _points_in(rng, cells.geoms[[p[0] for p in plan]])

    made = refused = 0
    for k, (i, fate, age, pinned_cat) in enumerate(plan):
        cat = pinned_cat or str(rng.choice(codes, p=w))
        text = TEXTS[cat][int(rng.integers(len(TEXTS[cat])))]
        at = _working_time(rng, now, age)
        source = "patrol" if fate == "self_handled" else str(rng.choice(["patrol", "resident", "hotline"],
                                                                         p=[0.5, 0.3, 0.2]))
        data = {"category": cat, "description": text, "external_id": f"demo-{k:05d}",
                "location": {"lon": float(lon[k]), "lat": float(lat[k])}}
        worker = workers.get(int(cells.ids[i]))
        head = heads.get(int(cells.community[i]))
        if head is None:
            continue
        try:
            with transaction(sessionmaker) as s:
                case = create_case(s, data, SYSTEM, source=source, now=at,
                                   auto_dispatch=fate not in ("self_handled", "rejected"))
                _tell(_Story(s, case, rng, now), fate, worker, head)
            made += 1
        except (IntakeError, TransitionError) as exc:
            refused += 1
            echo(f"demo case {k} ({fate}) not told: {exc}")
    with transaction(sessionmaker) as s:
        escalated = escalate_overdue(s, now)
    return (f"cases: {made} synthetic cases over {DAYS} days ({refused} refused); "
            f"{len(escalated)} overdue escalated")
