"""Proxy replicas share their per-key rate counts, so a key's limit holds across all of them
(and their models' provider quota counts, under `#model:<name>`: router/model_quotas.py).

Each gateway process publishes its own counts per key and minute window on the compacted
`tollway.rate-usage.v1` (message key `instance:key`), at most every `interval_s` (100 ms) while
they change, and follows the others' on the budget gate's consumer (one fetch every 50 ms
for both). A burst spread over replicas overshoots a limit by what the others admit within one
publish interval plus a record's trip through the broker. A minute's counts need no expiry:
they count only for their own window and the next, so a dead instance's counts age out within
two minutes. Its calls in flight are different — they count as long as they last — so a key
with calls in flight is re-sent every 3 s, and a count older than 15 s stops counting
(router/calls_in_flight.py); a key under `max_parallel_requests` is published as soon as its
calls in flight change, not after the 100 ms pause, as a slot comes free and is taken again
within milliseconds. Sharing never slows or fails a call: sends are not awaited, and a broker
outage only leaves each replica counting on its own (logged once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from router.best_effort import BestEffortProducer
from router.calls_in_flight import REFRESH_S
from router.rate_limits import RateLimiter, RateUsage

log = logging.getLogger(__name__)

#: a key's counts are published at most this often while they change
PUBLISH_INTERVAL_S = 0.1


class RatePublisher:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        limiter: RateLimiter,
        interval_s: float = PUBLISH_INTERVAL_S,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.limiter = limiter
        self.interval_s = interval_s
        self.refresh_s = refresh_s
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()  # a change to calls in flight under a limit
        self.sender = BestEffortProducer(bootstrap, "rate limit counts")
        self._task: asyncio.Task[None] | None = None
        limiter.on_change = self.changed

    def changed(self, key_id: str) -> None:
        """Called by the limiter on every change: only marks the key (the task sends)."""
        self._dirty.add(key_id)
        self._wake.set()
        if self.limiter.calls.limited(key_id):
            self._urgent.set()

    def on_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """A peer's counts, from the shared follower."""
        if record.value is None:
            return
        try:
            self.limiter.apply(RateUsage.model_validate(orjson.loads(record.value)))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("skipping an invalid rate-usage record: %s", exc)

    async def start(self) -> None:
        if await self.sender.start():  # without it the limits still hold per replica
            self._task = asyncio.create_task(self._run(), name="tollway-rate-usage")

    async def _run(self) -> None:
        refreshed = time.monotonic()
        while True:
            try:
                wait = refreshed + self.refresh_s - time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, wait))
                self._wake.clear()
                if time.monotonic() - refreshed >= self.refresh_s:
                    self._dirty.update(self.limiter.calls.busy())  # slots held: still alive
                    refreshed = time.monotonic()
                await self.publish_due()
                if not self._urgent.is_set():  # coalesce what changes meanwhile
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._urgent.wait(), self.interval_s)
                self._urgent.clear()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive any surprise
                log.exception("publishing rate counts failed; going on")
                await asyncio.sleep(1.0)

    async def publish_due(self) -> None:
        due, self._dirty = self._dirty, set()
        for key_id in due:
            usage = self.limiter.usage(key_id)
            if usage is not None:
                await self.sender.send(self.topic, usage.encode(), usage.key.encode())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.sender.stop()
