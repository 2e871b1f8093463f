"""Explorer queries on the rollups versus the raw ledger, on N synthetic calls in chDB.

The calls are generated inside ClickHouse (`numbers()`, `rand()`) straight into a migrated
`calls` table, 10M calls per `INSERT … SELECT` (memory stays bounded at any size), so the
materialized views fill the rollups exactly as the ledger sink would. Each explorer question is
then timed twice in the same run, with the SQL the API builds (`analytics.queries`): once on the
source the API picks (a rollup) and once forced onto the raw rows (the baseline). Sessions have
no rollup: the sessions endpoint's week, the `session.expensive` scan's day and the lookup of
one session's calls are timed against summing the same days' raw rows. Reported: median ms of
5 runs, raw/rollup ratio, and compressed bytes per call of each table (system.parts) as
inserted and after every part is merged, with `calls` per column (system.columns).

Attribution is correlated as in real traffic (a key belongs to one project and environment; a
project x task type mostly uses one model), which is what makes the rollups small. Code calls
(a sixth) belong to sessions of about eight calls within a minute, as a coding tool's would.
Event ids are UUIDv7 carrying the call's own millisecond, as `tollway.ids.new_event_id` makes
them.

Not part of the test suite: `python -m benchmarks analytics_queries [ROWS]`. The chDB directory
is temporary unless `TOLLWAY_BENCH_DIR` names one: then it is kept, and a later run of the same
size reuses its calls instead of generating them again (benchmarks/dashboard_pages.py does too).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

from analytics import queries
from analytics.migrate import migrate
from analytics.params import Selection
from analytics.session_alerts import expensive_sessions_sql
from analytics.sessions import sessions_sql, sessions_summary_sql
from analytics.store import ChdbStore

DEFAULT_ROWS = 10_000_000
DAYS = 90
CHUNK = 10_000_000
REPEAT = 5
ROLLUPS = ("calls_hourly", "calls_daily", "calls_daily_by_task", "calls_daily_by_line")

GENERATE = """
INSERT INTO calls (event_id, ts, duration_ms, ttft_ms, business_line, project, task_type, user,
    key_id, environment, provider, model, requested_model, route, input_tokens, output_tokens,
    cost_usd, status, budget_action, attempts, session_id)
SELECT
    toUUID(concat(substring(hi, 1, 8), '-', substring(hi, 9, 4), '-', substring(hi, 13, 4), '-',
        substring(lo, 1, 4), '-', substring(lo, 5, 12))) AS event_id,
    ts,
    200 + rand(1) % 3000 AS duration_ms,
    if(rand(2) % 2 = 0, NULL, 50 + rand(3) % 500) AS ttft_ms,
    ['marketing', 'support', 'research', 'sales', 'finance', 'engineering'][1 + bl] AS business_line,
    concat(business_line, '-p', toString(pj)) AS project,
    ['chat', 'summarize', 'extract', 'classify', 'translate', 'code'][1 + tt] AS task_type,
    concat('u', toString(rand(4) % 5000)) AS user,
    concat(project, '-k', toString(k)) AS key_id,
    if(k = 3, 'staging', 'prod') AS environment,
    ['openai', 'openai', 'anthropic', 'anthropic', 'gemini', 'gemini', 'openai', 'anthropic'][1 + m]
        AS provider,
    ['gpt-4o-mini', 'gpt-4o', 'claude-haiku', 'claude-sonnet', 'gemini-flash', 'gemini-pro',
     'o3-mini', 'claude-opus'][1 + m] AS model,
    'auto' AS requested_model,
    if(k % 2 = 0, 'auto', '') AS route,
    100 + rand(5) % 4000 AS input_tokens,
    20 + rand(6) % 1000 AS output_tokens,
    toDecimal64((input_tokens * [0.15, 2.5, 0.8, 3, 0.1, 1.25, 1.1, 15][1 + m]
        + output_tokens * [0.6, 10, 4, 15, 0.4, 5, 4.4, 75][1 + m]) / 1000000, 9) AS cost_usd,
    multiIf(rand(7) % 100 < 2, 'error', rand(7) % 100 < 3, 'blocked', 'ok') AS status,
    if(rand(8) % 100 = 0, 'downgraded', 'none') AS budget_action,
    [(provider, model, 'ok', '', 200, duration_ms)] AS attempts,
    if(tt = 5, concat('s', toString(intDiv(number, 48))), '') AS session_id
