"""Routing statistics: how each route x task type x model performs, for the proxy's router.

`routing_stats` computes, over a sliding window of the ledger, calls, success rate, latency and
TTFT quantiles, mean cost and the mean quality score from `feedback`. `RoutingStatsPublisher`
recomputes them on an interval and publishes one message per route|task_type|model to the
compacted topic `tollway.routing-stats.v1`, so a proxy that starts later reads the latest value
of every key without asking the analytics role. Keys that leave the window get a tombstone, so
compaction eventually forgets models nobody routes to any more.

Two ways to the same figures. The raw path (`routing_stats_sql`) reads every call of the window
joined to its latest feedback: seconds over a month at 100M calls. The rollup path (the default)
splits the work by what each part needs:

- calls, success rate, cost, tokens and latency/TTFT quantiles come from the route rollups of
  migration 0012 for the window's whole days and hours, plus the raw rows of its partial hours
  at the edges (`analytics.routing_windows`): a few thousand rollup rows for a month;
- the feedback part only concerns rated calls, so it is driven from `feedback`: the latest score
  of each event rated since the window's start, joined to its call's route, task type and model
  in `rated_calls` (migration 0012), which each computation first tops up with the calls rated
  since the last one. Looking rated calls up in the ledger itself reads every event_id of the
  window once scores are common (1% of calls puts one in every granule);

and the two are merged per key here. Sums, counts, scores and the success rate are exactly the
raw path's; quantiles are t-digests either way, merged from states here (within a few percent).
The top-up writes to the store, so the rollup path needs a store that accepts inserts (the
analytics role's, which also migrates); `path="raw"` only reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaProducer

from analytics.endpoint import iso, number
from analytics.periodic import repeating
from analytics.queries import RAW
from analytics.responses import usd
from analytics.routing_windows import Piece, split_window
from analytics.store.base import QueryError, Store, StoreError, quote_identifier, sql_string
from tollway.kafka import ensure_topics, new_producer
from tollway.topics import TopicSpec

DEFAULT_WINDOW = timedelta(days=7)
DEFAULT_INTERVAL_S = 60.0
STAT_KEYS = ("route", "task_type", "model")
_MAX_ROWS = 100_000


def _ch_time(value: datetime) -> str:
    """The moment to the millisecond: a window ending now must include this second's calls."""
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"toDateTime64({sql_string(text)}, 3, 'UTC')"


def routing_stats_sql(start: datetime, end: datetime, keys: Sequence[str] = STAT_KEYS) -> str:
    """The raw path: per-`keys` performance of the calls in [start, end), each joined to its
    latest feedback. Reads every call of the window; kept as the reference the rollup path is
    tested against."""
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


StatsPath = Literal["rollup", "raw"]
_QUANTILES = "0.5, 0.9, 0.95, 0.99"


def _rated(start: datetime) -> str:
    """The latest score of every event rated since `start` (as the raw path joins them)."""
    return (
        "SELECT event_id, argMax(score, ts) AS score FROM feedback"
        f" WHERE ts >= {_ch_time(start)} GROUP BY event_id"
    )


def window_stats_sql(start: datetime, end: datetime, keys: Sequence[str] = STAT_KEYS) -> str:
    """Per-`keys` calls, success rate, cost, tokens and quantiles in [start, end), from the
    route rollups' whole days and hours and the raw rows of the partial hours at the edges.
    Every piece yields the same columns (sums and t-digest states), merged per key; inner
    names differ from the outer aliases, which would otherwise shadow them."""
    pieces = split_window(start, end) or [Piece(RAW, start, end)]  # empty: no rows
    parts = []
    for piece in pieces:  # one branch per piece: an OR of ranges defeats the ts index
        if piece.source == RAW:
            parts.append(
                "SELECT route, task_type, model, count() AS n, countIf(status = 'ok') AS ok,"
                " sum(cost_usd) AS cost, sum(input_tokens) AS itok, sum(output_tokens) AS otok,"
                f" quantilesTDigestState({_QUANTILES})(duration_ms) AS lq,"
                f" quantilesTDigestState({_QUANTILES})(ttft_ms) AS tq"
                f" FROM calls WHERE {piece.condition()} GROUP BY route, task_type, model"
            )
        else:
            parts.append(
                "SELECT route, task_type, model, calls AS n, ok_calls AS ok, cost_usd AS cost,"
                " input_tokens AS itok, output_tokens AS otok, latency_ms_q AS lq,"
                f" ttft_ms_q AS tq FROM {piece.source.table} WHERE {piece.condition()}"
            )
    group = ", ".join(quote_identifier(k) for k in keys)
    union = " UNION ALL ".join(parts)
    return (
        f"SELECT {group}, sum(n) AS calls, sum(ok) / calls AS success_rate,"
        f" quantilesTDigestMerge({_QUANTILES})(lq) AS latency_q,"
        " latency_q[1] AS p50_latency_ms, latency_q[3] AS p95_latency_ms,"
        f" quantilesTDigestMerge({_QUANTILES})(tq)[1] AS p50_ttft_ms,"
        " sum(cost) AS cost_usd, cost_usd / calls AS mean_cost_usd,"
        " sum(itok) AS input_tokens, sum(otok) AS output_tokens"
        f" FROM ({union}) GROUP BY {group} ORDER BY {group}"
    )


