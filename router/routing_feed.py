"""The proxy's view of how models perform, fed by the compacted `tollway.routing-stats.v1`.

The analytics role recomputes per route x task type x model statistics from the ledger and the
feedback table every interval (analytics/routing_stats.py) and publishes one record per key; the
proxy keeps the latest record per key in memory and consults it on every routed call. No restart
is needed for new figures, and with no record yet a model is judged on catalogue priors alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from router.choice import Observed
from router.follower import CompactedFollower

log = logging.getLogger(__name__)

StatsKey = tuple[str, str]  # (route, task type)


class RoutingView:
    """Latest statistics per route and task type, model by model."""

    def __init__(self) -> None:
        self._stats: dict[StatsKey, dict[str, Observed]] = {}
        self.updates = 0

    def observed(self, route: str, task_type: str) -> Mapping[str, Observed]:
        return self._stats.get((route, task_type), {})

    def put(self, route: str, task_type: str, model: str, seen: Observed | None) -> None:
        """Record (or, with None, forget) one model's statistics."""
        models = self._stats.setdefault((route, task_type), {})
        if seen is None:
            models.pop(model, None)
        else:
            models[model] = seen
        self.updates += 1

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
            self.put(route, task_type, model, observed_from(orjson.loads(value)))
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


def _number(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


class RoutingFeed(CompactedFollower):
    """Keeps a `RoutingView` in step with the routing-stats topic."""

    def __init__(self, bootstrap: str, topic: str, view: RoutingView) -> None:
        super().__init__(bootstrap, topic, self._on_record)
        self.view = view

    def _on_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self.view.apply(record.key, record.value)