FROM (
    SELECT number, rand(9) % 6 AS bl, rand(10) % 8 AS pj, rand(11) % 4 AS k, rand(12) % 6 AS tt,
        if(rand(13) % 10 = 0, (bl + pj + tt + 1) % 8, (bl + pj + tt) % 8) AS m,
        toDateTime64({start}, 3, 'UTC') + toIntervalMillisecond(intDiv(number * {span_ms}, {rows}))
            AS ts,
        -- UUIDv7: 48-bit unix ms of the call, version 7, 12 + 62 random bits, variant 10
        leftPad(hex(bitOr(bitShiftLeft(toUInt64(toUnixTimestamp64Milli(ts)), 16),
            bitOr(0x7000, rand(14) % 4096))), 16, '0') AS hi,
        leftPad(hex(bitOr(bitAnd(rand64(15), 0x3FFFFFFFFFFFFFFF), 0x8000000000000000)), 16, '0')
            AS lo
    FROM numbers({offset}, {count})
)
"""


def _database(rows: int) -> str:
    return f"bench_{rows}"


@asynccontextmanager
async def bench_store(rows: int) -> AsyncIterator[tuple[ChdbStore, list[str]]]:
    """A migrated chDB store holding `rows` synthetic calls over the `DAYS` days up to tonight,
    and report lines about how they got there (generated, or reused from TOLLWAY_BENCH_DIR)."""
    kept = os.environ.get("TOLLWAY_BENCH_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        store = ChdbStore(Path(kept or tmp), _database(rows))
        try:
            lines = await _fill(store, rows)
            yield store, lines
        finally:
            await store.close()


async def _fill(store: ChdbStore, rows: int) -> list[str]:
    db = store.database
    found = await store.query(
        f"SELECT count() AS n FROM system.tables WHERE database = '{db}' AND name = 'calls'"
    )
    if found.rows[0]["n"]:
        have = await store.query(f"SELECT count() AS n FROM {db}.calls")
        if have.rows[0]["n"] == rows:
            return [f"reused {rows:,} calls from {store.path} (TOLLWAY_BENCH_DIR)"]
        await store.command(f"DROP DATABASE {db}")
    await migrate(store)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = end - timedelta(days=DAYS)
    began = time.perf_counter()
    for offset in range(0, rows, CHUNK):
        await store.command(
            GENERATE.format(
                start=f"'{start:%Y-%m-%d %H:%M:%S}'",
                span_ms=DAYS * 86_400_000,
                rows=rows,
                offset=offset,
                count=min(CHUNK, rows - offset),
            ).replace("INSERT INTO calls", f"INSERT INTO {db}.calls")
        )
    load_s = time.perf_counter() - began
    return [
        f"generated {rows:,} calls over {DAYS} days into calls + rollups in {load_s:.0f} s"
        f" ({rows / load_s:,.0f} calls/s)"
    ]


async def data_end(store: ChdbStore) -> datetime:
    """The UTC midnight after the newest call: the questions' ranges end there."""
    newest = await store.query("SELECT toString(toDate(max(ts))) AS d FROM calls")
    day = datetime.fromisoformat(newest.rows[0]["d"]).replace(tzinfo=UTC)
    return day + timedelta(days=1)


async def _storage(store: ChdbStore, rows: int, when: str) -> list[str]:
    parts = await store.query(
        "SELECT table, count() AS parts, sum(rows) AS r, sum(data_compressed_bytes) AS c,"
        " sum(secondary_indices_compressed_bytes) AS i, sum(data_uncompressed_bytes) AS u"
        f" FROM system.parts WHERE database = '{store.database}' AND active"
        f" AND table IN ('calls', {', '.join(repr(t) for t in ROLLUPS)})"
        " GROUP BY table ORDER BY table"
    )
    lines = [f"  storage {when}:"]
    for part in parts.rows:
        lines.append(
            f"    {part['table']:<21} {part['r']:>12,} rows {part['parts']:>4} parts"
            f" {part['c'] / 2**20:9.1f} MiB  {part['c'] / rows:6.2f} bytes per call"
            f" (+ {part['i'] / rows:.2f} in skip indexes; uncompressed {part['u'] / rows:.1f})"
        )
    return lines


async def _columns(store: ChdbStore, rows: int) -> list[str]:
    columns = await store.query(
        "SELECT name, data_compressed_bytes AS c, compression_codec AS codec FROM system.columns"
        f" WHERE database = '{store.database}' AND table = 'calls' ORDER BY c DESC"
    )
    shown = columns.rows[:10]
    rest = sum(r["c"] for r in columns.rows[10:])
    lines = ["  calls per column, merged (bytes per call):"]
    for row in shown:
        lines.append(f"    {row['name']:<20} {row['c'] / rows:6.2f}  {row['codec'] or 'LZ4'}")
    lines.append(f"    {'the other columns':<20} {rest / rows:6.2f}")
    return lines


@dataclass(frozen=True)
class Question:
    name: str
    selection: Selection
    group_by: list[str]
    series: bool = False  # a daily time series (else a cost breakdown)
    latency: bool = True  # the series carries p95 latency (anomalies do not ask for it)
    limit: int | None = None

    def sql(self, source: queries.Source, selection: Selection) -> str:
        if self.series:
            return queries.timeseries_sql(
                source, selection, "day", self.group_by, with_latency=self.latency
            )
        sql = queries.cost_breakdown_sql(source, selection, self.group_by)
        return sql if self.limit is None else f"{sql} LIMIT {self.limit}"

    def pick(self) -> tuple[queries.Source, Selection]:
        """The source the API would use, and the selection snapped to it."""
        granularity = "day" if self.series else None
        return queries.pick_source(self.selection, self.group_by, granularity=granularity)


