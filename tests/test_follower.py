"""`CompactedFollower` with two topics on one consumer (as the budget gate follows its status
and the peers' holds): each topic's records reach its own handler, those already on the topics
before `start` returns and those produced afterwards."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import ConsumerRecord

from router.follower import CompactedFollower, OnRecord
from tollway.kafka import ensure_topics, new_producer
from tollway.topics import TopicSpec

pytestmark = pytest.mark.integration


async def test_one_consumer_follows_two_topics(kafka_bootstrap: str, namespace: str) -> None:
    status, holds = f"{namespace}status", f"{namespace}holds"
    await ensure_topics(kafka_bootstrap, [TopicSpec(t, 2, "compact") for t in (status, holds)])
    producer = new_producer(kafka_bootstrap)
    await producer.start()
    seen: dict[str, list[bytes]] = {status: [], holds: []}

    def on(topic: str) -> OnRecord:
        def record(r: ConsumerRecord[bytes, bytes]) -> None:
            assert r.topic == topic
            seen[topic].append(r.value or b"")

        return record

    follower = CompactedFollower(kafka_bootstrap, status, on(status), fetch_max_wait_ms=50)
    follower.also(holds, on(holds))
    try:
        await producer.send_and_wait(status, b"s1", key=b"a")
        await producer.send_and_wait(holds, b"h1", key=b"a")
        await follower.start()
        assert seen == {status: [b"s1"], holds: [b"h1"]}  # caught up before serving

        started = time.monotonic()
        await producer.send_and_wait(holds, b"h2", key=b"b")
        await producer.send_and_wait(status, b"s2", key=b"b")
        while len(seen[status]) < 2 or len(seen[holds]) < 2:
            assert time.monotonic() - started < 10, seen
            await asyncio.sleep(0.01)
        assert seen == {status: [b"s1", b"s2"], holds: [b"h1", b"h2"]}
        with pytest.raises(RuntimeError):
            follower.also(f"{namespace}other", on(status))
    finally:
        await follower.stop()
        await producer.stop()
