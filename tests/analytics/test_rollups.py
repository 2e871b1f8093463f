"""Migrations 0002+: from empty, on top of 0001 with data, and rollups equal to raw aggregates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from analytics.ledger import Ledger
from analytics.migrate import load_migrations, migrate
from analytics.store import ChdbStore
from tests.analytics.conftest import make_events
from tests.analytics.seed import seeded_events

DIMS = "business_line, project, task_type, environment, model, provider, route, key_id, status"
SUMS = (
    "toString(sum(cost_usd)) AS cost, {calls} AS calls, sum(input_tokens) AS input,"
    " sum(output_tokens) AS output, {errors} AS errors, {blocked} AS blocked,"
    " {downgraded} AS downgraded"
)
RAW = SUMS.format(
    calls="count()",
    errors="countIf(status = 'error')",
    blocked="countIf(status = 'blocked')",
    downgraded="countIf(budget_action = 'downgraded')",
)
ROLLUP = SUMS.format(
    calls="sum(calls)", errors="sum(errors)", blocked="sum(blocked)", downgraded="sum(downgraded)"
)


BY_TASK_DIMS = "business_line, project, task_type, environment, model, provider"
BY_LINE_DIMS = "business_line, environment, model, provider"
ROUTE_DIMS = "route, task_type, model"
ROUTE_SUMS = (
    "toString(sum(cost_usd)) AS cost, {calls} AS calls, {ok} AS ok, sum(input_tokens) AS input,"
    " sum(output_tokens) AS output"
)
ROUTE_RAW = ROUTE_SUMS.format(calls="count()", ok="countIf(status = 'ok')")
ROUTE_ROLLUP = ROUTE_SUMS.format(calls="sum(calls)", ok="sum(ok_calls)")


async def _assert_rollups_match_raw(store: ChdbStore) -> None:
    for table, bucket, raw_bucket, dims in (
        ("calls_hourly", "hour", "toStartOfHour(ts)", DIMS),
        ("calls_daily", "day", "toDate(ts)", DIMS),
        ("calls_daily_by_task", "day", "toDate(ts)", BY_TASK_DIMS),
        ("calls_daily_by_line", "day", "toDate(ts)", BY_LINE_DIMS),
    ):
        raw = await store.query(
            f"SELECT {raw_bucket} AS b, {dims}, {RAW} FROM calls"
            f" GROUP BY b, {dims} ORDER BY b, {dims}"
        )
        rolled = await store.query(
            f"SELECT {bucket} AS b, {dims}, {ROLLUP} FROM {table}"
            f" GROUP BY b, {dims} ORDER BY b, {dims}"
        )
        assert [r | {"b": str(r["b"])[:10]} for r in rolled.rows] == [
            r | {"b": str(r["b"])[:10]} for r in raw.rows
        ], table
    for table, bucket, raw_bucket in (  # migration 0012: fewer dimensions, ok calls
        ("calls_hourly_by_route", "hour", "toStartOfHour(ts)"),
        ("calls_daily_by_route", "day", "toDate(ts)"),
    ):
        raw = await store.query(
            f"SELECT {raw_bucket} AS b, {ROUTE_DIMS}, {ROUTE_RAW} FROM calls"
            f" GROUP BY b, {ROUTE_DIMS} ORDER BY b, {ROUTE_DIMS}"
        )
        rolled = await store.query(
            f"SELECT {bucket} AS b, {ROUTE_DIMS}, {ROUTE_ROLLUP} FROM {table}"
            f" GROUP BY b, {ROUTE_DIMS} ORDER BY b, {ROUTE_DIMS}"
        )
        assert rolled.rows == raw.rows and raw.rows, table


def _mixed_events() -> list:
    events = make_events(120, start=datetime(2025, 3, 31, 20, 0, tzinfo=UTC))  # spans months
    return [
        e.model_copy(
            update={
                "status": "blocked" if i % 11 == 0 else e.status,
                "budget_action": "downgraded" if i % 6 == 0 else "none",
                "ttft_ms": 50 + i if i % 2 else None,
                "duration_ms": 100 + 3 * i,
            }
        )
        for i, e in enumerate(events)
    ]


async def test_migrations_from_empty(store: ChdbStore) -> None:
    applied = await migrate(store)
    assert applied == [m.name for m in load_migrations()]
    assert applied[1:4] == [
        "0002_rollups.sql",
        "0003_feedback_alerts_webhooks.sql",
        "0004_finops_views.sql",
    ]
    tables = await store.query(
        f"SELECT name, engine FROM system.tables WHERE database = '{store.database}'"
    )
    engines = {r["name"]: r["engine"] for r in tables.rows}
    assert engines["calls_hourly"] == engines["calls_daily"] == "AggregatingMergeTree"
    for name in ("feedback", "budget_alerts", "webhook_deliveries"):
        assert name in engines
    for view in (
        "finops_cost_daily",
        "finops_cost_monthly",
        "finops_month_to_date",
        "finops_unit_economics",
        "focus_costs",
    ):
        assert engines[view] == "View"
    assert await migrate(store) == []


async def test_upgrade_from_0001_rebuilds_rollups_from_the_ledger(store: ChdbStore) -> None:
    first = load_migrations()[:1]
    assert await migrate(store, first) == ["0001_calls_ledger.sql"]
    events = _mixed_events()
    await Ledger(store).write(events[:80])  # written under the old schema
    assert await migrate(store) == [m.name for m in load_migrations()[1:]]
    await Ledger(store).write(events[80:])  # and after the upgrade
    await _assert_rollups_match_raw(store)
    for table in (
        "calls_daily",
        "calls_daily_by_task",
        "calls_daily_by_line",
        "calls_hourly_by_route",
        "calls_daily_by_route",
    ):
        total = await store.query(f"SELECT sum(calls) AS n FROM {table}")
        assert total.rows == [{"n": 120}], table


async def test_smaller_daily_rollups_are_backfilled_from_calls_daily(store: ChdbStore) -> None:
    """0011 on a ledger that already has calls: the new rollups start with all of them, and
    their latency states merge to the same quantiles as `calls_daily`'s."""
    before = [m for m in load_migrations() if m.name < "0011"]
    await migrate(store, before)
    await Ledger(store).write(_mixed_events())
    assert "0011_daily_rollups_by_task_and_line.sql" in await migrate(store)
    await _assert_rollups_match_raw(store)
    quantiles = "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms_q) AS q"
    daily = await store.query(f"SELECT {quantiles} FROM calls_daily")
    for table in ("calls_daily_by_task", "calls_daily_by_line"):
        smaller = await store.query(f"SELECT {quantiles} FROM {table}")
        assert smaller.rows[0]["q"] == pytest.approx(daily.rows[0]["q"], abs=10), table


