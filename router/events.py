"""Publishing CallEvents without making the caller wait on Kafka, and without losing one.

`publish` only appends to a bounded in-memory buffer; a background task hands events to an
aiokafka producer (plain, acks=all) in batches, so a slow or absent broker never adds latency
to a call. When the buffer is full, or the broker has been unreachable for `spool_after_s`,
events go to an on-disk spool in the data dir instead (router/spool.py) — and what already
waits in memory follows them there, so a long outage holds nothing a crash could lose. While
the spool has a backlog, new events queue behind it, which keeps them roughly in order. When
the broker answers again the publisher first re-creates the topics (the embedded broker keeps
them in memory and comes back empty, and it would acknowledge writes to a topic it no longer
lists, then drop them), then sends the backlog; a spool segment is deleted only once Kafka has
acknowledged every event in it. Production is at least once — a retried batch or a replayed
segment can repeat an event — and the ledger keeps one row per `event_id`.

A caller may pass `on_delivered` with an event: it is called with the partition and offset
Kafka acknowledged it at (the budget gate releases a settled cost once the worker's status
covers that offset). It rides along with the event in memory, at no cost per call but the
reference; an event that goes to the spool is sent later, by this run or the next, so its
callback is dropped and never called — the caller must not wait for it.

`flush` is the graceful-stop half: it returns once every event, in memory or spooled, has been
acknowledged. `stop` flushes within its timeout and spools the rest, so nothing is lost; the
next start replays it first.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from prometheus_client import Counter, Gauge

from router.spool import Spool, SpooledRecord
from tollway.events import CallEvent, EventDecodeError, decode_call_event
from tollway.kafka import ensure_topics, new_producer
from tollway.topics import TopicSpec

log = logging.getLogger(__name__)

EVENTS_PUBLISHED = Counter("tollway_events_published_total", "CallEvents acknowledged by Kafka")
EVENTS_PENDING = Gauge(
    "tollway_events_pending", "CallEvents waiting to be acknowledged by Kafka (memory and spool)"
)
EVENTS_SPOOLED = Gauge(
    "tollway_events_spooled", "CallEvents in the on-disk spool not yet acknowledged by Kafka"
)
PUBLISH_RETRIES = Counter("tollway_event_publish_retries_total", "Failed sends that were retried")


#: events handed to the producer per round (about a 1 MB batch when they share a partition)
MAX_BATCH = 2000
#: the longest wait between two attempts while the broker is unreachable
MAX_BACKOFF_S = 5.0
#: failures that retrying cannot cure: the event itself is too large for the broker
UNDELIVERABLE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)

#: told the (partition, offset) at which Kafka acknowledged an event
OnDelivered = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class _Outgoing:
    event: CallEvent
    record: SpooledRecord | None  # where it waits on disk; None while it is in memory only
    on_delivered: OnDelivered | None = None


def _tell(on_delivered: OnDelivered, event: CallEvent, partition: int, offset: int) -> None:
    """Report a delivery; a failing callback is logged, never the publisher's problem."""
    try:
        on_delivered(partition, offset)
    except Exception:
        log.exception("the delivery callback of call event %s failed", event.event_id)


def _failed(exc: Exception) -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


