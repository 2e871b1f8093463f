"""How each route strategy orders the models able to serve a call.

Pure functions of the candidates, the statistics and a random source, so each is unit-tested.
Every strategy returns the order to try the models in and the reason that goes into the
CallEvent's `route_reason`; the resilience loop then tries them in that order.

- `priority`: the route's own order (first healthy candidate wins).
- `weighted`: a random order drawn by weight (Efraimidis-Spirakis), so the first candidate gets
  its weight's share of the traffic and the others stay in line as fallbacks.
- `lowest_latency`: the measured models by p50 latency, then the unmeasured in route order.
- `cost_aware`: router/choice.py's ranking, with a share of exploration (router/exploration.py).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from router.choice import Constraints, CostOf, Needs, Observed, rank
from router.exploration import thompson
from tollway.config.schema import ModelConfig


@dataclass(frozen=True)
class Order:
    models: list[ModelConfig]
    reason: str
    explored: bool = False
    held_out: frozenset[str] = frozenset()  # cost_aware: excluded on quality this time


def priority(fit: Sequence[ModelConfig]) -> Order:
    return Order(list(fit), "priority: candidates in route order")


def weighted(fit: Sequence[ModelConfig], weights: Mapping[str, float], rng: random.Random) -> Order:
    keyed = [(rng.random() ** (1.0 / weights.get(m.name, 1.0)), m) for m in fit]
    keyed.sort(key=lambda item: item[0], reverse=True)
    models = [m for _, m in keyed]
    total = sum(weights.get(m.name, 1.0) for m in fit)
    share = weights.get(models[0].name, 1.0) / total if models else 0.0
    name = models[0].name if models else "-"
    return Order(models, f"weighted: drew {name} (weight share {share:.0%})")


def lowest_latency(
    fit: Sequence[ModelConfig], observed: Mapping[str, Observed], min_calls: int
) -> Order:
    def p50(model: ModelConfig) -> float | None:
        seen = observed.get(model.name)
        if seen is None or seen.calls < min_calls or seen.p50_latency_ms is None:
            return None
        return seen.p50_latency_ms

    measured = sorted((m for m in fit if p50(m) is not None), key=lambda m: p50(m) or 0.0)
    unmeasured = [m for m in fit if p50(m) is None]
    if not measured:
        return Order(list(fit), "lowest_latency: no latency measured yet, route order")
    first = measured[0]
    return Order(
        [*measured, *unmeasured], f"lowest_latency: {first.name} at p50 {p50(first):.0f} ms"
    )


def cost_aware(
    candidates: Sequence[ModelConfig],
    needs: Needs,
    cost_of: CostOf,
    observed: Mapping[str, Observed],
    constraints: Constraints,
    exploration: float,
    rng: random.Random,
) -> Order:
    """The cheapest eligible model first; with probability `exploration`, a Thompson draw."""
    ranking = rank(candidates, needs, cost_of, observed, constraints)
    if exploration > 0 and ranking.fit and rng.random() < exploration:
        draw = thompson(ranking.fit, observed, constraints.quality_floor, rng)
        if draw is not None:
            rest = [m for m in ranking.models if m.name != draw.model.name]
            reason = draw.reason(constraints.quality_floor)
            return Order([draw.model, *rest], reason, True, ranking.held_out)
    if not ranking.models and ranking.fit:  # every able model misses a target: least bad first
        best = sorted(ranking.fit, key=lambda m: -_quality(observed.get(m.name)))
        reason = ranking.reason + "; relaxed the targets, best measured quality first"
        return Order(best, reason, held_out=ranking.held_out)
    return Order(ranking.models, ranking.reason, held_out=ranking.held_out)


def _quality(seen: Observed | None) -> float:
    return seen.mean_score if seen and seen.mean_score is not None else 0.5