async def test_the_ledger_columns_carry_their_codecs(ledger_store: ChdbStore) -> None:
    result = await ledger_store.query(
        "SELECT name, compression_codec AS codec FROM system.columns"
        f" WHERE database = '{ledger_store.database}' AND table = 'calls'"
    )
    codecs = {r["name"]: r["codec"] for r in result.rows}
    assert codecs["ts"] == "CODEC(Delta(8), ZSTD(3))"
    assert codecs["cost_usd"] == codecs["input_tokens"] == "CODEC(T64, ZSTD(3))"
    assert codecs["attempts"] == "CODEC(ZSTD(3))"
    assert codecs["event_id"] == ""  # random bits: LZ4, the default


async def test_rollups_equal_raw_aggregates_across_parts(ledger_store: ChdbStore) -> None:
    ledger = Ledger(ledger_store)
    events = _mixed_events() + seeded_events()
    for start in range(0, len(events), 25):  # several inserts → several parts
        await ledger.write(events[start : start + 25])
    await _assert_rollups_match_raw(ledger_store)
    await ledger_store.command(f"OPTIMIZE TABLE {ledger_store.database}.calls_hourly FINAL")
    await _assert_rollups_match_raw(ledger_store)
    # the e2e contract: calls_hourly answers per business line like the raw rows
    raw = await ledger_store.query(
        "SELECT business_line, sum(cost_usd) AS c, count() AS n, sum(input_tokens) AS i"
        " FROM calls GROUP BY business_line ORDER BY business_line"
    )
    hourly = await ledger_store.query(
        "SELECT business_line, sum(cost_usd) AS c, sum(calls) AS n, sum(input_tokens) AS i"
        " FROM calls_hourly GROUP BY business_line ORDER BY business_line"
    )
    assert hourly.rows == raw.rows


async def test_quantile_states_merge_to_the_raw_quantiles(ledger_store: ChdbStore) -> None:
    await Ledger(ledger_store).write(_mixed_events())
    raw = await ledger_store.query(
        "SELECT quantileExact(0.5)(duration_ms) AS p50, quantileExact(0.95)(duration_ms) AS p95,"
        " quantileExact(0.5)(ttft_ms) AS t50 FROM calls"
    )
    rolled = await ledger_store.query(
        "SELECT quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms_q) AS q,"
        " quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(ttft_ms_q) AS t FROM calls_daily"
    )
    q, t = rolled.rows[0]["q"], rolled.rows[0]["t"]
    assert abs(q[0] - raw.rows[0]["p50"]) <= 10 and abs(q[2] - raw.rows[0]["p95"]) <= 10
    assert abs(t[0] - raw.rows[0]["t50"]) <= 5  # NULL TTFTs (non-streamed calls) are skipped


async def test_finops_views_agree_with_the_ledger(ledger_store: ChdbStore) -> None:
    events = seeded_events()
    await Ledger(ledger_store).write(events)
    total = sum((e.cost_usd for e in events), Decimal(0))
    for sql in (
        "SELECT sum(cost_usd) AS c FROM finops_cost_daily",
        "SELECT sum(cost_usd) AS c FROM finops_cost_monthly",
        "SELECT sum(cost_usd) AS c FROM finops_unit_economics",
        "SELECT sum(BilledCost) AS c FROM focus_costs",
    ):
        assert Decimal((await ledger_store.query(sql)).rows[0]["c"]) == total, sql
    unit = await ledger_store.query(
        "SELECT usd_per_1k_calls AS u, usd_per_1m_tokens AS t FROM finops_unit_economics"
        " WHERE project = 'seo' AND model = 'gpt-4o'"
    )
    seo = [e for e in events if e.project == "seo" and e.model == "gpt-4o"]
    cost = sum((e.cost_usd for e in seo), Decimal(0))
    tokens = sum(e.input_tokens + e.output_tokens for e in seo)
    assert Decimal(unit.rows[0]["u"]) == (cost * 1000 / len(seo)).quantize(
        Decimal("1e-9"), "ROUND_DOWN"
    )
    assert abs(Decimal(unit.rows[0]["t"]) - cost * 1_000_000 / tokens) < Decimal("1e-8")
    focus = await ledger_store.query(
        "SELECT ChargePeriodStart, ChargePeriodEnd, ServiceName, ResourceId, Tags FROM focus_costs"
        " WHERE x_Project = 'helpdesk' ORDER BY ChargePeriodStart LIMIT 1"
    )
    assert focus.rows[0]["ChargePeriodStart"] == "2025-03-10 00:00:00"
    assert focus.rows[0]["ChargePeriodEnd"] == "2025-03-11 00:00:00"
    assert focus.rows[0]["Tags"]["business_line"] == "support"
