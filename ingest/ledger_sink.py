"""The ledger sink: decode → write → acknowledge, one batch of `tollway.calls.v1` at a time.

Order matters for "exactly once per event_id" (as in OpenMeter's sink): the batch is written
to the ClickHouse ledger first — the ledger itself is the record of which event ids were seen,
so a redelivered batch inserts nothing new — and only then are the messages acknowledged,
which lets Faust commit their offsets. A store outage is waited out with backoff, never
acknowledged past. Poison messages go to the dead-letter topic and `rejected_events` with
their reason; they never stop the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import Counter

from analytics.ledger import Ledger
from analytics.store.base import StoreError
from tollway.events import CallEvent, EventDecodeError, decode_call_event

log = logging.getLogger(__name__)

LEDGER_ROWS = Counter("tollway_ledger_rows_written_total", "Calls inserted into the ledger")
LEDGER_DUPLICATES = Counter("tollway_ledger_duplicates_total", "Redelivered calls skipped")
REJECTED = Counter("tollway_events_rejected_total", "Poison messages parked", ["reason"])


class KafkaMessage(Protocol):
    """What the sink reads of a Kafka message: Faust's own messages have it, so the worker
    hands them over as they are."""

    @property
    def value(self) -> bytes | None: ...
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


@dataclass(frozen=True)
class RawMessage:
    """A `KafkaMessage` made by hand (tests, tools reading the topic with aiokafka)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int


@dataclass
class BatchResult:
    written: int = 0
    duplicates: int = 0
    rejected: int = 0


@dataclass
class DecodedBatch:
    """A batch after `LedgerSink.decode`: what `LedgerSink.write` stores and parks."""

    events: list[CallEvent] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)  # each event's source partition
    rejected: list[tuple[KafkaMessage, EventDecodeError]] = field(default_factory=list)
    through: dict[int, int] = field(default_factory=dict)  # highest offset per partition

    @classmethod
    def joined(cls, batches: Sequence[DecodedBatch]) -> DecodedBatch:
        """Consecutive batches as one, in order (for one write: ingest/group_commit.py)."""
        if len(batches) == 1:
            return batches[0]
        joined = cls()
        for batch in batches:
            joined.events += batch.events
            joined.partitions += batch.partitions
            joined.rejected += batch.rejected
            for partition, offset in batch.through.items():
                joined.through[partition] = max(offset, joined.through.get(partition, -1))
        return joined


DeadLetter = Callable[[KafkaMessage, str], Awaitable[None]]
#: called with the events a batch actually inserted (and their source partitions), and the
#: batch's highest offset per partition: every message up to it has then been through the sink
AfterWrite = Callable[[list[tuple[CallEvent, int]], dict[int, int]], Awaitable[None]]


@dataclass
class LedgerSink:
    ledger: Ledger
    dead_letter: DeadLetter
    after_write: AfterWrite | None = None
    max_backoff_s: float = 10.0
    #: highest offset written per partition — what a graceful stop waits for
    written_offsets: dict[int, int] = field(default_factory=dict)
    #: held from the ledger insert to the end of `after_write`, so a reader of both (budget
    #: reconciliation) never sees a batch in the ledger but not yet counted
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def process(self, batch: Sequence[KafkaMessage]) -> BatchResult:
        return await self.write(self.decode(batch))

    @staticmethod
    def decode(batch: Sequence[KafkaMessage]) -> DecodedBatch:
        """Validate a batch's messages — CPU work only, so the worker runs it for the next
        batch while the store is still writing the last one."""
        decoded = DecodedBatch()
        through = decoded.through
        for message in batch:
            partition, offset = message.partition, message.offset
            if offset > through.get(partition, -1):
                through[partition] = offset
            try:
                decoded.events.append(decode_call_event(message.value))
                decoded.partitions.append(partition)
            except EventDecodeError as exc:
                decoded.rejected.append((message, exc))
        return decoded

    async def write(self, batch: DecodedBatch) -> BatchResult:
        """Park the poison messages, insert the new events and count them; once this returns,
        every message of the batch may be acknowledged."""
        result = BatchResult(rejected=len(batch.rejected))
        for message, exc in batch.rejected:
            await self._reject(message, exc)
        if batch.events:
            async with self.lock:
                inserted = await self._write_until_accepted(batch.events, batch.partitions)
                if inserted and self.after_write is not None:
                    await self.after_write(inserted, batch.through)
            result.written = len(inserted)
            result.duplicates = len(batch.events) - result.written
        LEDGER_ROWS.inc(result.written)
        LEDGER_DUPLICATES.inc(result.duplicates)
        for partition, offset in batch.through.items():
            previous = self.written_offsets.get(partition, -1)
            self.written_offsets[partition] = max(previous, offset)
        return result

    async def _write_until_accepted(
        self, events: list[CallEvent], partitions: list[int]
    ) -> list[tuple[CallEvent, int]]:
        delay = 0.2
        while True:
            try:
                return await self.ledger.insert_new(events, partitions)
            except StoreError as exc:
                log.warning("ledger write failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)

    async def _reject(self, message: KafkaMessage, exc: EventDecodeError) -> None:
        reason = f"{exc.reason}: {exc}"
        REJECTED.labels(exc.reason).inc()
        log.warning(
            "parking message %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            reason,
        )
        await self.dead_letter(message, reason)