def unrecorded_sql(start: datetime) -> str:
    """The events rated since `start` that `rated_calls` lacks. An anti-join built on the
    feedback side (a month of scores), streaming `rated_calls` (every rated call): three times
    cheaper than `NOT IN (SELECT event_id FROM rated_calls)`, which hashes the bigger side."""
    return (
        "SELECT f.event_id AS event_id FROM rated_calls AS r RIGHT ANTI JOIN"
        f" (SELECT event_id FROM feedback WHERE ts >= {_ch_time(start)}) AS f"
        " ON r.event_id = f.event_id"
    )


def rated_calls_fill_sql(start: datetime) -> str:
    """Add to `rated_calls` the calls rated since `start` that it lacks. After the migration's
    fill, that is what was rated since the last computation (the publisher runs every minute):
    a handful of event ids, which the ledger's bloom filter on event_id finds without reading
    the rest. The lookup is not limited to the window, so a call made before the window but
    rated inside it is recorded once rather than looked for again every time; only ids that are
    not in the ledger (yet) are looked for again, and those are few."""
    return (
        "INSERT INTO rated_calls (event_id, ts, route, task_type, model)"
        " SELECT event_id, ts, route, task_type, model FROM calls"
        f" WHERE event_id IN ({unrecorded_sql(start)})"
    )


async def record_rated_calls(store: Store, start: datetime) -> None:
    """Top up `rated_calls` for the events rated since `start`; nothing to write (the usual
    case once the publisher keeps it current) costs one anti-join and no look-up."""
    pending = await store.query(f"SELECT count() AS n FROM ({unrecorded_sql(start)})")
    if int(pending.rows[0]["n"]):
        await store.command(rated_calls_fill_sql(start))


def feedback_stats_sql(start: datetime, end: datetime, keys: Sequence[str] = STAT_KEYS) -> str:
    """Per-`keys` mean score and count of the calls in [start, end) rated since `start`: the
    latest score of each rated event joined to its call's keys in `rated_calls` (filled first
    by `rated_calls_fill_sql`), never to the ledger itself. ANY: a call recorded twice (two
    top-ups at once, before a merge) still counts once, without a GROUP BY to deduplicate."""
    group = ", ".join(f"c.{quote_identifier(k)}" for k in keys)
    columns = ", ".join(f"c.{quote_identifier(k)} AS {quote_identifier(k)}" for k in keys)
    return (
        f"SELECT {columns}, avg(f.score) AS mean_score, count() AS score_count"
        f" FROM ({_rated(start)}) AS f"
        " ANY INNER JOIN (SELECT event_id, route, task_type, model FROM rated_calls"
        f" WHERE ts >= {_ch_time(start)} AND ts < {_ch_time(end)}) AS c"
        f" ON f.event_id = c.event_id GROUP BY {group}"
    )


def _stat(row: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """One stats row, JSON-ready (costs as exact strings, NaN quantiles as None)."""
    return {
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


async def routing_stats(
    store: Store,
    window: timedelta,
    *,
    now: datetime | None = None,
    keys: Sequence[str] = STAT_KEYS,
    path: StatsPath = "rollup",
) -> list[dict[str, Any]]:
    """The stats rows of the window ending `now` (to the millisecond), ordered by `keys`."""
    end = (now or datetime.now(UTC)).astimezone(UTC)
    return await routing_stats_between(store, end - window, end, keys=keys, path=path)


async def routing_stats_between(
    store: Store,
    start: datetime,
    end: datetime,
    *,
    keys: Sequence[str] = STAT_KEYS,
    path: StatsPath = "rollup",
) -> list[dict[str, Any]]:
    """The stats rows of the calls in [start, end), ordered by `keys`, JSON-ready."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if path == "raw":
        result = await store.query(
            routing_stats_sql(start, end, keys), readonly=True, max_rows=_MAX_ROWS
        )
        return [_stat(row, keys) for row in result.rows]
    await record_rated_calls(store, start)
    totals = await store.query(
        window_stats_sql(start, end, keys), readonly=True, max_rows=_MAX_ROWS
    )
    scores = await store.query(
        feedback_stats_sql(start, end, keys), readonly=True, max_rows=_MAX_ROWS
    )
    rated = {tuple(r[k] for k in keys): r for r in scores.rows}
    unrated = {"mean_score": None, "score_count": 0}
    return [
        _stat({**row, **rated.get(tuple(row[k] for k in keys), unrated)}, keys)
        for row in totals.rows
    ]


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

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RoutingStatsPublisher]:
        """Start the producer and the publishing loop; stop both on exit."""
        await ensure_topics(self.bootstrap, [TopicSpec(self.topic, 1, "compact")])
        producer = self._producer_factory(self.bootstrap)
        await producer.start()
        self._producer = producer
        try:
            expected = (StoreError, QueryError)
            async with repeating("routing stats", self.publish_once, self.interval_s, expected):
                yield self
        finally:
            self._producer = None
            await producer.stop()