class EventPublisher:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        spool_dir: Path,
        buffer_size: int = 10_000,
        spool_after_s: float = 5.0,
        topic_specs: Sequence[TopicSpec] = (),
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.buffer_size = buffer_size
        self.spool_after_s = spool_after_s
        self.topic_specs = list(topic_specs)  # re-created when the broker comes back
        self._producer = new_producer(bootstrap)
        self._spool = Spool(spool_dir)
        self._buffer: collections.deque[_Outgoing] = collections.deque()
        self._retry: list[_Outgoing] = []  # failed last round; sent again first
        self._in_flight: list[_Outgoing] = []
        self._taken = 0  # events taken from the buffer, in flight or in `_retry`
        self._down_since: float | None = None  # start of the first failed round in a row
        self._stopped = False
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._stalled = asyncio.Event()  # the broker is unreachable: waiting will not help
        self._task: asyncio.Task[None] | None = None
        self._reported_pending = self._reported_spooled = 0
        self._report()

    async def start(self) -> None:
        if self.topic_specs:
            await ensure_topics(self.bootstrap, self.topic_specs)
        await self._producer.start()
        self._task = asyncio.create_task(self._run(), name="tollway-event-publisher")

    # -- the caller's side ---------------------------------------------------------------

    def publish(self, event: CallEvent, on_delivered: OnDelivered | None = None) -> None:
        """Queue one event; never blocks and never raises. `on_delivered` is called once
        Kafka has acknowledged it — unless it is spooled first."""
        try:
            if self._stopped:  # a straggler after `stop`: straight to disk, for the next run
                self._to_spool([event])
                self._spool.close()
            elif self._overflowing():
                if not self._to_spool([event]):  # the disk failed: over the bound, not lost
                    self._buffer.append(_Outgoing(event, None, on_delivered))
            else:
                self._buffer.append(_Outgoing(event, None, on_delivered))
            self._wake.set()
            self._report()
        except Exception:
            log.exception("call event %s could not be queued", event.event_id)

    def _overflowing(self) -> bool:
        return (
            self._spool.unread > 0  # queue behind the backlog
            or len(self._buffer) >= self.buffer_size
            or self._down_for() >= self.spool_after_s
        )

    def _down_for(self) -> float:
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by Kafka, in memory or in the spool."""
        return len(self._buffer) + self._taken + self._spool.pending

    @property
    def spooled(self) -> int:
        return self._spool.pending

    # -- the sending side ----------------------------------------------------------------

    async def _run(self) -> None:
        """Send batches while the broker takes them; while it does not, probe it with
        back-off and move what waits in memory to the spool."""
        delay = 0.1
        while True:
            try:
                if self._down_since is not None and not await self._broker_is_back():
                    self._spill_if_down_long()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_BACKOFF_S)
                    continue
                self._wake.clear()
                batch = self._take_batch()
                if not batch:
                    self._report()
                    await self._wake.wait()
                    continue
                started = time.monotonic()
                failed = await self._send(batch)
                if failed:
                    self._retry = failed + self._retry
                    if self._down_since is None:
                        self._down_since = started
                    self._stalled.set()
                    PUBLISH_RETRIES.inc(len(failed))
                    log.warning(
                        "%d call events were not acknowledged by Kafka; retrying in %.1fs",
                        len(failed),
                        delay,
                    )
                    self._spill_if_down_long()
                    self._report()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_BACKOFF_S)
                else:
                    if self._down_since is not None:
                        log.warning("Kafka acknowledges call events again")
                    self._down_since = None
                    self._stalled.clear()
                    delay = 0.1
                    self._report()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive any surprise, or events would pile up
                log.exception("the event publisher hit an error; going on")
                self._retry = self._in_flight + self._retry  # nothing taken is let go
                self._in_flight = []
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    def _take_batch(self) -> list[_Outgoing]:
        """Oldest first: the failed retries, then memory, then the spool's backlog."""
        batch = self._retry[:MAX_BATCH]
        del self._retry[: len(batch)]
        while len(batch) < MAX_BATCH and self._buffer:
            batch.append(self._buffer.popleft())
            self._taken += 1
        self._in_flight = batch  # held here until `_send` takes over
        if len(batch) < MAX_BATCH:
            unreadable: list[SpooledRecord] = []
            for record in self._spool.read(MAX_BATCH - len(batch)):
                try:
                    batch.append(_Outgoing(decode_call_event(record.payload), record))
                except EventDecodeError as exc:
                    log.error("skipping an unreadable spooled event: %s", exc)
                    unreadable.append(record)
            self._spool.ack(unreadable)
        return batch

    async def _send(self, batch: list[_Outgoing]) -> list[_Outgoing]:
        """Send a batch without waiting event by event (the producer's accumulator packs
        them), then await it as a whole; returns the events that were not acknowledged."""
        self._in_flight = batch  # `stop` spools it if cancelled half-way
        deliveries = []
        for item in batch:
            try:
                deliveries.append(
                    await self._producer.send(
                        self.topic, item.event.encode(), key=item.event.partition_key
                    )
                )
            except Exception as exc:  # not handed over: the same as a failed delivery
                deliveries.append(_failed(exc))
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        self._in_flight = []
        failed: list[_Outgoing] = []
        done: list[_Outgoing] = []
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, UNDELIVERABLE):
                self._park(item, result)
                done.append(item)
            elif isinstance(result, BaseException):
                failed.append(item)
            else:
                EVENTS_PUBLISHED.inc()
                done.append(item)
                if item.on_delivered is not None:
                    _tell(item.on_delivered, item.event, result.partition, result.offset)
        self._taken -= sum(1 for i in done if i.record is None)
        self._spool.ack(i.record for i in done if i.record is not None)
        return failed

    def _park(self, item: _Outgoing, error: BaseException) -> None:
        """An event the broker will never take is kept beside the spool, not retried forever
        (which would hold the publisher in its outage mode)."""
        log.error(
            "call event %s cannot be produced (%s); kept in %s",
            item.event.event_id,
            error,
            self._spool.directory,
        )
        self._spool.park(item.event.encode())

    async def _broker_is_back(self) -> bool:
        """Whether the broker answers — and has the topics, re-created if it lost them."""
        try:
            if self.topic_specs:
                await asyncio.wait_for(ensure_topics(self.bootstrap, self.topic_specs), 10.0)
            else:
                await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 10.0)
            return True
        except Exception:
            return False

    def _spill_if_down_long(self) -> None:
        """After `spool_after_s` without the broker, what waits in memory goes to disk."""
        if self._down_for() < self.spool_after_s:
            return
        in_memory = [i for i in self._retry if i.record is None]
        events = [i.event for i in [*in_memory, *self._buffer]]
        if not events or not self._to_spool(events):
            return
        log.warning(
            "Kafka unreachable for %.0fs: %d call events spooled", self._down_for(), len(events)
        )
        self._retry = [i for i in self._retry if i.record is not None]
        self._taken -= len(in_memory)
        self._buffer.clear()
        self._report()

    def _to_spool(self, events: Iterable[CallEvent]) -> bool:
        """Append to the spool; False (logged) if the disk refused, the events stay put."""
        try:
            for event in events:
                self._spool.append(event.encode())
            return True
        except OSError:
            log.exception("the event spool %s refused a write", self._spool.directory)
            return False

    def _report(self) -> None:
        """Move the gauges by this publisher's change (several may share a process) and
        keep the idle flag `flush` waits for."""
        pending, spooled = self.pending, self._spool.pending
        EVENTS_PENDING.inc(pending - self._reported_pending)
        EVENTS_SPOOLED.inc(spooled - self._reported_spooled)
        self._reported_pending, self._reported_spooled = pending, spooled
        if pending == 0:
            self._idle.set()
        else:
            self._idle.clear()

    # -- stopping ------------------------------------------------------------------------

    async def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every event, in memory or spooled, is acknowledged; False if the
        timeout passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            log.error("%d call events were not acknowledged in time", self.pending)
            return False

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Flush within the timeout — or less, once the broker is known to be unreachable —
        then spool what is left in memory; the next start sends it."""
        waits = [asyncio.ensure_future(e.wait()) for e in (self._idle, self._stalled)]
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        self._stopped = True
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # anything not acknowledged: the batch cut short, the retries, the buffer
        left = [i.event for i in [*self._in_flight, *self._retry] if i.record is None]
        left += [i.event for i in self._buffer]
        if left:
            if self._to_spool(left):
                log.warning("%d call events spooled at the stop, sent on the next start", len(left))
                self._in_flight, self._retry = [], []
                self._buffer.clear()
                self._taken = 0
            else:
                log.error("%d call events could not be spooled at the stop: lost", len(left))
        if self._spool.pending:
            log.warning(
                "%d call events wait in the spool %s", self._spool.pending, self._spool.directory
            )
        self._spool.close()
        self._report()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._producer.stop(), 15.0)

    async def ready(self) -> bool:
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2.0)
            return True
        except (KafkaError, OSError, TimeoutError):
            return False