def questions(end: datetime) -> list[Question]:
    """The explorer's questions, as the cost explorer asks them, for data ending at `end`."""
    month = Selection(end - timedelta(days=30), end, {})
    bl = {"business_line": ["marketing"]}
    project = {**bl, "project": ["marketing-p1"]}
    return [
        Question("drill 1: cost by business_line, 30 d", month, ["business_line"]),
        Question("drill 2: marketing by project", Selection(month.start, end, bl), ["project"]),
        Question(
            "drill 3: marketing-p1 by task_type",
            Selection(month.start, end, project),
            ["task_type"],
        ),
        Question(
            "drill 4: ... chat by model and key",
            Selection(month.start, end, {**project, "task_type": ["chat"]}),
            ["model", "key_id"],
        ),
        Question(
            "90-day daily series by model",
            Selection(end - timedelta(days=DAYS), end, {}),
            ["model"],
            series=True,
        ),
        Question("top-20 projects, 30 d", month, ["project"], limit=21),
        Question(
            "anomalies: daily by project, 21 d",
            Selection(end - timedelta(days=21), end, {}),
            ["project"],
            series=True,
            latency=False,
        ),
    ]


async def _median_ms(fn: Callable[[], Awaitable[object]], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


async def _time_questions(store: ChdbStore) -> list[str]:
    end = await data_end(store)
    lines = [
        f"  {'question':<38} {'rollup ms':>10} {'raw ms':>10} {'raw/rollup':>11}  source",
    ]
    for question in questions(end):
        name = question.name
        source, snapped = question.pick()
        rollup_sql = question.sql(source, snapped)
        raw_sql = question.sql(queries.RAW, question.selection)
        rolled = await store.query(rollup_sql)  # also warms the caches for both paths
        raw = await store.query(raw_sql)
        assert len(rolled.rows) == len(raw.rows), name  # same answer shape
        rollup_ms = await _median_ms(partial(store.query, rollup_sql))
        raw_ms = await _median_ms(partial(store.query, raw_sql))
        lines.append(
            f"  {name:<38} {rollup_ms:>10.1f} {raw_ms:>10.1f} {raw_ms / rollup_ms:>10.1f}x"
            f"  {source.table}"
        )
    return lines


async def _time_sessions(store: ChdbStore) -> list[str]:
    """The raw-only session questions against reading the same days' calls at all."""
    end = await data_end(store)
    week, day = Selection(end - timedelta(days=7), end, {}), end - timedelta(days=1)
    one = await store.query(
        f"SELECT session_id FROM calls WHERE ts >= {queries.RAW.literal(day)}"
        " AND session_id != '' LIMIT 1"
    )
    session = Selection(end - timedelta(days=30), end, {"session_id": [one.rows[0]["session_id"]]})
    lookup = queries.calls_sql(session, 100, with_content=False)
    asked: list[tuple[str, str, datetime]] = [
        ("sessions: summary, 7 d", sessions_summary_sql(week), week.start),
        ("sessions: costliest 50, 7 d", sessions_sql(week, 50), week.start),
        ("session.expensive scan, 1 d", expensive_sessions_sql(day, Decimal(1)), day),
        ("one session's calls, 30 d", lookup, session.start),
    ]
    lines = [f"  {'raw-only question':<38} {'ms':>10} {'sum ms':>10} {'ratio':>11}"]
    for name, sql, since in asked:
        await store.query(sql)
        took = await _median_ms(partial(store.query, sql))
        summed = (
            f"SELECT sum(cost_usd) AS usd, count() AS n FROM calls"
            f" WHERE ts >= {queries.RAW.literal(since)} AND ts < {queries.RAW.literal(end)}"
        )
        baseline = await _median_ms(partial(store.query, summed))
        lines.append(f"  {name:<38} {took:>10.1f} {baseline:>10.1f} {took / baseline:>10.1f}x")
    return lines


async def merge_all(store: ChdbStore) -> float:
    """Merge every part of the ledger and the rollups, as background merges eventually do."""
    began = time.perf_counter()
    for table in ("calls", *ROLLUPS):
        await store.command(f"OPTIMIZE TABLE {store.database}.{table} FINAL")
    return time.perf_counter() - began


async def _run(rows: int) -> list[str]:
    async with bench_store(rows) as (store, lines):
        generated = lines[0].startswith("generated")
        lines += await _storage(store, rows, "as inserted" if generated else "as found")
        merge_s = await merge_all(store)
        lines += await _storage(store, rows, f"after merging every part ({merge_s:.0f} s)")
        lines += await _columns(store, rows)
        lines += await _time_questions(store)
        lines += await _time_sessions(store)
    return lines


def run(rows: int = DEFAULT_ROWS) -> list[str]:
    """Generate `rows` synthetic calls and time the explorer queries; returns report lines."""
    return asyncio.run(_run(rows))


if __name__ == "__main__":
    print("\n".join(run(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ROWS)))
