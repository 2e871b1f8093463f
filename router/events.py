"""Publishing CallEvents without making the caller wait on Kafka.

`publish` only appends to an in-memory queue; a background task hands events to an aiokafka
producer (plain, acks=all) and retries while the broker is unreachable, so a slow or absent
broker never adds latency to a call. `flush` is the graceful-stop half: it returns once every
queued event has been acknowledged by the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from tollway.events import CallEvent
from tollway.kafka import new_producer

log = logging.getLogger(__name__)

EVENTS_PUBLISHED = Counter("tollway_events_published_total", "CallEvents acknowledged by Kafka")
EVENTS_PENDING = Gauge("tollway_events_pending", "CallEvents waiting to be acknowledged by Kafka")
PUBLISH_RETRIES = Counter("tollway_event_publish_retries_total", "Failed sends that were retried")


#: events handed to the producer per round trip
MAX_BATCH = 500


def _failed(exc: Exception) -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


class EventPublisher:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._producer = new_producer(bootstrap)
        self._queue: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._producer.start()
        self._task = asyncio.create_task(self._run(), name="tollway-event-publisher")

    def publish(self, event: CallEvent) -> None:
        """Queue one event; never blocks and never raises for broker trouble."""
        self._idle.clear()
        self._queue.put_nowait(event)
        EVENTS_PENDING.inc()

    @property
    def pending(self) -> int:
        return self._queue.qsize() + self._in_flight

    async def _run(self) -> None:
        """Hand queued events to the producer in batches: each batch is sent without waiting
        event by event (the producer's accumulator packs them), then awaited as a whole."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_flight += len(batch)
            try:
                await self._send_until_acknowledged(batch)
            finally:
                self._in_flight -= len(batch)
                EVENTS_PENDING.dec(len(batch))
                for _ in batch:
                    self._queue.task_done()
                if self.pending == 0:
                    self._idle.set()

    async def _send_until_acknowledged(self, batch: list[CallEvent]) -> None:
        delay = 0.1
        while batch:
            deliveries = []
            for event in batch:
                try:
                    deliveries.append(
                        await self._producer.send(
                            self.topic, event.encode(), key=event.partition_key
                        )
                    )
                except KafkaError as exc:
                    deliveries.append(_failed(exc))
            results = await asyncio.gather(*deliveries, return_exceptions=True)
            failed = [
                e for e, r in zip(batch, results, strict=True) if isinstance(r, BaseException)
            ]
            EVENTS_PUBLISHED.inc(len(batch) - len(failed))
            if failed:
                PUBLISH_RETRIES.inc(len(failed))
                log.warning(
                    "%d events were not acknowledged; retrying in %.1fs", len(failed), delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            batch = failed

    async def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued event is acknowledged; False if the timeout passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            log.error("%d call events were not acknowledged before the stop", self.pending)
            return False

    async def stop(self, timeout_s: float = 30.0) -> None:
        await self.flush(timeout_s)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._producer.stop()

    async def ready(self) -> bool:
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2.0)
            return True
        except (KafkaError, OSError, TimeoutError):
            return False
