"""The routing simulation's arms, their calls, and the report: cost and acceptable-answer
rate against the strongest arm of the same run, p95 latency, and convergence per task type."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from benchmarks.routing_world import (
    CONVERGED_SHARE,
    SEED,
    TASKS,
    WINDOW,
    Knobs,
    Question,
    _prices,
    oracle,
)


@dataclass
class Call:
    question: Question
    model: str
    correct: bool
    cost: Decimal
    latency_ms: float
    event_id: str
    reason: str = ""  # route_reason, from the ledger
    at_ms: int = 0  # when the proxy started the call (the ledger's ts, ms since the epoch)


@dataclass
class Arm:
    name: str
    model: str  # what the calls ask for: a model or the route
    key_id: str
    secret: str = ""
    calls: list[Call] = field(default_factory=list)
    seconds: float = 0.0
    ledger_usd: Decimal = Decimal(0)
    ledger_calls: int = 0
    explored: int = 0

    def ordered(self) -> list[Call]:
        return sorted(self.calls, key=lambda c: c.question.qid)

    @property
    def header_usd(self) -> Decimal:
        return sum((c.cost for c in self.calls), Decimal(0))


def acceptable(calls: list[Call]) -> float:
    return sum(c.correct for c in calls) / len(calls) if calls else math.nan


def p95(calls: list[Call]) -> float:
    return statistics.quantiles([c.latency_ms for c in calls], n=100)[94]


def settled_model(calls: list[Call], task: str) -> str:
    """The model serving most of a task type's last WINDOW calls: where the loop settled."""
    tail = [c.model for c in calls if c.question.task == task][-WINDOW:]
    return Counter(tail).most_common(1)[0][0] if tail else "-"


def convergence(calls: list[Call]) -> dict[str, tuple[int, int] | None]:
    """Per task type: (its calls, the workload's calls) after which every rolling window of
    WINDOW of its calls sends at least CONVERGED_SHARE to the model it settled on; None if the
    last window does not."""
    result: dict[str, tuple[int, int] | None] = {}
    for task in TASKS:
        seq = [c for c in calls if c.question.task == task]
        settled = settled_model(calls, task)
        hits = [c.model == settled for c in seq]
        if len(hits) < WINDOW:
            result[task] = None
            continue
        inside = sum(hits[:WINDOW])
        ok = [inside >= CONVERGED_SHARE * WINDOW]
        for end in range(WINDOW, len(hits)):
            inside += hits[end] - hits[end - WINDOW]
            ok.append(inside >= CONVERGED_SHARE * WINDOW)
        if not ok[-1]:
            result[task] = None
            continue
        first = len(ok) - 1
        while first > 0 and ok[first - 1]:
            first -= 1
        last_of_window = first + WINDOW - 1  # index in seq of the window's last call
        result[task] = (last_of_window + 1, seq[last_of_window].question.qid + 1)
    return result


def _usd(value: Decimal) -> str:
    return f"{value:,.4f}"


def report(
    arms: list[Arm], questions: list[Question], concurrency: int, knobs: Knobs, wall_s: float
) -> list[str]:
    prices = _prices()
    oracles = {name: oracle(task, knobs.floors[name], prices) for name, task in TASKS.items()}
    base, _, aware = arms
    for arm in arms:
        arm.calls = arm.ordered()
    conv = convergence(aware.calls)
    reached = [v[1] for v in conv.values() if v is not None]
    converged_at = max(reached) if len(reached) == len(conv) else None
    base_rate, base_usd = acceptable(base.calls), base.ledger_usd
    lines = [
        f"routing simulation: {len(questions):,} calls per arm (seed {SEED}), 5 task types, "
        f"concurrency {concurrency}, "
        f"one `tollway serve --role all` + embedded Tansu + chDB; {wall_s:.0f} s in all",
        f"  {'arm':18} {'cost $':>10} {'vs strongest':>12} {'acceptable':>10} "
        f"{'vs strongest':>12} {'p95 ms':>7} {'calls/s':>7}  converged after",
    ]
    lines.insert(1, f"  cost_aware route: {knobs.describe()}")
    for arm in arms:
        conv_text = "—"
        if arm is aware:
            conv_text = f"{converged_at:,} calls" if converged_at else "not converged"
        lines.append(
            f"  {arm.name:18} {_usd(arm.ledger_usd):>10} {arm.ledger_usd / base_usd:11.3f}x "
            f"{acceptable(arm.calls):10.2%} {acceptable(arm.calls) / base_rate:11.3f}x "
            f"{p95(arm.calls):7.0f} {len(arm.calls) / arm.seconds:7.1f}  {conv_text}"
        )
    cost_ratio = aware.ledger_usd / base_usd
    quality_ratio = acceptable(aware.calls) / base_rate
    met = cost_ratio <= Decimal("0.5") and quality_ratio >= 0.98
    lines.append(
        f"  target (cost_aware ≤ 0.50x the strongest's cost at ≥ 0.98x its acceptable rate): "
        f"{'met' if met else 'MISSED'} — {1 - float(cost_ratio):.1%} cheaper at "
        f"{quality_ratio:.3f}x"
    )
    checks = [
        f"{a.name}: ledger {a.ledger_calls} calls ${a.ledger_usd} "
        f"{'=' if a.ledger_usd == a.header_usd else '≠'} headers ${a.header_usd}"
        for a in arms
    ]
    lines.append("  ledger vs x-tollway-cost-usd: " + "; ".join(checks))
    lines.append(
        f"  cost_aware explored {aware.explored} calls ({aware.explored / len(aware.calls):.1%}; "
        "Thompson sampling)"
    )
    lines.append(
        f"  {'task type':15} {'floor':>5} {'oracle':17} {'settled on':17} "
        f"{'acceptable aware / strongest':>28}  converged after (task calls / all calls)"
    )
    for name in TASKS:
        seq = [c for c in aware.calls if c.question.task == name]
        strong = [c for c in base.calls if c.question.task == name]
        where = conv[name]
        conv_text = f"{where[0]:,} / {where[1]:,}" if where else "not converged"
        served = Counter(c.model for c in seq).most_common(3)
        lines.append(
            f"  {name:15} {knobs.floors[name]:5g} {oracles[name]:17} "
            f"{settled_model(aware.calls, name):17} "
            f"{acceptable(seq):13.2%} / {acceptable(strong):6.2%}      {conv_text}  "
            f"(served: {', '.join(f'{m} {n}' for m, n in served)})"
        )
    if converged_at:
        after = {c.question.qid for c in aware.calls if c.question.qid >= converged_at}
        subset = {a.name: [c for c in a.calls if c.question.qid in after] for a in arms}
        cost = {n: sum((c.cost for c in calls), Decimal(0)) for n, calls in subset.items()}
        rate = {n: acceptable(calls) for n, calls in subset.items()}
        lines.append(
            f"  after convergence ({len(after):,} calls, the same questions in every arm, cost "
            f"from the headers): cost_aware ${cost[aware.name]:.4f} = "
            f"{cost[aware.name] / cost[base.name]:.3f}x the strongest's, acceptable "
            f"{rate[aware.name]:.2%} vs {rate[base.name]:.2%} = "
            f"{rate[aware.name] / rate[base.name]:.3f}x"
        )
    return lines
