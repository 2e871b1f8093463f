"""The ledger: exactly one row per event_id, whatever the broker redelivers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from analytics.ledger import Ledger
from analytics.store import ChdbStore
from tests.analytics.conftest import make_event, make_events
from tollway.events import Attempt, CallEvent


async def _count(store: ChdbStore) -> tuple[int, int]:
    result = await store.query("SELECT count() AS n, uniqExact(event_id) AS ids FROM calls")
    return result.rows[0]["n"], result.rows[0]["ids"]


async def test_same_batch_twice_leaves_one_row_per_event(ledger_store: ChdbStore) -> None:
    ledger = Ledger(ledger_store)
    batch = make_events(20)
    assert await ledger.write(batch) == 20
    assert await ledger.write(batch) == 0
    assert await _count(ledger_store) == (20, 20)


async def test_overlapping_batch_inserts_only_new_events(ledger_store: ChdbStore) -> None:
    ledger = Ledger(ledger_store)
    events = make_events(30)
    assert await ledger.write(events[:20]) == 20
    assert await ledger.write(events[10:30]) == 10
    assert await _count(ledger_store) == (30, 30)


async def test_duplicates_inside_a_batch_are_dropped(ledger_store: ChdbStore) -> None:
    ledger = Ledger(ledger_store)
    event = make_event()
    assert await ledger.write([event, event, event]) == 1
    assert await ledger.write([]) == 0
    assert await _count(ledger_store) == (1, 1)


async def test_row_round_trips_every_field(ledger_store: ChdbStore) -> None:
    event = make_event(
        ttft_ms=85,
        stream=True,
        fallback_used=True,
        attempts=[
            Attempt(
                provider="openai",
                model="gpt-4o",
                status="error",
                error="timeout",
                http_status=504,
                duration_ms=30000,
            ),
            Attempt(provider="openai", model="gpt-4o-mini", status="ok", duration_ms=400),
        ],
        budget_action="warned",
        budget_ids=["marketing-monthly"],
        session_id="run-7f3a",
        request_content="hello",
        ts=datetime(2025, 3, 14, 9, 26, 53, 589_999, tzinfo=UTC),
    )
    await Ledger(ledger_store).write([event])
    row = (
        await ledger_store.query("SELECT * EXCEPT (ingested_at, source_partition) FROM calls")
    ).rows[0]
    expected = _as_stored(event)
    # ClickHouse prints Decimals without trailing zeros: same value, shorter text
    assert Decimal(row.pop("cost_usd")) == Decimal(expected.pop("cost_usd")) == event.cost_usd
    assert row == expected
    assert row["ts"] == "2025-03-14 09:26:53.589"
    assert row["attempts"][0]["error"] == "timeout"


async def test_hourly_rollup_matches_the_raw_ledger(ledger_store: ChdbStore) -> None:
    ledger = Ledger(ledger_store)
    events = make_events(200, start=datetime(2025, 3, 31, 22, 0, tzinfo=UTC))  # spans months
    for start in range(0, 200, 50):  # several inserts → several parts to sum across
        await ledger.write(events[start : start + 50])
    await ledger.write(events[:60])  # redelivery must not inflate the rollup
    raw = await ledger_store.query(
        "SELECT sum(cost_usd) AS cost, count() AS calls, sum(input_tokens) AS tokens,"
        " countIf(status = 'error') AS errors FROM calls"
    )
    hourly = await ledger_store.query(
        "SELECT sum(cost_usd) AS cost, sum(calls) AS calls, sum(input_tokens) AS tokens,"
        " sum(errors) AS errors FROM calls_hourly"
    )
    assert Decimal(raw.rows[0]["cost"]) == Decimal(hourly.rows[0]["cost"])
    assert Decimal(raw.rows[0]["cost"]) == sum((e.cost_usd for e in events), Decimal(0))
    assert raw.rows[0] | {"cost": None} == hourly.rows[0] | {"cost": None}
    by_line = await ledger_store.query(
        "SELECT business_line, sum(cost_usd) AS cost FROM calls_hourly"
        " GROUP BY business_line ORDER BY business_line"
    )
    direct = await ledger_store.query(
        "SELECT business_line, sum(cost_usd) AS cost FROM calls"
        " GROUP BY business_line ORDER BY business_line"
    )
    assert [Decimal(r["cost"]) for r in by_line.rows] == [Decimal(r["cost"]) for r in direct.rows]


async def test_existence_check_only_searches_the_batch_time_range(ledger_store: ChdbStore) -> None:
    ledger = Ledger(ledger_store)
    event = make_event()
    await ledger.write([event])
    assert await ledger.existing_ids([event]) == {event.event_id}
    later = make_event(ts=event.ts + timedelta(days=40))
    assert await ledger.existing_ids([later]) == set()


async def test_reject_parks_the_raw_message(ledger_store: ChdbStore) -> None:
    ledger = Ledger(ledger_store)
    await ledger.reject(
        b'{"schema_version": 9}', "unknown_schema_version", "tollway.calls.v1", 3, 1234
    )
    await ledger.reject(b"\xff\xfe not utf-8", "malformed", "tollway.calls.v1", 0, 1)
    await ledger.reject(None, "malformed", "tollway.calls.v1", 0, 2)
    rows = (
        await ledger_store.query(
            "SELECT raw, reason, topic, `partition`, `offset` FROM rejected_events ORDER BY `offset`"
        )
    ).rows
    assert rows[0]["raw"] == "\\xff\\xfe not utf-8"
    assert rows[2] == {
        "raw": '{"schema_version": 9}',
        "reason": "unknown_schema_version",
        "topic": "tollway.calls.v1",
        "partition": 3,
        "offset": 1234,
    }
    assert rows[1]["raw"] == ""


def _as_stored(event: CallEvent) -> dict[str, Any]:
    """The `calls` row ClickHouse returns for an event: its fields, times as ClickHouse prints
    them, a missing attempt error or status as the column default."""
    row = event.model_dump(mode="json")
    row["ts"] = event.ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    row["attempts"] = [
        {**a, "error": a["error"] or "", "http_status": a["http_status"] or 0}
        for a in row["attempts"]
    ]
    return row
