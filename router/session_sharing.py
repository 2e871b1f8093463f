"""Proxy replicas share what each session has cost them, so a session's limit
(router/session_spend.py) holds across all of them.

Each gateway process publishes its own spend per session on the compacted
`tollway.session-spend.v1` (message key `instance:session`), at most every `interval_s`
(100 ms) while it changes, and follows the others' on the budget gate's consumer. Once a
minute it forgets the sessions idle for `sessions.idle_hours` and deletes its records of them
(a tombstone each), so the topic holds only live sessions. Sharing never slows or fails a
call: sends are not awaited, and a broker outage only leaves each replica counting on its own
(logged once).
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
from router.session_spend import SessionSpend, SessionSpendRecord

log = logging.getLogger(__name__)

#: a session's spend is published at most this often while it changes
PUBLISH_INTERVAL_S = 0.1
#: how often idle sessions are forgotten
FORGET_EVERY_S = 60.0


class SessionSpendPublisher:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        spend: SessionSpend,
        interval_s: float = PUBLISH_INTERVAL_S,
        forget_every_s: float = FORGET_EVERY_S,
    ) -> None:
        self.topic = topic
        self.spend = spend
        self.interval_s = interval_s
        self.forget_every_s = forget_every_s
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self.sender = BestEffortProducer(bootstrap, "session spend")
        self._task: asyncio.Task[None] | None = None
        spend.on_change = self.changed

    def changed(self, session_id: str) -> None:
        """Called by the tally on every priced call in a session: only marks it."""
        self._dirty.add(session_id)
        self._wake.set()

    def on_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """A peer's spend in a session, or its deletion, from the shared follower."""
        if record.value is None:
            if record.key is not None:
                self.spend.forget(record.key.decode(errors="replace"))
            return
        try:
            self.spend.apply(SessionSpendRecord.model_validate(orjson.loads(record.value)))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("skipping an invalid session-spend record: %s", exc)

    async def start(self) -> None:
        if await self.sender.start():  # without it each replica still caps what it serves
            self._task = asyncio.create_task(self._run(), name="tollway-session-spend")

    async def _run(self) -> None:
        forgotten = time.monotonic()
        while True:
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.forget_every_s)
                self._wake.clear()
                await self.publish_due()
                if time.monotonic() - forgotten >= self.forget_every_s:
                    forgotten = time.monotonic()
                    await self.forget_idle()
                await asyncio.sleep(self.interval_s)  # coalesce what changes meanwhile
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive any surprise
                log.exception("publishing session spend failed; going on")
                await asyncio.sleep(1.0)

    async def publish_due(self) -> None:
        due, self._dirty = self._dirty, set()
        for session_id in due:
            record = self.spend.record(session_id)
            if record is not None:
                await self.sender.send(self.topic, record.encode(), record.key.encode())

    async def forget_idle(self) -> None:
        for session_id in self.spend.forget_idle():
            key = f"{self.spend.instance_id}:{session_id}"
            await self.sender.send(self.topic, None, key.encode())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self.publish_due()  # the last calls' spend, for the replicas that go on
        await self.sender.stop()
