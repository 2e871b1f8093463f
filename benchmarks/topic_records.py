"""Counting a topic's records from a benchmark: how many Kafka holds (to tell what a run
published) and how many distinct event ids among them (to tell each event arrived once)."""

from __future__ import annotations

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


class TopicEnd:
    """The number of records on a topic (the sum of its partitions' end offsets): read before
    and after a run, it says how many events Kafka acknowledged during it."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def __aenter__(self) -> TopicEnd:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def records(self) -> int:
        await self._consumer.topics()  # refreshes the metadata
        numbers = self._consumer.partitions_for_topic(self.topic) or ()
        ends = await self._consumer.end_offsets([TopicPartition(self.topic, p) for p in numbers])
        return sum(ends.values())


async def count_events(bootstrap: str, topic: str) -> tuple[int, int]:
    """(records on the topic, distinct event ids among them)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        await consumer.topics()  # fetches the metadata
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records = 0
        ids: set[bytes] = set()

        async def behind() -> bool:
            for tp, end in ends.items():
                if await consumer.position(tp) < end:
                    return True
            return False

        while await behind():
            batches = await consumer.getmany(*partitions, timeout_ms=1000, max_records=10_000)
            for batch in batches.values():
                for record in batch:
                    records += 1
                    ids.add(str(orjson.loads(record.value or b"{}").get("event_id")).encode())
        return records, len(ids)
    finally:
        await consumer.stop()
