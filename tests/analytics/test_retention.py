"""The logging policy's retention: content cleared after its days, rows after theirs, rollups kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from analytics.ledger import Ledger
from analytics.retention import apply_retention, retention_statements
from analytics.store import ChdbStore
from tests.analytics.conftest import make_event
from tollway.config.governance import LoggingPolicy

NOW = datetime.now(UTC)


def _events() -> list:
    """Calls 1, 10 and 100 days old, each with logged content and a cost."""
    return [
        make_event(
            ts=NOW - timedelta(days=age),
            cost_usd=Decimal("0.25"),
            request_content=f"prompt {age}",
            response_content=f"answer {age}",
        )
        for age in (1, 10, 100)
    ]


async def _ledger(store: ChdbStore) -> list[dict]:
    await store.command(f"OPTIMIZE TABLE {store.database}.calls FINAL")  # merges apply TTLs
    result = await store.query(
        "SELECT dateDiff('day', ts, now()) AS age, request_content, response_content"
        " FROM calls ORDER BY ts DESC"
    )
    return result.rows


async def test_content_and_rows_expire_by_the_policy_while_rollups_keep_the_spend(
    ledger_store: ChdbStore,
) -> None:
    policy = LoggingPolicy(content=True, content_retention_days=5, ledger_retention_days=30)
    await apply_retention(ledger_store, policy)
    await Ledger(ledger_store).write(_events())

    rows = await _ledger(ledger_store)
    assert [(r["age"], r["request_content"], r["response_content"]) for r in rows] == [
        (1, "prompt 1", "answer 1"),  # younger than both clocks: kept whole
        (10, None, None),  # past content retention: the call stays, its text is cleared
    ]  # 100 days: past ledger retention, the row is gone
    daily = await ledger_store.query("SELECT sum(cost_usd) AS spend FROM calls_daily")
    assert Decimal(str(daily.rows[0]["spend"])) == Decimal("0.75")  # history outlives rows


async def test_the_default_policy_keeps_rows_for_ever_and_a_change_is_applied(
    ledger_store: ChdbStore,
) -> None:
    await apply_retention(ledger_store, LoggingPolicy())  # content 30 days, ledger for ever
    await Ledger(ledger_store).write(_events())
    assert [r["age"] for r in await _ledger(ledger_store)] == [1, 10, 100]

    ran = await apply_retention(ledger_store, LoggingPolicy(ledger_retention_days=50))
    assert ran == ["ALTER TABLE {db}.calls MODIFY TTL toDateTime(ts) + toIntervalDay(50)"]
    assert [r["age"] for r in await _ledger(ledger_store)] == [1, 10]


async def test_applying_the_same_policy_twice_alters_nothing(ledger_store: ChdbStore) -> None:
    policy = LoggingPolicy(content_retention_days=7, ledger_retention_days=400)
    assert len(await apply_retention(ledger_store, policy)) == 3
    assert await apply_retention(ledger_store, policy) == []
    assert await apply_retention(ledger_store, LoggingPolicy(content_retention_days=7)) == [
        "ALTER TABLE {db}.calls REMOVE TTL"
    ]


def test_statements_read_the_table_as_clickhouse_prints_it() -> None:
    create = (
        "CREATE TABLE db.calls (`ts` DateTime64(3, 'UTC'), `request_content` Nullable(String)"
        " CODEC(ZSTD(3)) TTL toDateTime(ts) + toIntervalDay(30), `response_content`"
        " Nullable(String) CODEC(ZSTD(3)) TTL toDateTime(ts) + toIntervalDay(30))"
        " ENGINE = ReplicatedReplacingMergeTree('/clickhouse/{uuid}', '{replica}')"
        " PARTITION BY toYYYYMM(ts) ORDER BY ts TTL toDateTime(ts) + toIntervalDay(90)"
        " SETTINGS index_granularity = 8192"
    )
    assert retention_statements(create, LoggingPolicy(ledger_retention_days=90)) == []
    assert retention_statements(create, LoggingPolicy(content_retention_days=1)) == [
        "ALTER TABLE {db}.calls MODIFY COLUMN request_content TTL toDateTime(ts) + toIntervalDay(1)",
        "ALTER TABLE {db}.calls MODIFY COLUMN response_content TTL toDateTime(ts) + toIntervalDay(1)",
        "ALTER TABLE {db}.calls REMOVE TTL",
    ]
