"""Records the proxies may lose: what each instance tells the others about itself (budget holds,
rate-limit counts, session spend). Sending never slows or fails a call: a record is handed to the producer and
not waited for, and a broker outage only makes records late or lost — logged once when it
starts and once when it ends, not once a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from aiokafka import AIOKafkaProducer

from tollway.kafka import new_producer

log = logging.getLogger(__name__)


class Sharing(Protocol):
    """What keeps the other replicas informed of one replica's counts (rate_sharing.py,
    session_sharing.py): started and stopped with the gateway."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class BestEffortProducer:
    def __init__(self, bootstrap: str, what: str) -> None:
        """`what`: the records, as the log names them ("budget holds")."""
        self.bootstrap = bootstrap
        self.what = what
        self._producer: AIOKafkaProducer | None = None
        self._failing = False

    async def start(self) -> bool:
        """False without a broker at start-up: the caller runs alone (logged)."""
        producer = new_producer(self.bootstrap, linger_ms=0)
        try:
            await producer.start()
        except Exception as exc:
            log.warning("%s will not be shared (no producer): %s", self.what, exc)
            return False
        self._producer = producer
        return True

    async def send(self, topic: str, value: bytes | None, key: bytes) -> None:
        if self._producer is None:
            return
        try:
            delivery = await self._producer.send(topic, value, key=key)
        except Exception as exc:  # the broker is away: this record is dropped, the next is sent
            self._failed(exc)
            return
        delivery.add_done_callback(self._delivered)

    def _delivered(self, delivery: asyncio.Future[object]) -> None:
        if delivery.cancelled():
            return
        if (exc := delivery.exception()) is not None:
            self._failed(exc)
        elif self._failing:
            self._failing = False
            log.warning("%s are shared again", self.what)

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning("%s cannot be shared for now (%s); calls are unaffected", self.what, exc)

    async def stop(self) -> None:
        if self._producer:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), 5.0)
