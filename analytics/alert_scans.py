"""An alert scan: a question the analytics role asks the ledger again and again, each answer's
alerts published on the alerts topic (which the worker logs in `alerts` and delivers to the
webhooks that subscribe). `spend.anomaly` (analytics/anomaly_alerts.py) and
`session.expensive` (analytics/session_alerts.py) are the two; each says what it `find`s."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Self

from aiokafka import AIOKafkaProducer

from analytics.periodic import repeating
from analytics.store.base import QueryError, Store, StoreError
from tollway.budget_events import BudgetAlert
from tollway.kafka import new_producer


class AlertScan:
    #: what the scan is, for the log line of a round that failed
    what = "alert scan"

    def __init__(self, store: Store, bootstrap: str, topic: str, interval_s: float) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.topic = topic
        self.interval_s = interval_s
        self._producer: AIOKafkaProducer | None = None

    async def find(self, now: datetime) -> list[BudgetAlert]:
        """The alerts the ledger holds as of `now`."""
        raise NotImplementedError

    async def new_alerts(self, now: datetime) -> list[BudgetAlert]:
        """What a round publishes: by default all it finds (the dispatcher delivers an alert
        id once, however often it is published)."""
        return await self.find(now)

    def published(self, alerts: list[BudgetAlert]) -> None:
        """Told what a round published, once the broker has it."""

    async def check_once(self, now: datetime | None = None) -> list[BudgetAlert]:
        """One round; the alerts it published."""
        if self._producer is None:
            raise RuntimeError("use `async with scan.running():` first")
        alerts = await self.new_alerts(now or datetime.now(UTC))
        for alert in alerts:
            await self._producer.send(self.topic, alert.encode(), key=alert.alert_id.encode())
        await self._producer.flush()
        self.published(alerts)
        return alerts

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Self]:
        """A round at once, then one every `interval_s`, until the block ends."""
        producer = new_producer(self.bootstrap)
        await producer.start()
        self._producer = producer
        try:
            expected = (StoreError, QueryError)
            async with repeating(self.what, self.check_once, self.interval_s, expected):
                yield self
        finally:
            self._producer = None
            await producer.stop()
