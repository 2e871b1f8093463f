"""Explorer queries on the rollups versus the raw ledger, on N synthetic calls in chDB.

The calls are generated inside ClickHouse (`numbers()`, `rand()`) straight into a migrated
`calls` table in a temporary chDB directory, so the materialized views fill the rollups exactly
as the ledger sink would. Each explorer question is then timed twice in the same run, with the
SQL the API builds (`analytics.queries`): once on the source the API picks (rollup) and once
forced onto the raw rows (the baseline). Reported: median ms of 3 runs, raw/rollup ratio, and
compressed bytes per call of each table (from system.parts).

Attribution is correlated as in real traffic (a key belongs to one project and environment; a
project x task type mostly uses one model), which is what makes the rollups small.

Not part of the test suite: `python -m benchmarks.analytics_queries [ROWS]`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from analytics import queries
from analytics.migrate import migrate
from analytics.params import Selection
from analytics.store import ChdbStore

DEFAULT_ROWS = 10_000_000
DAYS = 90

GENERATE = """
INSERT INTO calls (event_id, ts, duration_ms, ttft_ms, business_line, project, task_type, user,
    key_id, environment, provider, model, requested_model, route, input_tokens, output_tokens,
    cost_usd, status, budget_action, attempts)
SELECT
    generateUUIDv4(number) AS event_id,
    toDateTime64({start}, 3, 'UTC') + toIntervalMillisecond(intDiv(number * {span_ms}, {rows}))
        AS ts,
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
    [(provider, model, 'ok', '', 200, duration_ms)] AS attempts
FROM (
    SELECT number, rand(9) % 6 AS bl, rand(10) % 8 AS pj, rand(11) % 4 AS k, rand(12) % 6 AS tt,
        if(rand(13) % 10 = 0, (bl + pj + tt + 1) % 8, (bl + pj + tt) % 8) AS m
    FROM numbers({rows})
)
"""


async def _median_ms(fn: Callable[[], Awaitable[object]], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


async def _run(rows: int) -> list[str]:
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ChdbStore(Path(tmp), "bench")
        try:
            await migrate(store)
            end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
                days=1
            )
            start = end - timedelta(days=DAYS)
            began = time.perf_counter()
            await store.command(
                GENERATE.format(
                    start=f"'{start:%Y-%m-%d %H:%M:%S}'",
                    span_ms=DAYS * 86_400_000,
                    rows=rows,
                ).replace("INSERT INTO calls", "INSERT INTO bench.calls")
            )
            load_s = time.perf_counter() - began
            lines.append(
                f"generated {rows:,} calls over {DAYS} days into calls + rollups in {load_s:.1f} s"
                f" ({rows / load_s:,.0f} calls/s)"
            )
            await store.command("OPTIMIZE TABLE bench.calls_hourly FINAL")
            await store.command("OPTIMIZE TABLE bench.calls_daily FINAL")
            parts = await store.query(
                "SELECT table, sum(rows) AS r, sum(data_compressed_bytes) AS c,"
                " sum(data_uncompressed_bytes) AS u FROM system.parts"
                " WHERE database = 'bench' AND active AND table IN"
                " ('calls', 'calls_hourly', 'calls_daily') GROUP BY table ORDER BY table"
            )
            for part in parts.rows:
                lines.append(
                    f"  {part['table']:<13} {part['r']:>12,} rows  {part['c'] / 2**20:8.1f} MiB"
                    f" compressed  {part['c'] / rows:7.1f} bytes per call"
                    f"  (uncompressed {part['u'] / rows:.1f})"
                )

            month = Selection(end - timedelta(days=30), end, {})
            quarter = Selection(start, end, {})
            questions: list[tuple[str, Selection, Callable[[queries.Source, Selection], str]]] = [
                (
                    "drill 1: cost by business_line, 30 d",
                    month,
                    lambda s, sel: queries.cost_breakdown_sql(s, sel, ["business_line"]),
                ),
                (
                    "drill 2: marketing by project",
                    Selection(month.start, end, {"business_line": ["marketing"]}),
                    lambda s, sel: queries.cost_breakdown_sql(s, sel, ["project"]),
                ),
                (
                    "drill 3: marketing-p1 by task_type",
                    Selection(
                        month.start,
                        end,
                        {"business_line": ["marketing"], "project": ["marketing-p1"]},
                    ),
                    lambda s, sel: queries.cost_breakdown_sql(s, sel, ["task_type"]),
                ),
                (
                    "drill 4: ... chat by model and key",
                    Selection(
                        month.start,
                        end,
                        {
                            "business_line": ["marketing"],
                            "project": ["marketing-p1"],
                            "task_type": ["chat"],
                        },
                    ),
                    lambda s, sel: queries.cost_breakdown_sql(s, sel, ["model", "key_id"]),
                ),
                (
                    "90-day daily series by model",
                    quarter,
                    lambda s, sel: queries.timeseries_sql(s, sel, "day", ["model"]),
                ),
                (
                    "top-20 projects, 30 d",
                    month,
                    lambda s, sel: queries.cost_breakdown_sql(s, sel, ["project"]) + " LIMIT 21",
                ),
                (
                    "anomalies: daily by project, 21 d",
                    Selection(end - timedelta(days=21), end, {}),
                    lambda s, sel: queries.timeseries_sql(
                        s, sel, "day", ["project"], with_latency=False
                    ),
                ),
            ]
            lines.append(
                f"  {'question':<38} {'rollup ms':>10} {'raw ms':>10} {'raw/rollup':>11}  source"
            )
            for name, selection, build in questions:
                granularity = "day" if "series" in name or "anomalies" in name else None
                source, snapped = queries.pick_source(selection, [], granularity=granularity)
                rollup_sql = build(source, snapped)
                raw_sql = build(queries.RAW, selection)
                rolled = await store.query(rollup_sql)
                raw = await store.query(raw_sql)
                assert len(rolled.rows) == len(raw.rows), name  # same answer shape
                rollup_ms = await _median_ms(lambda sql=rollup_sql: store.query(sql))
                raw_ms = await _median_ms(lambda sql=raw_sql: store.query(sql))
                lines.append(
                    f"  {name:<38} {rollup_ms:>10.1f} {raw_ms:>10.1f} {raw_ms / rollup_ms:>10.1f}x"
                    f"  {source.table}"
                )
        finally:
            await store.close()
    return lines


def run(rows: int = DEFAULT_ROWS) -> list[str]:
    """Generate `rows` synthetic calls and time the explorer queries; returns report lines."""
    return asyncio.run(_run(rows))


if __name__ == "__main__":
    print("\n".join(run(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ROWS)))
