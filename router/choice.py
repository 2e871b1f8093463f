"""Cost-aware choice among a route's candidates: the cheapest model that will do the job.

Pure logic, no I/O, so every constraint and tie-break is unit-tested. Given what a request
needs (capabilities, prompt size and output cap, task type), what each model costs (the
catalogue) and how each has performed (routing statistics: p95 latency, mean feedback score and
how many scores back it), `rank` filters out the models that cannot or should not serve the
request and orders the rest by expected cost per call. Statistics with too few samples do not
count against a model; with none at all the catalogue alone decides. Every exclusion is named in
the returned reason, which goes into the CallEvent's `route_reason`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tollway.config.schema import ModelConfig


@dataclass(frozen=True)
class Needs:
    capabilities: frozenset[str] = frozenset()
    prompt_tokens: int = 0
    output_tokens: int = 256  # the request's cap, or what such calls usually produce
    task_type: str = ""


@dataclass(frozen=True)
class Observed:
    """A model's recent record on one task type (from `tollway.routing-stats.v1`)."""

    calls: int = 0
    p95_latency_ms: float | None = None
    mean_score: float | None = None
    score_count: int = 0


@dataclass(frozen=True)
class Constraints:
    latency_target_ms: float | None = None
    quality_floor: float | None = None
    min_calls: int = 20  # latency needs this many calls before it can exclude a model
    min_scores: int = 10  # quality needs this many scores before it can exclude a model


@dataclass(frozen=True)
class Ranking:
    models: list[ModelConfig]
    reason: str
    excluded: dict[str, str] = field(default_factory=dict)


#: the expected cost of a call on a model, given its prompt and output token counts
CostOf = Callable[[ModelConfig, int, int], Decimal]


def rank(
    candidates: Sequence[ModelConfig],
    needs: Needs,
    cost_of: CostOf,
    observed: Mapping[str, Observed] | None = None,
    constraints: Constraints = Constraints(),
) -> Ranking:
    observed = observed or {}
    excluded: dict[str, str] = {}
    eligible: list[tuple[Decimal, int, ModelConfig]] = []
    for position, model in enumerate(candidates):
        why = _exclusion(model, needs, observed.get(model.name, Observed()), constraints)
        if why:
            excluded[model.name] = why
            continue
        expected = cost_of(model, needs.prompt_tokens, needs.output_tokens)
        eligible.append((expected, position, model))  # ties keep the route's own order
    eligible.sort(key=lambda item: (item[0], item[1]))
    models = [model for _, _, model in eligible]
    if models:
        reason = f"cost_aware: {models[0].name} at ${eligible[0][0]:.6f} expected"
        if len(models) > 1:
            reason += f" (next {models[1].name} at ${eligible[1][0]:.6f})"
    else:
        reason = "cost_aware: no candidate meets the request's needs"
    if excluded:
        reason += "; skipped " + ", ".join(f"{name} ({why})" for name, why in excluded.items())
    return Ranking(models=models, reason=reason, excluded=excluded)


def _exclusion(
    model: ModelConfig, needs: Needs, seen: Observed, constraints: Constraints
) -> str | None:
    missing = needs.capabilities - set(model.capabilities)
    if missing:
        return "lacks " + ", ".join(sorted(missing))
    if needs.prompt_tokens + needs.output_tokens > model.context_window:
        return f"context {model.context_window} < {needs.prompt_tokens + needs.output_tokens}"
    target = constraints.latency_target_ms
    if (
        target is not None
        and seen.p95_latency_ms is not None
        and seen.calls >= constraints.min_calls
        and seen.p95_latency_ms > target
    ):
        return f"p95 {seen.p95_latency_ms:.0f} ms > {target:.0f} ms"
    floor = constraints.quality_floor
    if (
        floor is not None
        and seen.mean_score is not None
        and seen.score_count >= constraints.min_scores
        and seen.mean_score < floor
    ):
        return f"quality {seen.mean_score:.2f} < {floor:.2f} on {needs.task_type or 'this task'}"
    return None
