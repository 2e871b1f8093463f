"""Keep every proxy replica's key registry in step with the compacted `tollway.keys.v1` topic.

Each replica reads the whole topic at start-up (compaction keeps the latest record per key id)
before it reports ready, then follows it: a key created or revoked through any replica's admin
API is known to all of them within the consumer's poll interval. Records hold hashes and
metadata only, never a secret.

The embedded broker forgets its topics on restart, so in the embedded default the records are
also snapshotted to the data dir and restored into the topic at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from tollway.auth import KeyRegistry
from tollway.config.schema import KeyConfig
from tollway.kafka import new_producer

log = logging.getLogger(__name__)


def encode_key(key: KeyConfig) -> bytes:
    return orjson.dumps(key.model_dump(mode="json"))


class KeySync:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        registry: KeyRegistry,
        snapshot: Path | None = None,
        poll_ms: int = 200,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.registry = registry
        self.snapshot = snapshot
        self.poll_ms = poll_ms
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        self._producer = new_producer(bootstrap)
        self._task: asyncio.Task[None] | None = None

    async def publish(self, key: KeyConfig) -> None:
        """Put a record on the topic for every replica, and apply it here at once."""
        await self._producer.send_and_wait(self.topic, encode_key(key), key=key.id.encode())
        self.registry.apply(key)
        self._write_snapshot()

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
        self._task = asyncio.create_task(self._follow(), name="tollway-key-sync")

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
            await self._poll_once()

    async def _poll_once(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=self.poll_ms)
        changed = False
        for records in batches.values():
            for record in records:
                if record.value is None:
                    continue
                try:
                    self.registry.apply(KeyConfig.model_validate(orjson.loads(record.value)))
                    changed = True
                except (orjson.JSONDecodeError, ValidationError) as exc:
                    log.warning(
                        "ignoring an invalid key record at offset %d: %s", record.offset, exc
                    )
        if changed:
            self._write_snapshot()

    def _write_snapshot(self) -> None:
        if self.snapshot is None:
            return
        # the topic's records only: the file's keys come from the file, so a key deleted
        # from it is not brought back by a restart
        data = orjson.dumps([k.model_dump(mode="json") for k in self.registry.topic_records()])
        tmp = self.snapshot.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.snapshot)

    async def _restore_snapshot(self) -> None:
        """Put the snapshotted records back on a topic that lost them (embedded restart)."""
        if self.snapshot is None or not self.snapshot.exists():
            return
        records = [KeyConfig.model_validate(r) for r in orjson.loads(self.snapshot.read_bytes())]
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
            for key in records:
                await producer.send_and_wait(self.topic, encode_key(key), key=key.id.encode())
        finally:
            await producer.stop()
        log.info("restored %d key records from %s", len(records), self.snapshot)
