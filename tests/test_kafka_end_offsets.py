"""`tollway.kafka.end_offsets` on the real (Tansu) broker: the end of a partition whose last
record batch holds several records — what the ledger drain, the lag and the budget table's
recovery read up to. Tansu's ListOffsets alone reports the last batch's base offset plus one."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tollway.kafka import end_offsets, ensure_topics, new_producer
from tollway.topics import TopicSpec

pytestmark = pytest.mark.integration


async def test_the_end_of_a_partition_is_after_its_last_record(
    kafka_bootstrap: str, namespace: str
) -> None:
    topic = f"{namespace}ends"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, partitions=2, cleanup_policy="delete")])
    producer = new_producer(kafka_bootstrap, linger_ms=200)
    await producer.start()
    try:
        first = [await producer.send(topic, b"one", partition=0)]  # a batch of its own
        await producer.flush()
        # then one batch of five: sent together, flushed once
        rest = [await producer.send(topic, b"%d" % i, partition=0) for i in range(5)]
        await producer.flush()
        for delivery in first + rest:
            await delivery
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await end_offsets(consumer, [TopicPartition(topic, 0), TopicPartition(topic, 1)])
    finally:
        await consumer.stop()
    assert ends == {TopicPartition(topic, 0): 6, TopicPartition(topic, 1): 0}
