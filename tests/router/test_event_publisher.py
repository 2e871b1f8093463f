"""The event publisher against a real Tansu broker: a full buffer overflows to the spool, a
previous run's spool is replayed at start, and a stop with the broker gone spools what is left
and returns in bounded time — every event then read back from the topic."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from router.events import EventPublisher
from router.spool import Spool
from tollway.broker import EmbeddedBroker
from tollway.events import CallEvent, decode_call_event
from tollway.kafka import ensure_topics
from tollway.topics import Topics

pytestmark = pytest.mark.integration


def _events(n: int, key_id: str | None = None) -> list[CallEvent]:
    return [
        CallEvent(ts=datetime.now(UTC), key_id=key_id or f"k_{i % 3}", model="gpt-4o-mini")
        for i in range(n)
    ]


async def _event_ids_on(bootstrap: str, topic: str) -> list[str]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    ids: list[str] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1000):
            for records in batch.values():
                ids += [str(decode_call_event(r.value).event_id) for r in records]
    finally:
        await consumer.stop()
    return ids


async def test_a_full_buffer_overflows_to_the_spool_and_everything_is_sent(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    topics = Topics(namespace)
    await ensure_topics(kafka_bootstrap, topics.specs())
    publisher = EventPublisher(
        kafka_bootstrap, topics.calls, spool_dir=tmp_path / "spool", buffer_size=5
    )
    events = _events(50)
    for event in events:  # before the sender runs: 5 in memory, 45 on disk
        publisher.publish(event)
    assert (publisher.pending, publisher.spooled) == (50, 45)
    await publisher.start()
    assert await publisher.flush(30)
    await publisher.stop()
    assert sorted(await _event_ids_on(kafka_bootstrap, topics.calls)) == sorted(
        str(e.event_id) for e in events
    )
    assert list((tmp_path / "spool").glob("*.ndjson")) == []


async def test_a_previous_runs_spool_is_replayed_at_start(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    topics = Topics(namespace)
    await ensure_topics(kafka_bootstrap, topics.specs())
    left = _events(3, key_id="k_one")  # one key, one partition: the order shows
    spool = Spool(tmp_path)
    for event in left:
        spool.append(event.encode())
    spool.append(b"not an event")  # unreadable: logged and dropped, not sent
    spool.close()

    publisher = EventPublisher(kafka_bootstrap, topics.calls, spool_dir=tmp_path)
    assert publisher.pending == 4
    await publisher.start()
    fresh = _events(2, key_id="k_one")
    for event in fresh:
        publisher.publish(event)
    assert await publisher.flush(30)
    await publisher.stop()
    ids = await _event_ids_on(kafka_bootstrap, topics.calls)
    assert ids == [str(e.event_id) for e in [*left, *fresh]]  # the spool went first
    assert list(tmp_path.glob("*.ndjson")) == []


async def test_a_stop_without_the_broker_spools_the_rest_for_the_next_start(
    namespace: str, tmp_path: Path
) -> None:
    topics = Topics(namespace)
    broker = EmbeddedBroker()
    await broker.start()
    await ensure_topics(broker.bootstrap, topics.specs())
    publisher = EventPublisher(
        broker.bootstrap, topics.calls, spool_dir=tmp_path, topic_specs=topics.specs()
    )
    await publisher.start()
    sent = _events(5)
    for event in sent:
        publisher.publish(event)
    assert await publisher.flush(10)
    await broker.stop()

    stranded = _events(20)
    for event in stranded:
        publisher.publish(event)
    clock = time.monotonic()
    await publisher.stop(timeout_s=60)
    stop_s = time.monotonic() - clock
    # bounded by the producer's request timeout (10 s), not the 60 s flush timeout
    assert stop_s < 30, stop_s
    on_disk = Spool(tmp_path)
    assert on_disk.pending == 20
    on_disk.close()

    restarted = EmbeddedBroker(port=broker.port)  # same port, empty: the topics are gone
    await restarted.start()
    try:
        again = EventPublisher(
            restarted.bootstrap, topics.calls, spool_dir=tmp_path, topic_specs=topics.specs()
        )
        # a fresh broker has no topics: the publisher creates them before it sends
        await again.start()
        assert await again.flush(60)
        await again.stop()
        ids = await _event_ids_on(restarted.bootstrap, topics.calls)
        assert sorted(ids) == sorted(str(e.event_id) for e in stranded)
    finally:
        await restarted.stop()


async def test_an_event_too_large_for_kafka_is_parked_not_retried_forever(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """Content logging can make an event larger than the broker takes (1 MiB by default):
    retrying cannot help, so it is kept beside the spool and the rest flows on."""
    topics = Topics(namespace)
    await ensure_topics(kafka_bootstrap, topics.specs())
    publisher = EventPublisher(kafka_bootstrap, topics.calls, spool_dir=tmp_path)
    await publisher.start()
    huge = CallEvent(ts=datetime.now(UTC), key_id="k_0", request_content="x" * 2_000_000)
    normal = _events(3)
    for event in [normal[0], huge, *normal[1:]]:
        publisher.publish(event)
    assert await publisher.flush(30)
    await publisher.stop()
    assert sorted(await _event_ids_on(kafka_bootstrap, topics.calls)) == sorted(
        str(e.event_id) for e in normal
    )
    (parked,) = (tmp_path / "rejected.ndjson").read_bytes().splitlines()
    assert decode_call_event(parked).event_id == huge.event_id
    assert list(tmp_path.glob("0*.ndjson")) == []


async def test_delivery_callbacks_get_the_offset_kafka_stored_the_event_at(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """An event sent from memory reports where Kafka stored it — the offset a consumer reads
    it at, which the worker's budget statuses refer to; a spooled one never reports."""
    topics = Topics(namespace)
    await ensure_topics(kafka_bootstrap, topics.specs())
    publisher = EventPublisher(
        kafka_bootstrap, topics.calls, spool_dir=tmp_path / "spool", buffer_size=5
    )
    reported: dict[str, tuple[int, int]] = {}
    events = _events(12)
    for event in events:  # before the sender runs: 5 in memory, 7 spooled
        publisher.publish(
            event, lambda p, o, e=str(event.event_id): reported.__setitem__(e, (p, o))
        )
    await publisher.start()
    assert await publisher.flush(30)
    late = _events(5)  # the spool is empty again: these stay in memory
    for event in late:
        publisher.publish(
            event, lambda p, o, e=str(event.event_id): reported.__setitem__(e, (p, o))
        )
    assert await publisher.flush(30)
    await publisher.stop()

    consumer = AIOKafkaConsumer(
        topics.calls, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    stored: dict[str, tuple[int, int]] = {}
    try:
        while batch := await consumer.getmany(timeout_ms=1000):
            for tp, records in batch.items():
                for r in records:
                    stored[str(decode_call_event(r.value).event_id)] = (tp.partition, r.offset)
    finally:
        await consumer.stop()
    assert len(stored) == 17
    assert set(reported) == {str(e.event_id) for e in [*events[:5], *late]}
    assert all(stored[e] == where for e, where in reported.items())
