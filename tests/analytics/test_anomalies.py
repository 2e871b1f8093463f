"""GET /v1/analytics/anomalies finds a planted spend spike and nothing in steady spend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from analytics.ledger import Ledger
from analytics.store import ChdbStore
from tests.analytics.conftest import make_event
from tests.analytics.seed import FINOPS_KEY, analytics_app

SPIKE_DAY = datetime(2025, 4, 20, tzinfo=UTC)


def _steady_spend_with_a_spike() -> list:
    events = []
    for day in range(30):  # 2025-03-22 .. 2025-04-20
        ts = SPIKE_DAY - timedelta(days=29 - day) + timedelta(hours=10)
        for project, usd in (("campaigns", Decimal("1.00")), ("seo", Decimal("0.50"))):
            wobble = Decimal("0.05") * (day % 3)  # some normal variation
            cost = usd + wobble
            if project == "seo" and ts.date() == SPIKE_DAY.date():
                cost = Decimal("5.00")  # the planted spike: 10x the usual
            events.append(make_event(ts=ts, project=project, cost_usd=cost))
    return events


async def test_planted_spike_is_found(ledger_store: ChdbStore) -> None:
    await Ledger(ledger_store).write(_steady_spend_with_a_spike())
    app = analytics_app(ledger_store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://tollway.test",
        headers={"Authorization": f"Bearer {FINOPS_KEY}"},
    ) as client:
        response = await client.get(
            "/v1/analytics/anomalies",
            params={
                "granularity": "day",
                "group_by": "project",
                "lookback": 14,
                "threshold": 3,
                "start": "2025-04-10",
                "end": "2025-04-21",
            },
        )
        assert response.status_code == 200, response.text
        anomalies = response.json()["anomalies"]
        assert len(anomalies) == 1
        spike = anomalies[0]
        assert spike["bucket"] == "2025-04-20T00:00:00Z" and spike["project"] == "seo"
        assert spike["cost_usd"] == "5"
        assert Decimal("0.5") <= Decimal(spike["baseline_usd"]) <= Decimal("0.6")
        assert spike["zscore"] > 3

        # a total across projects also sees it, but a high threshold does not
        response = await client.get(
            "/v1/analytics/anomalies",
            params={"start": "2025-04-10", "end": "2025-04-21", "threshold": 50},
        )
        assert response.json()["anomalies"] == []
