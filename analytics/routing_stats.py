"""Routing statistics: how each route x task type x model performs, for the proxy's router.

`routing_stats` computes, over a sliding window of the ledger, calls, success rate, latency and
TTFT quantiles, mean cost and the mean quality score from `feedback`. `RoutingStatsPublisher`
recomputes them on an interval and publishes one message per route|task_type|model to the
compacted topic `tollway.routing-stats.v1`, so a proxy that starts later reads the latest value
of every key without asking the analytics role. Keys that leave the window get a tombstone, so
compaction eventually forgets models nobody routes to any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from analytics.endpoint import iso, number
from analytics.responses import usd
from analytics.store.base import QueryError, Store, StoreError, quote_identifier, sql_string
from tollway.kafka import ensure_topics, new_producer
from tollway.topics import TopicSpec

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(days=7)
DEFAULT_INTERVAL_S = 60.0
STAT_KEYS = ("route", "task_type", "model")


def _ch_time(value: datetime) -> str:
    """The moment to the millisecond: a window ending now must include this second's calls."""
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"toDateTime64({sql_string(text)}, 3, 'UTC')"


def routing_stats_sql(start: datetime, end: datetime, keys: Sequence[str] = STAT_KEYS) -> str:
    """Per-`keys` performance of the calls in [start, end), joined to their latest feedback."""
    columns = ", ".join(f"c.{quote_identifier(k)} AS {quote_identifier(k)}" for k in keys)
    group = ", ".join(quote_identifier(k) for k in keys)
    return (
        f"SELECT {columns},"
        " count() AS calls,"
        " countIf(c.status = 'ok') / count() AS success_rate,"
        " quantileTDigest(0.5)(c.duration_ms) AS p50_latency_ms,"
        " quantileTDigest(0.95)(c.duration_ms) AS p95_latency_ms,"
        " quantileTDigest(0.5)(c.ttft_ms) AS p50_ttft_ms,"
        " sum(c.cost_usd) AS cost_usd,"
        " sum(c.cost_usd) / count() AS mean_cost_usd,"
        " sum(c.input_tokens) AS input_tokens,"
        " sum(c.output_tokens) AS output_tokens,"
        " avgIf(f.score, f.rated = 1) AS mean_score,"
        " countIf(f.rated = 1) AS score_count"
        " FROM calls AS c"
        " LEFT JOIN (SELECT event_id, argMax(score, ts) AS score, 1 AS rated FROM feedback"
        f" WHERE ts >= {_ch_time(start)} GROUP BY event_id) AS f ON c.event_id = f.event_id"
        f" WHERE c.ts >= {_ch_time(start)} AND c.ts < {_ch_time(end)}"
        f" GROUP BY {group} ORDER BY {group}"
    )


async def routing_stats(
    store: Store,
    window: timedelta,
    *,
    now: datetime | None = None,
    keys: Sequence[str] = STAT_KEYS,
) -> list[dict[str, Any]]:
    """The stats rows, JSON-ready (costs as exact strings, NaN quantiles as None)."""
    end = now or datetime.now(UTC)
    result = await store.query(
        routing_stats_sql(end - window, end, keys), readonly=True, max_rows=100_000
    )
    rows = []
    for row in result.rows:
        rows.append(
            {
                **{k: row[k] for k in keys},
                "calls": int(row["calls"]),
                "success_rate": round(float(row["success_rate"]), 6),
                "p50_latency_ms": number(row["p50_latency_ms"]),
                "p95_latency_ms": number(row["p95_latency_ms"]),
                "p50_ttft_ms": number(row["p50_ttft_ms"]),
                "cost_usd": usd(row["cost_usd"]),
                "mean_cost_usd": usd(Decimal(row["mean_cost_usd"]).quantize(Decimal("1e-9"))),
                "input_tokens": int(row["input_tokens"]),
                "output_tokens": int(row["output_tokens"]),
                "mean_score": number(row["mean_score"]),
                "score_count": int(row["score_count"]),
            }
        )
    return rows


def stat_key(stat: dict[str, Any]) -> bytes:
    return "|".join(str(stat[k]) for k in STAT_KEYS).encode()


class RoutingStatsPublisher:
    """Publishes `routing_stats` every `interval_s` to a compacted topic (key route|task|model)."""

    def __init__(
        self,
        store: Store,
        bootstrap: str,
        topic: str,
        *,
        window: timedelta = DEFAULT_WINDOW,
        interval_s: float = DEFAULT_INTERVAL_S,
        producer_factory: Callable[[str], AIOKafkaProducer] = new_producer,
    ) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.topic = topic
        self.window = window
        self.interval_s = interval_s
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._published: set[bytes] = set()
        self.rounds = 0

    async def publish_once(self, now: datetime | None = None) -> int:
        """Compute and publish one round; returns how many stats were sent."""
        if self._producer is None:
            raise RuntimeError("use `async with publisher.running():` first")
        now = now or datetime.now(UTC)
        stats = await routing_stats(self.store, self.window, now=now)
        computed_at = iso(now)
        keys: set[bytes] = set()
        for stat in stats:
            key = stat_key(stat)
            keys.add(key)
            value = {
                **stat,
                "window_s": int(self.window.total_seconds()),
                "computed_at": computed_at,
            }
            await self._producer.send(self.topic, key=key, value=orjson.dumps(value))
        for gone in self._published - keys:
            await self._producer.send(self.topic, key=gone, value=None)
        await self._producer.flush()
        self._published = keys
        self.rounds += 1
        return len(stats)

    async def _loop(self) -> None:
        while True:
            try:
                await self.publish_once()
            except (StoreError, QueryError) as exc:
                log.warning("routing stats not published this round: %s", exc)
            except Exception:  # the loop must outlive a broker hiccup
                log.exception("routing stats not published this round")
            await asyncio.sleep(self.interval_s)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RoutingStatsPublisher]:
        """Start the producer and the publishing loop; stop both on exit."""
        await ensure_topics(self.bootstrap, [TopicSpec(self.topic, 1, "compact")])
        producer = self._producer_factory(self.bootstrap)
        await producer.start()
        self._producer = producer
        task = asyncio.create_task(self._loop(), name="routing-stats-publisher")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._producer = None
            await producer.stop()
