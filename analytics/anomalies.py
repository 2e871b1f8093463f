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
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from analytics import queries
from analytics.endpoint import iso, run
from analytics.params import Selection, start_of_day
from analytics.store.base import Store

MIN_DEVIATION_RATIO = 0.1
STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
Granularity = Literal["hour", "day"]


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


@dataclass(frozen=True)
class SpikeScan:
    """The spikes found in `[start, end)`, each with its scope (values of the grouping)."""

    start: datetime
    end: datetime
    spikes: list[tuple[tuple[str, ...], Spike]]


async def scan_spikes(
    store: Store,
    evaluated: Selection,
    group_by: Sequence[str],
    granularity: str,
    lookback: int,
    threshold: float,
) -> SpikeScan:
    """Every scope's spikes in the `evaluated` range, each bucket judged against the `lookback`
    buckets before it (read from the rollups as well): for `GET /v1/analytics/anomalies` and
    the `spend.anomaly` alerts (analytics/anomaly_alerts.py)."""
    step = STEPS[granularity]
    history = Selection(evaluated.start - lookback * step, evaluated.end, evaluated.filters)
    source, snapped = queries.pick_source(history, group_by, granularity=granularity)
    result = await run(
        store, queries.timeseries_sql(source, snapped, granularity, group_by, with_latency=False)
    )
    series: dict[tuple[str, ...], dict[datetime, Decimal]] = {}
    for row in result.rows:
        scope = tuple(str(row[d]) for d in group_by)
        bucket = datetime.fromisoformat(iso(row["bucket"]).replace("Z", "+00:00"))
        series.setdefault(scope, {})[bucket] = Decimal(row["cost_usd"])
    buckets = []
    cursor = snapped.start
    while cursor < snapped.end:
        buckets.append(cursor)
        cursor += step
    evaluate_from = (
        start_of_day(evaluated.start)
        if granularity == "day"
        else queries.floor_hour(evaluated.start)
    )
    spikes = []
    for scope, costs in series.items():
        dense = [(b, costs.get(b, Decimal(0))) for b in buckets]
        found = find_spikes(
            dense, lookback=lookback, threshold=threshold, evaluate_from=evaluate_from
        )
        spikes += [(scope, spike) for spike in found]
    return SpikeScan(evaluate_from, snapped.end, spikes)
