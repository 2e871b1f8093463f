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

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from analytics import queries
from analytics.alert_scans import AlertScan
from analytics.anomalies import scan_spikes
from analytics.params import Selection
from analytics.store.base import Store
from tollway.budget_events import BudgetAlert

EVENT: Final = "spend.anomaly"
SCOPES = ("business_line", "project")
LOOKBACK_HOURS = 24


class AnomalyAlerts(AlertScan):
    what = "spend anomalies"

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
        super().__init__(store, bootstrap, topic, interval_s)
        self.zscore = zscore
        self.min_usd = min_usd

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
