"""Exploration: a small share of calls that keeps the statistics of unchosen models fresh.

Cost-aware routing only learns about the models it uses. Once a cheap model is dropped for poor
feedback, or a new model is added behind a cheaper one, nothing would ever test it again. So a
configurable share of a route's calls (`exploration`) is routed by Thompson sampling instead:
each able model's quality on the task type is drawn from its Beta posterior (one success per
unit of feedback score, a uniform prior), and the call goes to the cheapest model whose draw
clears the quality floor — cost-aware choice on a plausible world instead of the point estimate.
Models with little or stale evidence have wide posteriors and so get tried now and then; models
known to be bad rarely do. Only models able to serve the request are drawn from (capabilities and
context are never relaxed), and the budget gate judges an explored call like any other.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from router.choice import Observed
from tollway.config.schema import ModelConfig


@dataclass(frozen=True)
class Draw:
    model: ModelConfig
    sampled: dict[str, float]  # every model's draw, for the reason

    def reason(self, floor: float | None) -> str:
        draws = ", ".join(f"{name} {value:.2f}" for name, value in self.sampled.items())
        rule = f"cheapest draw >= {floor:.2f}" if floor is not None else "best draw"
        return f"explore (thompson, {rule}): {self.model.name}; draws {draws}"


def thompson(
    fit: Sequence[ModelConfig],
    observed: Mapping[str, Observed],
    floor: float | None,
    rng: random.Random,
) -> Draw | None:
    """Pick among `fit` (able models, cheapest first) by one posterior draw each."""
    if not fit:
        return None
    sampled: dict[str, float] = {}
    for model in fit:
        seen = observed.get(model.name, Observed())
        scores = seen.score_count
        successes = (seen.mean_score or 0.0) * scores
        sampled[model.name] = rng.betavariate(1 + successes, 1 + scores - successes)
    if floor is None:
        best = max(fit, key=lambda m: sampled[m.name])
        return Draw(best, sampled)
    for model in fit:  # cheapest first
        if sampled[model.name] >= floor:
            return Draw(model, sampled)
    return Draw(max(fit, key=lambda m: sampled[m.name]), sampled)
