"""Cheaper models that are good enough: routing recommendations from cost and feedback.

For every task type x model that spent money in the window (the "current" model), each other
model seen on the same task type is a candidate when it has enough calls and feedback, its mean
quality score is within `QUALITY_TOLERANCE` of the current model's (or at least
`QUALITY_FLOOR` when the current model has too little feedback to compare), and its success rate
is not worse by more than `SUCCESS_TOLERANCE`. The current traffic is re-priced at the
candidate's catalogue prices when both models are priced in the config (the same tokens, another
price list), otherwise at the candidate's observed mean cost per call. The candidate that saves
most is recommended, with the saving scaled to 30 days and a `tollway.yaml` route to paste.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from analytics.responses import usd
from tollway.config.schema import TollwayConfig

QUALITY_TOLERANCE = 0.05
QUALITY_FLOOR = 0.8
SUCCESS_TOLERANCE = 0.02
_MTOK = Decimal(1_000_000)


@dataclass(frozen=True)
class Thresholds:
    min_calls: int = 20
    min_feedback: int = 10


def _reprice(current: dict[str, Any], candidate: dict[str, Any], config: TollwayConfig) -> Decimal:
    """What the current model's traffic would have cost on the candidate."""
    model = config.model(candidate["model"])
    if model is not None and model.input_per_mtok is not None and model.output_per_mtok:
        return (
            Decimal(current["input_tokens"]) * model.input_per_mtok
            + Decimal(current["output_tokens"]) * model.output_per_mtok
        ) / _MTOK
    return Decimal(candidate["mean_cost_usd"]) * current["calls"]


def _good_enough(current: dict[str, Any], candidate: dict[str, Any], limits: Thresholds) -> bool:
    if candidate["calls"] < limits.min_calls or candidate["score_count"] < limits.min_feedback:
        return False
    if candidate["mean_score"] is None:
        return False
    if current["score_count"] >= limits.min_feedback and current["mean_score"] is not None:
        floor = current["mean_score"] - QUALITY_TOLERANCE
    else:
        floor = QUALITY_FLOOR
    if candidate["mean_score"] < floor:
        return False
    return bool(candidate["success_rate"] >= current["success_rate"] - SUCCESS_TOLERANCE)


def _snippet(task_type: str, candidate: str, current: str) -> str:
    name = task_type or "default"
    return (
        f"# callers with task type {name!r}: ask for model {name!r}\n"
        "routes:\n"
        f"  - {{name: {name}, strategy: ordered, candidates: [{candidate}],"
        f" fallbacks: [{current}]}}\n"
    )


def recommend(
    stats: list[dict[str, Any]], days: float, config: TollwayConfig, limits: Thresholds
) -> list[dict[str, Any]]:
    """`stats` are `routing_stats` rows keyed by task_type x model over `days` days."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for row in stats:
        by_task.setdefault(row["task_type"], []).append(row)
    found = []
    for task_type, rows in by_task.items():
        for current in rows:
            spent = Decimal(current["cost_usd"])
            if spent <= 0 or current["calls"] < limits.min_calls:
                continue
            best: tuple[Decimal, dict[str, Any]] | None = None
            for candidate in rows:
                if candidate["model"] == current["model"]:
                    continue
                if not _good_enough(current, candidate, limits):
                    continue
                saving = spent - _reprice(current, candidate, config)
                if saving > 0 and (best is None or saving > best[0]):
                    best = (saving, candidate)
            if best is None:
                continue
            saving, candidate = best
            monthly = (saving * Decimal(30) / Decimal(str(days))).quantize(Decimal("1e-6"))
            found.append(
                {
                    "task_type": task_type,
                    "current_model": current["model"],
                    "current_cost_usd": usd(spent),
                    "calls": current["calls"],
                    "candidate_model": candidate["model"],
                    "candidate_quality": candidate["mean_score"],
                    "candidate_p95_ms": candidate["p95_latency_ms"],
                    "projected_monthly_savings_usd": usd(monthly),
                    "yaml_snippet": _snippet(task_type, candidate["model"], current["model"]),
                }
            )
    found.sort(key=lambda r: -Decimal(r["projected_monthly_savings_usd"]))
    return found
