"""Keep a process in step with a compacted topic of records, one per id: virtual keys
(tollway/key_sync.py) and budgets defined through the admin API (tollway/budget_sync.py).

Each process reads the whole topic at start-up (compaction keeps the latest record per id)
before it serves, then follows it: a record published through any replica's admin API is
known to all of them within the consumer's poll interval, and applied at once in the process
that published it.

The embedded broker forgets its topics on restart, so in the embedded default the records are
also snapshotted to the data dir and restored into the topic at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Generic, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel, ValidationError

from tollway.kafka import new_producer

log = logging.getLogger(__name__)

R = TypeVar("R", bound=BaseModel)


class RecordSync(Generic[R]):
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        model: type[R],
        *,
        key_of: Callable[[R], str],
        apply: Callable[[R], None],
        held: Callable[[], Iterable[R]],
        snapshot: Path | None = None,
        on_change: Callable[[], Awaitable[None]] | None = None,
        poll_ms: int = 200,
    ) -> None:
        """`apply` takes one record into the process's state; `held` gives back the records
        applied so far (what the snapshot keeps); `on_change` runs after records changed that
        state, once the start-up catch-up is over."""
        self.bootstrap = bootstrap
        self.topic = topic
        self.model = model
        self.key_of = key_of
        self.apply = apply
        self.held = held
        self.snapshot = snapshot
        self.on_change = on_change
        self.poll_ms = poll_ms
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        self._producer = new_producer(bootstrap)
        self._task: asyncio.Task[None] | None = None

    def encode(self, record: R) -> bytes:
        return orjson.dumps(record.model_dump(mode="json"))

    async def publish(self, record: R) -> None:
        """Put a record on the topic for every replica, and apply it here at once."""
        await self._producer.send_and_wait(
            self.topic, self.encode(record), key=self.key_of(record).encode()
        )
        self.apply(record)
        self._write_snapshot()
        if self.on_change is not None:
            await self.on_change()

    async def start(self) -> None:
        await self._restore_snapshot()
        await self._producer.start()
        await self._consumer.start()
        partitions = await self._partitions()
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        ends = await self._consumer.end_offsets(partitions)
        while await self._behind(ends):
            await self._poll_once()  # caught up before serving: no valid key is refused
        self._task = asyncio.create_task(self._follow(), name=f"tollway-sync-{self.topic}")

    async def _behind(self, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await self._consumer.position(tp) < end:
                return True
        return False

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
        await self._producer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        for _ in range(50):
            await self._consumer.topics()
            found = self._consumer.partitions_for_topic(self.topic)
            if found:
                return [TopicPartition(self.topic, p) for p in sorted(found)]
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {self.topic} does not exist")

    async def _follow(self) -> None:
        while True:
            if await self._poll_once() and self.on_change is not None:
                try:
                    await self.on_change()
                except Exception:  # a failed update must not stop the following
                    log.exception("applying records of %s failed", self.topic)

    async def _poll_once(self) -> bool:
        """Apply what one poll brings; True if anything was applied."""
        batches = await self._consumer.getmany(timeout_ms=self.poll_ms)
        changed = False
        for records in batches.values():
            for record in records:
                if record.value is None:
                    continue
                try:
                    self.apply(self.model.model_validate(orjson.loads(record.value)))
                    changed = True
                except (orjson.JSONDecodeError, ValidationError) as exc:
                    log.warning(
                        "ignoring an invalid record of %s at offset %d: %s",
                        self.topic,
                        record.offset,
                        exc,
                    )
        if changed:
            self._write_snapshot()
        return changed

    def _write_snapshot(self) -> None:
        if self.snapshot is None:
            return
        data = orjson.dumps([r.model_dump(mode="json") for r in self.held()])
        tmp = self.snapshot.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.snapshot)

    async def _restore_snapshot(self) -> None:
        """Put the snapshotted records back on a topic that lost them (embedded restart)."""
        if self.snapshot is None or not self.snapshot.exists():
            return
        records = [self.model.model_validate(r) for r in orjson.loads(self.snapshot.read_bytes())]
        probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await probe.start()
        try:
            await probe.topics()
            tps = [
                TopicPartition(self.topic, p) for p in probe.partitions_for_topic(self.topic) or ()
            ]
            ends = await probe.end_offsets(tps) if tps else {}
        finally:
            await probe.stop()
        if any(ends.values()):
            return  # the topic still has its records: it is the source of truth
        producer = new_producer(self.bootstrap)
        await producer.start()
        try:
            for record in records:
                await producer.send_and_wait(
                    self.topic, self.encode(record), key=self.key_of(record).encode()
                )
        finally:
            await producer.stop()
        log.info("restored %d records of %s from %s", len(records), self.topic, self.snapshot)
