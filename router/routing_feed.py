"""The proxy's view of how models perform, fed by the compacted `tollway.routing-stats.v1`.

The analytics role recomputes per route x task type x model statistics from the ledger and the
feedback table every interval (analytics/routing_stats.py) and publishes one record per key; the
proxy keeps the latest record per key in memory and consults it on every routed call. No restart
is needed for new figures, and with no record yet a model is judged on catalogue priors alone.

Feedback a proxy receives itself (`POST /v1/feedback` for a call it routed) also counts at once,
on top of the latest record: a score newer than that record's `computed_at` cannot be in it yet.
So a model that answers badly loses traffic after its first scores, not a statistics round and a
trip through Kafka and ClickHouse later; a later record, which includes those scores, replaces
them. A record's `computed_at` is when the analytics role read the feedback table, and a score
reaches that table through Kafka and the worker's sink a moment after the proxy counted it, so
only a record computed `FEEDBACK_LAG_S` after a score replaces it: one computed sooner may not
hold it yet (dropping it then flipped a task type back to the model its scores had just
excluded). Until then a score the record does hold counts twice, which only hastens what it
says. Several proxies each count what they receive; the records make them agree.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from aiokafka import ConsumerRecord

from router.choice import Observed
from router.follower import CompactedFollower

log = logging.getLogger(__name__)

StatsKey = tuple[str, str]  # (route, task type)

#: routed calls remembered for the feedback that may follow them
RECENT_CALLS = 100_000
#: a record computed this long after a score surely holds it (Kafka, the worker's sink batch)
FEEDBACK_LAG_S = 10.0


class RoutingView:
    """Latest statistics per route and task type, model by model."""

    def __init__(self, clock: Any = time.time) -> None:
        self._stats: dict[StatsKey, dict[str, Observed]] = {}
        self._computed_at: dict[tuple[str, str, str], float] = {}
        # scores this proxy received, newer than the latest record: key -> event id -> score
        self._fresh: dict[tuple[str, str, str], dict[UUID, tuple[float, float]]] = {}
        self._calls: OrderedDict[UUID, tuple[str, str, str]] = OrderedDict()
        self._clock = clock
        self.updates = 0

    def observed(self, route: str, task_type: str) -> Mapping[str, Observed]:
        models = self._stats.get((route, task_type), {})
        fresh = {
            model: scores
            for (r, t, model), scores in self._fresh.items()
            if (r, t) == (route, task_type) and scores
        }
        if not fresh:
            return models
        merged = dict(models)
        for model, scores in fresh.items():
            merged[model] = _with_scores(models.get(model, Observed()), scores.values())
        return merged

    def put(
        self,
        route: str,
        task_type: str,
        model: str,
        seen: Observed | None,
        computed_at: float | None = None,
    ) -> None:
        """Record (or, with None, forget) one model's statistics, computed at `computed_at`
        (epoch seconds): the fresh scores it surely holds are dropped."""
        key = (route, task_type, model)
        models = self._stats.setdefault((route, task_type), {})
        if seen is None:
            models.pop(model, None)
        else:
            models[model] = seen
        if computed_at is not None:
            self._computed_at[key] = computed_at
            scores = self._fresh.get(key, {})
            held = computed_at - FEEDBACK_LAG_S
            for event_id in [e for e, (_, at) in scores.items() if at <= held]:
                del scores[event_id]
        self.updates += 1

    # -- this proxy's own calls and their feedback ---------------------------------------
    def routed(self, event_id: UUID, route: str, task_type: str, model: str) -> None:
        """Remember which route, task type and model served a call, for its feedback."""
        self._calls[event_id] = (route, task_type, model)
        if len(self._calls) > RECENT_CALLS:
            self._calls.popitem(last=False)

    def scored(self, event_id: UUID, score: float) -> bool:
        """Count a score for a call this proxy routed at once; False for any other call."""
        key = self._calls.get(event_id)
        if key is None:
            return False
        now = self._clock()
        if now <= self._computed_at.get(key, 0.0):
            return False  # the clock says the latest record may already hold it
        self._fresh.setdefault(key, {})[event_id] = (score, now)  # a newer score replaces
        return True

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the routing-stats topic: a JSON stat, or a tombstone for its key."""
        if key is None:
            return
        parts = key.decode(errors="replace").split("|")
        if len(parts) != 3:
            log.warning("skipping a routing stat with key %r", key)
            return
        route, task_type, model = parts
        if value is None:
            self.put(route, task_type, model, None)
            return
        try:
            stat = orjson.loads(value)
            self.put(route, task_type, model, observed_from(stat), _epoch(stat.get("computed_at")))
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            log.warning("skipping an invalid routing stat for %s: %s", key, exc)


def observed_from(stat: dict[str, Any]) -> Observed:
    """The fields of a published stat (analytics/routing_stats.py) routing decides on."""
    calls = int(stat.get("calls") or 0)
    output = stat.get("output_tokens")
    return Observed(
        calls=calls,
        p50_latency_ms=_number(stat.get("p50_latency_ms")),
        p95_latency_ms=_number(stat.get("p95_latency_ms")),
        mean_score=_number(stat.get("mean_score")),
        score_count=int(stat.get("score_count") or 0),
        mean_output_tokens=float(output) / calls if output is not None and calls else None,
    )


def _with_scores(seen: Observed, scores: Any) -> Observed:
    """`seen` with more scores (each a (score, received_at) pair) folded into its mean."""
    values = [score for score, _ in scores]
    count = seen.score_count + len(values)
    total = (seen.mean_score or 0.0) * seen.score_count + sum(values)
    return replace(seen, mean_score=total / count, score_count=count)


def _epoch(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _number(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


class RoutingFeed(CompactedFollower):
    """Keeps a `RoutingView` in step with the routing-stats topic."""

    def __init__(self, bootstrap: str, topic: str, view: RoutingView) -> None:
        super().__init__(bootstrap, topic, self._on_record)
        self.view = view

    def _on_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self.view.apply(record.key, record.value)
