"""Spend spikes: each scope's bucket against that scope's own trailing baseline.

A bucket is an anomaly when its cost is `threshold` standard deviations above the mean of the
`lookback` buckets before it (missing buckets count as zero spend, so a scope that is usually
idle is judged on a mostly-zero history). The deviation is floored at 10 % of the mean, so a
perfectly flat history does not turn a 1 % wobble into an infinite z-score; a scope with no
spend at all in its history has no baseline and is not judged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

MIN_DEVIATION_RATIO = 0.1


@dataclass(frozen=True)
class Spike:
    bucket: datetime
    cost_usd: Decimal
    baseline_usd: Decimal
    zscore: float


def find_spikes(
    series: Sequence[tuple[datetime, Decimal]],
    *,
    lookback: int,
    threshold: float,
    evaluate_from: datetime,
) -> list[Spike]:
    """`series` is dense (one entry per bucket, oldest first); buckets before `evaluate_from`
    only serve as history."""
    spikes: list[Spike] = []
    for index, (bucket, cost) in enumerate(series):
        if bucket < evaluate_from or index < lookback:
            continue
        history = [float(c) for _, c in series[index - lookback : index]]
        mean = sum(history) / lookback
        if mean <= 0:
            continue
        deviation = math.sqrt(sum((c - mean) ** 2 for c in history) / lookback)
        deviation = max(deviation, MIN_DEVIATION_RATIO * mean)
        zscore = (float(cost) - mean) / deviation
        if zscore >= threshold:
            baseline = Decimal(repr(mean)).quantize(Decimal("1e-9"))
            spikes.append(Spike(bucket, cost, baseline, round(zscore, 3)))
    return spikes
