"""`spend.anomaly`: an hour of spend far above its scope's own baseline, recorded in the
`alerts` table and told to the webhooks that subscribe to it.

The analytics role scans the last complete hour every `TOLLWAY_ANOMALY_CHECK_S` (300 s): each business line's and each project's hourly
spend against its 24 hours before (analytics/anomalies.py), a spike being at least
`TOLLWAY_ANOMALY_ZSCORE` standard deviations (4) above the mean and at least
`TOLLWAY_ANOMALY_MIN_USD` ($1), so cents never page anyone. A spike becomes an alert on the
alerts topic, which the worker's webhook dispatcher logs and delivers like a budget's; its id
names the scope and the hour, so every scan of that hour, by any analytics replica, is one
alert. Scans run whether or not a webhook subscribes: the Overview lists the week's alerts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from aiokafka import AIOKafkaProducer

from analytics import queries
from analytics.anomalies import scan_spikes
from analytics.params import Selection
from analytics.periodic import repeating
from analytics.store.base import QueryError, Store, StoreError
from tollway.budget_events import BudgetAlert
from tollway.kafka import new_producer

EVENT: Final = "spend.anomaly"
SCOPES = ("business_line", "project")
LOOKBACK_HOURS = 24


class AnomalyAlerts:
    def __init__(
        self,
        store: Store,
        bootstrap: str,
        topic: str,
        *,
        interval_s: float = 300.0,
        zscore: float = 4.0,
        min_usd: Decimal = Decimal(1),
    ) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.topic = topic
        self.interval_s = interval_s
        self.zscore = zscore
        self.min_usd = min_usd
        self._producer: AIOKafkaProducer | None = None

    async def find(self, now: datetime) -> list[BudgetAlert]:
        """The spikes of the last complete hour before `now`, as alerts."""
        hour = queries.floor_hour(now) - timedelta(hours=1)
        alerts = []
        for dimension in SCOPES:
            scan = await scan_spikes(
                self.store,
                Selection(hour, hour + timedelta(hours=1)),
                [dimension],
                "hour",
                LOOKBACK_HOURS,
                self.zscore,
            )
            for (value,), spike in scan.spikes:
                if spike.cost_usd < self.min_usd or not value:
                    continue
                alerts.append(
                    BudgetAlert(
                        alert_id=f"anomaly:{dimension}={value}:{hour:%Y%m%dT%H}",
                        type=EVENT,
                        scope={dimension: value},
                        period="hour",
                        period_start=hour,
                        period_end=hour + timedelta(hours=1),
                        spend_usd=spike.cost_usd,
                        baseline_usd=spike.baseline_usd,
                        zscore=spike.zscore,
                        fired_at=now,
                    )
                )
        return alerts

    async def check_once(self, now: datetime | None = None) -> list[BudgetAlert]:
        """One scan, its alerts published."""
        if self._producer is None:
            raise RuntimeError("use `async with alerts.running():` first")
        alerts = await self.find(now or datetime.now(UTC))
        for alert in alerts:
            await self._producer.send(self.topic, alert.encode(), key=alert.alert_id.encode())
        await self._producer.flush()
        return alerts

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AnomalyAlerts]:
        producer = new_producer(self.bootstrap)
        await producer.start()
        self._producer = producer
        try:
            expected = (StoreError, QueryError)
            async with repeating("spend anomalies", self.check_once, self.interval_s, expected):
                yield self
        finally:
            self._producer = None
            await producer.stop()
