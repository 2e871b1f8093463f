"""Kafka plumbing shared by the roles: reachability, topic creation, and producer settings."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from tollway.topics import TopicSpec


class KafkaUnavailable(ConnectionError):
    """No Kafka-protocol broker answers at the bootstrap address."""


async def wait_for_kafka(bootstrap: str, timeout_s: float = 10.0) -> None:
    """Return once the broker answers a metadata request, or raise `KafkaUnavailable`."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last_error = exc
            await asyncio.sleep(0.1)
        finally:
            await admin.close()
    raise KafkaUnavailable(f"no Kafka broker answers at {bootstrap}: {last_error}")


async def ensure_topics(bootstrap: str, specs: list[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        s.name,
                        num_partitions=s.partitions,
                        replication_factor=1 if _single_node(bootstrap) else -1,
                        topic_configs={"cleanup.policy": s.cleanup_policy},
                    )
                    for s in missing
                ]
            )
        return [s.name for s in missing]
    finally:
        await admin.close()


def _single_node(bootstrap: str) -> bool:
    return "," not in bootstrap


#: bytes a producer packs into one partition's batch before `send` waits for it to leave: just
#: under Kafka's default 1 MB message limit (`message.max.bytes`; lower it with
#: TOLLWAY_KAFKA_MAX_BATCH_BYTES for brokers set below that). aiokafka's 16 KiB, about 20 call
#: events, sends one batch per partition per broker round trip, and a proxy's calls share
#: their key's partition: a loaded proxy published about 700 events/s and spooled the rest.
MAX_BATCH_BYTES = 1_000_000


def max_batch_bytes() -> int:
    return int(os.environ.get("TOLLWAY_KAFKA_MAX_BATCH_BYTES") or MAX_BATCH_BYTES)


def new_producer(bootstrap: str, **overrides: object) -> AIOKafkaProducer:
    """A plain producer with acks=all: Tansu rejects idempotent producers (InitProducerId),
    so exactly-once is the consumers' job, by `event_id`."""
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 5,
        "max_batch_size": max_batch_bytes(),
        "compression_type": None,
        "request_timeout_ms": 10_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def end_offsets(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition], timeout_s: float = 5.0
) -> dict[TopicPartition, int]:
    """The next offset of each partition (its high watermark), read with `consumer`, which
    this assigns to the partitions and moves.

    Tansu answers ListOffsets with the base offset of the last record batch plus one, not the
    offset after its last record, so the reported end is corrected by fetching that last batch
    and reading its highest offset — a reader that stopped at the reported end would miss up
    to a whole batch (on a real Kafka broker the fetch just confirms the end)."""
    tps = sorted(set(partitions))
    if not tps:
        return {}
    ends = await consumer.end_offsets(tps)
    if consumer.assignment() != set(tps):
        consumer.assign(tps)
    waiting = {tp for tp in tps if ends[tp] > 0}
    for tp in waiting:
        consumer.seek(tp, ends[tp] - 1)
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        fetched = await consumer.getmany(*waiting, timeout_ms=200)
        for tp, records in fetched.items():
            if records:
                ends[tp] = max(ends[tp], records[-1].offset + 1)
                waiting.discard(tp)
    return ends
