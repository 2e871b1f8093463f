"""Every alert the worker consumes into the `alerts` table, for the dashboard and SQL: a
budget's, a proxy's `provider.circuit_opened`, the analytics role's `spend.anomaly`. Written
before the alerts are handed to the webhooks, whether or not any subscribes; a redelivered
alert replaces its row (ReplacingMergeTree on the alert id)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from analytics.store.base import Store, datetime64_text
from ingest.webhooks.payload import summary
from tollway.budget_events import BudgetAlert


async def write_alerts(store: Store, alerts: Sequence[BudgetAlert]) -> int:
    rows = [
        {
            "alert_id": alert.alert_id,
            "type": alert.type,
            "fired_at": datetime64_text(alert.fired_at),
            "summary": summary(alert),
            "data": orjson.dumps(alert.model_dump(mode="json")).decode(),
        }
        for alert in alerts
        if alert.type != "webhook.test"
    ]
    if rows:
        await store.insert_rows("alerts", rows)
    return len(rows)
