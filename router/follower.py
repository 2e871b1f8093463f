"""Follow a compacted topic: read it to its end at start-up, then keep applying new records.

The proxy's caches of shared state (budget status, routing statistics) are all built this way:
compaction keeps the latest record per key, so reading from the beginning rebuilds the whole
picture, and a replica that starts later is as informed as one that has run all along.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

log = logging.getLogger(__name__)

OnRecord = Callable[[ConsumerRecord[bytes, bytes]], None]


class CompactedFollower:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        on_record: OnRecord,
        poll_ms: int = 100,
        fetch_max_wait_ms: int = 500,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.on_record = on_record
        self.poll_ms = poll_ms
        #: how long the broker may hold a fetch open for lack of records: a follower whose
        #: records are worth most while fresh (peers' budget holds) asks for less
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Catch up with the topic's end (so a fresh replica starts informed), then follow."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )
        self._consumer = consumer
        await consumer.start()
        await consumer.topics()
        partitions = [
            TopicPartition(self.topic, p)
            for p in sorted(consumer.partitions_for_topic(self.topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions) if partitions else {}
        for tp, end in ends.items():
            while await consumer.position(tp) < end:
                await self._poll(consumer)
        self._task = asyncio.create_task(self._follow(consumer), name=f"follow {self.topic}")

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            await self._poll(consumer)

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        for records in (await consumer.getmany(timeout_ms=self.poll_ms)).values():
            for record in records:
                self.on_record(record)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()
