"""Cost-aware choice among a route's candidates: the cheapest model that will do the job.

Pure logic, no I/O, so every constraint and tie-break is unit-tested. Given what a request
needs (capabilities, prompt size and output cap, task type), what each model costs (the
catalogue) and how each has performed (routing statistics: latency, feedback scores and how
many back them), `rank` filters out the models that cannot or should not serve the request and
orders the rest by expected cost per call.

Two kinds of exclusion, kept apart because exploration treats them differently:
- *cannot serve* (`unfit`): a missing capability, or a prompt plus output that overflows the
  context window. Never overridden.
- *should not serve* (`_too_slow`, `_too_poor`): a p95 latency over the route's target, or a mean feedback
  score below the task's quality floor. Statistics with too few samples (`min_calls`,
  `min_scores`) do not count against a model; with no statistics at all the catalogue alone
  decides. The quality rule errs towards quality on purpose: a good model dropped on an unlucky
  run of scores only costs money (a stronger candidate serves, and exploration brings the model
  back once its record recovers), while a weak model kept too long costs answers.

Every exclusion is named in the returned reason, which goes into the CallEvent's `route_reason`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tollway.config.schema import ModelConfig


@dataclass(frozen=True)
class Needs:
    capabilities: frozenset[str] = frozenset()
    prompt_tokens: int = 0
    output_tokens: int = 256  # the request's cap, or what such calls are assumed to produce
    output_capped: bool = False  # True when output_tokens is the caller's own max_tokens
    task_type: str = ""
    choices: int = 1  # the caller's `n`


@dataclass(frozen=True)
class Observed:
    """A model's recent record on one route and task type (from `tollway.routing-stats.v1`)."""

    calls: int = 0
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    mean_score: float | None = None
    score_count: int = 0
    mean_output_tokens: float | None = None


@dataclass(frozen=True)
class Constraints:
    latency_target_ms: float | None = None
    quality_floor: float | None = None
    min_calls: int = 20  # latency needs this many calls before it can exclude a model
    min_scores: int = 10  # quality needs this many scores before it can exclude a model
    #: models excluded on quality by the previous decision: they need `readmit_margin` above the
    #: floor to come back, so a model near the floor does not flap in and out as scores arrive
    held_out: frozenset[str] = frozenset()
    readmit_margin: float = 0.02


@dataclass(frozen=True)
class Ranking:
    models: list[ModelConfig]  # eligible, cheapest first
    reason: str
    excluded: dict[str, str] = field(default_factory=dict)
    fit: list[ModelConfig] = field(default_factory=list)  # able to serve, cheapest first
    expected: dict[str, Decimal] = field(default_factory=dict)
    held_out: frozenset[str] = frozenset()  # excluded on quality


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
    expected: dict[str, Decimal] = {}
    fit: list[tuple[Decimal, int, ModelConfig]] = []
    for position, model in enumerate(candidates):
        why = unfit(model, needs)
        if why:
            excluded[model.name] = why
            continue
        seen = observed.get(model.name, Observed())
        expected[model.name] = cost_of(model, needs.prompt_tokens, output_estimate(needs, seen))
        fit.append((expected[model.name], position, model))  # ties keep the route's order
    fit.sort(key=lambda item: (item[0], item[1]))
    models = []
    held_out = set()
    for _, _, model in fit:
        seen = observed.get(model.name, Observed())
        why = _too_slow(seen, constraints)
        if why is None:
            why = _too_poor(model.name, needs, seen, constraints)
            if why:
                held_out.add(model.name)
        if why:
            excluded[model.name] = why
        else:
            models.append(model)
    return Ranking(
        models=models,
        reason=_reason(models, expected, excluded),
        excluded=excluded,
        fit=[model for _, _, model in fit],
        expected=expected,
        held_out=frozenset(held_out),
    )


def unfit(model: ModelConfig, needs: Needs) -> str | None:
    """Why `model` cannot serve the request at all, or None."""
    missing = needs.capabilities - set(model.capabilities)
    if missing:
        return "lacks " + ", ".join(sorted(missing))
    if "embeddings" in model.capabilities and "embeddings" not in needs.capabilities:
        return "is an embeddings model"
    if needs.prompt_tokens + needs.output_tokens > model.context_window:
        return f"context {model.context_window} < {needs.prompt_tokens + needs.output_tokens}"
    return None


def output_estimate(needs: Needs, seen: Observed) -> int:
    """Output tokens to expect: what the model has produced on average for this task type
    (never more than the caller's cap), else the request's own figure."""
    if seen.mean_output_tokens is None or seen.calls == 0:
        return needs.output_tokens
    mean = math.ceil(seen.mean_output_tokens)
    return min(mean, needs.output_tokens) if needs.output_capped else mean


def _too_slow(seen: Observed, constraints: Constraints) -> str | None:
    target = constraints.latency_target_ms
    if (
        target is not None
        and seen.p95_latency_ms is not None
        and seen.calls >= constraints.min_calls
        and seen.p95_latency_ms > target
    ):
        return f"p95 {seen.p95_latency_ms:.0f} ms > {target:.0f} ms"
    return None


def _too_poor(name: str, needs: Needs, seen: Observed, constraints: Constraints) -> str | None:
    floor = constraints.quality_floor
    if floor is None or seen.mean_score is None or seen.score_count < constraints.min_scores:
        return None
    held = name in constraints.held_out
    bar = floor + constraints.readmit_margin if held else floor
    if seen.mean_score < bar:
        again = f" (back from {bar:.2f})" if held else ""
        return (
            f"quality {seen.mean_score:.2f} (n={seen.score_count}) "
            f"< {floor:.2f}{again} on {needs.task_type or 'this task'}"
        )
    return None


def _reason(
    models: list[ModelConfig], expected: dict[str, Decimal], excluded: dict[str, str]
) -> str:
    if models:
        reason = f"cost_aware: {models[0].name} at ${expected[models[0].name]:.6f} expected"
        if len(models) > 1:
            reason += f" (next {models[1].name} at ${expected[models[1].name]:.6f})"
    else:
        reason = "cost_aware: no candidate meets the request's needs"
    if excluded:
        reason += "; skipped " + ", ".join(f"{name} ({why})" for name, why in excluded.items())
    return reason
