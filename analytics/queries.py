"""SQL for the analytics API, built from validated parameters (see `analytics.params`).

Identifiers come only from allow-lists; every user value goes through `sql_string`. Each
question can be answered from three sources with the same result columns: a daily rollup, the
hourly rollup, or the raw ledger. `pick_source` takes the cheapest one that can answer exactly:
rollups when every dimension involved is a rollup dimension, daily when the range is whole UTC
days (the smallest daily rollup that keeps every dimension involved). Rollup ranges are snapped
outwards to whole hours (or days); the snapped range is what the API reports back, so the
answer and the range it claims always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from analytics.params import ROLLUP_DIMENSIONS, Selection
from analytics.store.base import quote_identifier, sql_string

SourceName = Literal["daily", "hourly", "raw"]
LATENCY_QUANTILES = "0.5, 0.9, 0.95, 0.99"


@dataclass(frozen=True)
class Source:
    """Where a question is answered and how that table names time and the metrics."""

    name: SourceName
    table: str
    time_column: str

    def literal(self, value: datetime) -> str:
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        if self.name == "daily":
            return f"toDate({sql_string(text[:10])})"
        if self.name == "hourly":
            return f"toDateTime({sql_string(text)}, 'UTC')"
        millis = f"{text}.{value.microsecond // 1000:03d}"
        return f"toDateTime64({sql_string(millis)}, 3, 'UTC')"

    def metrics(self) -> list[str]:
        """cost_usd, calls, input_tokens, output_tokens, errors: same names on every source."""
        if self.name == "raw":
            return [
                "sum(cost_usd) AS cost_usd",
                "count() AS calls",
                "sum(input_tokens) AS input_tokens",
                "sum(output_tokens) AS output_tokens",
                "countIf(status = 'error') AS errors",
            ]
        return [
            "sum(cost_usd) AS cost_usd",
            "sum(calls) AS calls",
            "sum(input_tokens) AS input_tokens",
            "sum(output_tokens) AS output_tokens",
            "sum(errors) AS errors",
        ]

    def p95_latency(self) -> str:
        if self.name == "raw":
            return "quantileTDigest(0.95)(duration_ms)"
        return f"quantilesTDigestMerge({LATENCY_QUANTILES})(latency_ms_q)[3]"

    def bucket(self, granularity: str) -> str:
        """The start of each bucket as DateTime('UTC')."""
        column = self.time_column
        if granularity == "month":
            return f"toDateTime(toStartOfMonth({column}), 'UTC')"
        if granularity == "day":
            return f"toDateTime(toStartOfDay({column}), 'UTC')"
        return f"toDateTime(toStartOfHour({column}), 'UTC')"


DAILY = Source("daily", "calls_daily", "day")
#: Smaller daily rollups (migration 0011), smallest first, with the dimensions each keeps. Merging
#: t-digest states costs microseconds a row, so a long series with p95 latency is only fast on a
#: rollup with few rows. Answers from them are reported as "daily", like `calls_daily`'s.
SMALLER_DAILY: tuple[tuple[Source, frozenset[str]], ...] = (
    (
        Source("daily", "calls_daily_by_line", "day"),
        frozenset(("business_line", "environment", "model", "provider")),
    ),
    (
        Source("daily", "calls_daily_by_task", "day"),
        frozenset(("business_line", "project", "task_type", "environment", "model", "provider")),
    ),
)
HOURLY = Source("hourly", "calls_hourly", "hour")
RAW = Source("raw", "calls", "ts")


def floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def ceil_hour(value: datetime) -> datetime:
    floored = floor_hour(value)
    return floored if floored == value else floored + timedelta(hours=1)


def floor_day(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_day(value: datetime) -> datetime:
    floored = floor_day(value)
    return floored if floored == value else floored + timedelta(days=1)


def pick_source(
    selection: Selection,
    dimensions: Iterable[str],
    *,
    granularity: str | None = None,
    force: SourceName | None = None,
) -> tuple[Source, Selection]:
    """The cheapest exact source for these dimensions, and the selection snapped to it."""
    involved = set(dimensions) | selection.dimensions
    if force == "raw" or not involved <= set(ROLLUP_DIMENSIONS):
        return RAW, selection
    if granularity in ("day", "month"):
        start, end = floor_day(selection.start), ceil_day(selection.end)
    else:
        start, end = floor_hour(selection.start), ceil_hour(selection.end)
    snapped = Selection(start, end, selection.filters)
    whole_days = floor_day(start) == start and floor_day(end) == end
    if force != "hourly" and granularity != "hour" and whole_days:
        smaller = (source for source, kept in SMALLER_DAILY if involved <= kept)
        return next(smaller, DAILY), snapped
    return HOURLY, snapped


def where(source: Source, selection: Selection, extra: Sequence[str] = ()) -> str:
    """The WHERE clause: the time range, one IN per filtered dimension, then `extra`."""
    column = source.time_column
    conditions = [
        f"{column} >= {source.literal(selection.start)}",
        f"{column} < {source.literal(selection.end)}",
    ]
    for dimension, values in sorted(selection.filters.items()):
        quoted = ", ".join(sql_string(v) for v in values)
        conditions.append(f"{quote_identifier(dimension)} IN ({quoted})")
    conditions.extend(extra)
    return "WHERE " + " AND ".join(conditions)


def cost_breakdown_sql(source: Source, selection: Selection, group_by: Sequence[str]) -> str:
    """Metrics per group, most expensive first (ties broken by the group values)."""
    dims = [quote_identifier(d) for d in group_by]
    select = ", ".join([*dims, *source.metrics()])
    sql = f"SELECT {select} FROM {source.table} {where(source, selection)}"
    if dims:
        sql += f" GROUP BY {', '.join(dims)} ORDER BY cost_usd DESC, {', '.join(dims)}"
    return sql


def timeseries_sql(
    source: Source,
    selection: Selection,
    granularity: str,
    group_by: Sequence[str],
    *,
    with_latency: bool = True,
) -> str:
    """Metrics per bucket and group. Merging t-digest states dominates the cost of a long
    series on the rollups, so callers that need no latency (anomalies) leave it out."""
    dims = [quote_identifier(d) for d in group_by]
    columns = [
        f"{source.bucket(granularity)} AS bucket",
        *dims,
        *[m for m in source.metrics() if "_tokens" not in m],
    ]
    if with_latency:
        columns.append(f"{source.p95_latency()} AS p95_latency_ms")
    keys = ", ".join(["bucket", *dims])
    return (
        f"SELECT {', '.join(columns)} FROM {source.table} {where(source, selection)}"
        f" GROUP BY {keys} ORDER BY {keys}"
    )


CALL_COLUMNS: tuple[str, ...] = (
    "toString(event_id) AS event_id",
    "ts",
    "business_line",
    "project",
    "task_type",
    "key_id",
    "user",
    "model",
    "provider",
    "route",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "duration_ms",
    "ttft_ms",
    "status",
    "budget_action",
    "length(attempts) AS attempts",
    "fallback_used",
    "guardrails",
    "session_id",
)
CONTENT_COLUMNS: tuple[str, ...] = ("request_content", "response_content")


def calls_sql(selection: Selection, limit: int, *, with_content: bool) -> str:
    """The newest calls first; content columns only when the caller may see them."""
    columns = [*CALL_COLUMNS, *(CONTENT_COLUMNS if with_content else ())]
    return (
        f"SELECT {', '.join(columns)} FROM calls {where(RAW, selection)}"
        f" ORDER BY ts DESC, event_id DESC LIMIT {int(limit)}"
    )


def calls_per_day_sql(source: Source, selection: Selection) -> str:
    """Calls per UTC day of a daily rollup, newest day first (see `newest_calls_start`)."""
    return (
        f"SELECT toString({source.time_column}) AS d, sum(calls) AS n FROM {source.table}"
        f" {where(source, selection)} GROUP BY d ORDER BY d DESC"
    )


def newest_calls_start(per_day: Sequence[dict[str, object]], limit: int) -> datetime | None:
    """The start of the newest UTC day from which a daily rollup counts at least `limit` calls
    (rows of `calls_per_day_sql`), or None if it counts fewer. The newest `limit` calls are then
    all at or after it, so the call list reads the ledger from there rather than over the whole
    range: a month is tens of millions of rows at 100M calls, and ClickHouse before 25.4 reads
    every selected column of them to sort by time. (chDB's 26.x reads only `ts` and `event_id`
    for that, then the top rows: 140 ms at 100M over a month, no faster from one day.)"""
    seen = 0
    for row in per_day:
        seen += int(str(row["n"]))
        if seen >= limit:
            return datetime.fromisoformat(str(row["d"])).replace(tzinfo=UTC)
    return None
