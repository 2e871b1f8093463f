"""The ledger sink against real engines: redelivery, poison messages, and batch retries."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from analytics.ledger import Ledger
from analytics.migrate import migrate
from ingest.ledger_sink import LedgerSink, RawMessage
from tollway.config import load_config
from tollway.events import CallEvent, utc_now
from tollway.kafka import new_producer
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings
from tollway.topics import Topics

pytestmark = pytest.mark.integration


def _event(i: int, key: str = "k_a") -> CallEvent:
    return CallEvent(
        ts=utc_now(),
        business_line="marketing",
        project="campaigns",
        task_type="chat",
        key_id=key,
        requested_model="gpt-4o-mini",
        provider="sim",
        model="gpt-4o-mini",
        input_tokens=100 + i,
        output_tokens=20,
        cost_usd=Decimal("0.000027") + i,
        price_version="gpt-4o-mini@1970-01-01",
    )


async def _scalar(store, sql: str) -> int:  # type: ignore[no-untyped-def]
    return int((await store.query(sql)).rows[0]["n"])


async def _eventually(store, sql: str, expected: int, timeout_s: float = 60) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    value = -1
    while time.monotonic() < deadline:
        value = await _scalar(store, sql)
        if value >= expected:
            return value
        await asyncio.sleep(0.2)
    return value


async def test_processing_the_same_batch_twice_leaves_one_row_per_event(store) -> None:
    await migrate(store)
    parked: list[str] = []

    async def dead_letter(message: RawMessage, reason: str) -> None:
        parked.append(reason)

    sink = LedgerSink(ledger=Ledger(store), dead_letter=dead_letter)
    events = [_event(i) for i in range(5)]
    batch = [RawMessage(e.encode(), "calls", 0, offset) for offset, e in enumerate(events)]

    first = await sink.process(batch)
    again = await sink.process(batch)  # a crash before the offset commit redelivers it
    overlap = await sink.process([*batch[3:], RawMessage(_event(9).encode(), "calls", 0, 5)])

    assert (first.written, again.written, overlap.written) == (5, 0, 1)
    assert again.duplicates == 5
    assert await _scalar(store, "SELECT count() AS n FROM calls") == 6
    assert await _scalar(store, "SELECT uniqExact(event_id) AS n FROM calls") == 6
    hourly = await store.query("SELECT toString(sum(cost_usd)) AS c FROM calls_hourly")
    raw = await store.query("SELECT toString(sum(cost_usd)) AS c FROM calls")
    assert hourly.rows == raw.rows
    assert parked == []


async def test_redelivered_and_poison_messages_through_kafka(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path
) -> None:
    settings = Settings(
        topic_namespace=namespace,
        data_dir=tmp_path,
        kafka_session_timeout_s=3.0,
        sink_batch_seconds=0.2,
    )
    runtime = Runtime(
        settings=settings,
        config=load_config(None),
        bootstrap=kafka_bootstrap,
        roles=frozenset({"worker", "analytics"}),
        store=store,
    )
    topics = Topics(namespace)
    good = [_event(i, key=f"k_{i % 3}") for i in range(6)]
    poison = [
        b"{not json",
        b'{"schema_version": 99, "event_id": "x"}',
        b'{"schema_version": 1, "ts": "yesterday"}',
        b"[1, 2, 3]",
    ]
    async with serving(build_app(runtime)):
        producer = new_producer(kafka_bootstrap)
        await producer.start()
        try:
            for event in good + good[:3]:  # the first three twice: a producer retry
                await producer.send_and_wait(topics.calls, event.encode(), key=event.partition_key)
            for value in poison:
                await producer.send_and_wait(topics.calls, value, key=b"k_0")
        finally:
            await producer.stop()
        rejected = await _eventually(store, "SELECT count() AS n FROM rejected_events", len(poison))
        assert rejected == len(poison)
        assert await _eventually(store, "SELECT count() AS n FROM calls", len(good)) == len(good)
        await asyncio.sleep(1.0)  # any duplicate would have landed by now
        assert await _scalar(store, "SELECT count() AS n FROM calls") == len(good)

    reasons = await store.query("SELECT reason FROM rejected_events ORDER BY reason")
    kinds = sorted(r["reason"].split(":")[0] for r in reasons.rows)
    assert kinds == ["malformed", "malformed", "malformed", "unknown_schema_version"]

    consumer = AIOKafkaConsumer(
        topics.calls_dlq, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records = await consumer.getmany(timeout_ms=5000)
        values = sorted(r.value for batch in records.values() for r in batch)
    finally:
        await consumer.stop()
    assert values == sorted(poison)


async def test_after_write_learns_the_batchs_last_offset_per_partition(store) -> None:
    """What budget statuses claim to have counted through: every message of the batch, also
    a poison one and a redelivery, is behind that offset once the batch is written."""
    await migrate(store)
    calls: list[tuple[list[tuple[CallEvent, int]], dict[int, int]]] = []

    async def after_write(inserted: list[tuple[CallEvent, int]], through: dict[int, int]) -> None:
        calls.append((inserted, dict(through)))

    async def dead_letter(message: RawMessage, reason: str) -> None:
        pass

    sink = LedgerSink(ledger=Ledger(store), dead_letter=dead_letter, after_write=after_write)
    a, b, c = _event(1), _event(2), _event(3)
    await sink.process([RawMessage(a.encode(), "calls", 0, 10)])
    await sink.process(
        [
            RawMessage(b.encode(), "calls", 1, 7),
            RawMessage(a.encode(), "calls", 0, 11),  # a producer retry: not inserted again
            RawMessage(c.encode(), "calls", 1, 8),
            RawMessage(b"{poison", "calls", 0, 12),
        ]
    )
    assert [({e.event_id for e, _ in inserted}, through) for inserted, through in calls] == [
        ({a.event_id}, {0: 10}),
        ({b.event_id, c.event_id}, {0: 12, 1: 8}),
    ]
    assert sink.written_offsets == {0: 12, 1: 8}
