"""Scorecards (考核排名) and the red and black lists (红黑榜) of workers, cells, communities and streets.

Owns: ranking by a composite score built on ``incidents.metrics.compute_metrics`` (the metrics and
their denominators are defined there, not here):

    composite = w_on_time × 按期结案率 + w_satisfaction × (mean satisfaction − 1) / 4

with the weights normalised to sum to 1. A unit whose cases were never evaluated is scored on the
on-time rate alone (``basis: "on_time_only"``). Units with fewer than ``min_due`` cases due to close
are listed but not ranked (too few cases to judge). The red list (红榜) is the best ``top_n`` ranked
units scoring at least ``red_min``; the black list (黑榜) the worst ``top_n`` scoring at most
``black_max`` that are not on the red list. Every knob is a ``ScorecardConfig`` field; the API
takes them from the app config (GRIDMAP_SCORECARD_*) and the query string.

Each unit also carries its inspection compliance of the period (``inspections``: due, on time,
late, missed, 按时巡检率; ``hazards.indicators``), shown beside the score and not part of it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from sqlalchemy.orm import Session

from gridmap.accounts.actor import Actor
from gridmap.analysis.common import LEVEL_ZH, AnalysisError, period

LEVELS = ("worker", "cell", "community", "street")


@dataclass(frozen=True)
class ScorecardConfig:
    weight_on_time: float = 0.7
    weight_satisfaction: float = 0.3
    min_due: int = 3
    top_n: int = 5
    red_min: float = 0.9
    black_max: float = 0.8
    exclude_extended: bool = False

    def check(self) -> "ScorecardConfig":
        for name in ("weight_on_time", "weight_satisfaction"):
            v = getattr(self, name)
            if not (0 <= v <= 1):
                raise AnalysisError(name, f"{name} must be from 0 to 1, got {v}")
        if self.weight_on_time + self.weight_satisfaction <= 0:
            raise AnalysisError("weight_on_time", "the weights must not both be 0")
        if self.min_due < 1:
            raise AnalysisError("min_due", "min_due must be at least 1")
        if not (1 <= self.top_n <= 100):
            raise AnalysisError("top_n", "top_n must be from 1 to 100")
        for name in ("red_min", "black_max"):
            v = getattr(self, name)
            if not (0 <= v <= 1):
                raise AnalysisError(name, f"{name} must be from 0 to 1, got {v}")
        return self

    def with_overrides(self, **kw) -> "ScorecardConfig":
        return replace(self, **{k: v for k, v in kw.items() if v is not None}).check()


def composite(on_time_rate: float | None, satisfaction_mean: float | None, cfg: ScorecardConfig
              ) -> tuple[float | None, str]:
    """(score 0…1, basis) of one unit; None when it has no on-time rate."""
    if on_time_rate is None:
        return None, "no_cases_due"
    total = cfg.weight_on_time + cfg.weight_satisfaction
    if satisfaction_mean is None or cfg.weight_satisfaction == 0:
        return on_time_rate, "on_time_only"
    sat = (satisfaction_mean - 1.0) / 4.0
    return (cfg.weight_on_time * on_time_rate + cfg.weight_satisfaction * sat) / total, "on_time_and_satisfaction"


def scorecards(session: Session, actor: Actor | None, *, level: str = "cell", date_from=None, date_to=None,
               config: ScorecardConfig | None = None, per=None) -> dict:
    """Ranked units of ``level`` with their metrics, composite score, rank, and the red and black lists."""
    from gridmap.accounts.scope import case_filter
    from gridmap.incidents.metrics import MetricsError, compute_metrics, definitions

    if level not in LEVELS:
        raise AnalysisError("level", f"level must be one of {', '.join(LEVELS)}, got {str(level)[:20]!r}")
    cfg = (config or ScorecardConfig()).check()
    per = per or period(date_from, date_to)
    scope = case_filter(session, actor) if actor is not None else None
    try:
        rows = compute_metrics(session, group_by=level, date_from=per.date_from, date_to=per.date_to,
                               scope_filter=scope, exclude_extended=cfg.exclude_extended, tz=per.tz)
    except MetricsError as e:
        raise AnalysisError("from", str(e)) from None
    units = []
    for r in rows:
        if r["group"] is None or r["group"]["id"] is None:
            continue  # cases with no worker / area cannot be ranked
        score, basis = composite(r["on_time_rate"], r["satisfaction_mean"], cfg)
        due = r["on_time_denominator"]
        units.append({"id": r["group"]["id"], "code": r["group"]["code"], "name": r["group"]["name"],
                      "due": due, "closed": r["closed"], "closed_on_time": r["closed_on_time"],
                      "on_time_rate": r["on_time_rate"], "closure_rate": r["closure_rate"],
                      "satisfaction_mean": r["satisfaction_mean"], "satisfaction_count": r["satisfaction_count"],
                      "filed": r["filed"],
                      "composite": None if score is None else round(score, 4), "basis": basis, "rank": None,
                      "ranked": score is not None and due >= cfg.min_due,
                      "note": None if score is None or due >= cfg.min_due else
                      f"not ranked: {due} cases due, fewer than {cfg.min_due}"})
    ranked = sorted((u for u in units if u["ranked"]),
                    key=lambda u: (-u["composite"], -u["due"], u["code"] or ""))
    rank = 0
    prev = None
    for i, u in enumerate(ranked, start=1):
        if u["composite"] != prev:
            rank, prev = i, u["composite"]
        u["rank"] = rank  # equal scores share a rank (1, 2, 2, 4)
    red = [u for u in ranked if u["composite"] >= cfg.red_min][: cfg.top_n]
    red_ids = {u["id"] for u in red}
    black = [u for u in reversed(ranked) if u["composite"] <= cfg.black_max and u["id"] not in red_ids][: cfg.top_n]
    others = sorted((u for u in units if not u["ranked"]), key=lambda u: u["code"] or "")
    insp = _inspections(session, actor, level, per)
    for u in units:
        u["inspections"] = insp.get(u["id"])
    brief = lambda u: {k: u[k] for k in ("id", "code", "name", "rank", "composite", "on_time_rate",  # noqa: E731
                                          "satisfaction_mean", "due")}
    out = {"level": level, "level_name": LEVEL_ZH[level], "period": per.as_dict(), "config": asdict(cfg),
           "formula": "composite = (w_on_time × on_time_rate + w_satisfaction × (satisfaction_mean − 1) / 4) / "
                      "(w_on_time + w_satisfaction); on_time_rate alone when nothing was evaluated",
           "definitions": {**definitions(cfg.exclude_extended), **_inspection_definitions()},
           "rows": ranked + others,
           "red_list": [brief(u) for u in red], "black_list": [brief(u) for u in black], "message": None}
    if not units:
        out["message"] = f"no cases in the period {per.date_from} to {per.date_to}: nothing to rank"
    elif not ranked:
        out["message"] = f"no {level} has at least {cfg.min_due} cases due to close: nothing ranked"
    return out


def _inspection_definitions() -> dict:
    from gridmap.hazards.indicators import DEFINITIONS

    return {f"inspections.{k}": v for k, v in DEFINITIONS.items() if k.startswith("inspection")}


def _inspections(session: Session, actor: Actor | None, level: str, per) -> dict:
    """Inspection compliance of the period per unit id of ``level`` (worker: the assigned worker)."""
    from gridmap.accounts.actor import SYSTEM
    from gridmap.hazards.indicators import compliance_by_worker, inspection_compliance

    if level == "worker":
        return compliance_by_worker(session, actor, date_from=per.date_from, date_to=per.date_to)
    res = inspection_compliance(session, actor or SYSTEM, group_by=level, date_from=per.date_from,
                                date_to=per.date_to)
    return {r["group"]["id"]: {k: r[k] for k in ("due", "on_time", "late", "missed", "pending", "on_time_rate")}
            for r in res["rows"] if r["group"] and r["group"]["id"] is not None}
