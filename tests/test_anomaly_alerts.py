"""`spend.anomaly` as a webhook subscriber meets it: a project's hour of spend far above its
previous day reaches the receiver, signed, through Kafka and the worker's dispatcher, once
however often the hour is scanned; a spike of cents alerts no one, and
an anomaly nobody subscribes to is still listed in the alerts table.
Real Tansu broker, worker and chDB ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from analytics.anomaly_alerts import AnomalyAlerts
from analytics.ledger import Ledger
from analytics.migrate import migrate
from tests.analytics.conftest import make_event
from tests.ingest.receiver import SECRET_ENV, signed_receiver
from tests.pipeline import eventually, listed_alerts, role_runtime
from tollway.config import load_config
from tollway.config.schema import TollwayConfig, WebhookConfig
from tollway.server import serving
from tollway.service import build_app

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(minute=20, second=0, microsecond=0)
ADMIN = "tw-test-admin-anomalies"
LAST_HOUR = NOW.replace(minute=0) - timedelta(hours=1)


def _history() -> list[Any]:
    """24 quiet hours for two projects, then one hour of $42 on seo and of 5 cents on ads."""
    events = []
    for hours_before in range(1, 25):
        at = LAST_HOUR - timedelta(hours=hours_before) + timedelta(minutes=5)
        events += [
            make_event(ts=at, project="seo", cost_usd=Decimal("0.10")),
            make_event(ts=at, project="ads", cost_usd=Decimal("0.001")),
        ]
    spike = LAST_HOUR + timedelta(minutes=10)
    events += [
        make_event(ts=spike, project="seo", cost_usd=Decimal("42")),
        make_event(ts=spike, project="ads", cost_usd=Decimal("0.05")),
    ]
    return events


def _config(url: str, events: list[str]) -> TollwayConfig:
    hook = WebhookConfig(id="finops", url=url, secret_env=SECRET_ENV, events=events)  # type: ignore[arg-type]
    return load_config(None).model_copy(update={"webhooks": [hook]})


async def test_an_hour_far_above_its_baseline_reaches_the_webhook_once(
    kafka_bootstrap: str,
    namespace: str,
    store: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await migrate(store)
    await Ledger(store).write(_history())
    async with signed_receiver(monkeypatch) as finops:
        runtime = role_runtime(
            kafka_bootstrap, namespace, tmp_path, {"worker", "analytics"},
            config=_config(finops.url, ["spend.anomaly"]), store=store,
        )  # fmt: skip
        app = build_app(runtime)
        async with serving(app):
            scanner: AnomalyAlerts = app.state.anomaly_alerts
            first = await scanner.check_once(NOW)
            again = await scanner.check_once(NOW + timedelta(minutes=5))  # the next round
            assert [a.alert_id for a in first] == [a.alert_id for a in again]
            # the business line spiked with its project; the cents on ads did not count
            assert [(a.scope, a.spend_usd) for a in first] == [
                ({"business_line": "marketing"}, Decimal("42.05")),
                ({"project": "seo"}, Decimal(42)),
            ]
            await finops.wait_for(2)
            await asyncio.sleep(1.0)  # time for more deliveries, were any made
    assert len(finops.received) == 2
    got = {r.headers["webhook-id"]: r for r in finops.received}
    seo = got[f"anomaly:project=seo:{LAST_HOUR:%Y%m%dT%H}"]
    assert seo.payload is not None, seo.error
    assert seo.payload["type"] == "spend.anomaly"
    assert seo.payload["data"]["summary"].startswith(
        f"Spend anomaly: project seo spent $42.00 in the hour from {LAST_HOUR:%Y-%m-%d %H}:00 UTC"
    )


async def test_an_anomaly_nobody_subscribes_to_is_still_listed(
    kafka_bootstrap: str,
    namespace: str,
    store: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await migrate(store)
    await Ledger(store).write(_history())
    async with signed_receiver(monkeypatch) as finops:
        runtime = role_runtime(
            kafka_bootstrap, namespace, tmp_path, {"worker", "analytics"},
            config=_config(finops.url, ["budget.exceeded"]), store=store, admin_key=ADMIN,
        )  # fmt: skip
        app = build_app(runtime)
        async with serving(app) as base:
            scanner: AnomalyAlerts = app.state.anomaly_alerts
            assert len(await scanner.check_once(NOW)) == 2

            def listed() -> Awaitable[list[dict[str, Any]]]:
                return listed_alerts(base, ADMIN, "spend.anomaly")

            entries = await eventually(listed, None, until=lambda found: len(found) == 2)
            await asyncio.sleep(0.5)  # time for a delivery, were one made
    scopes = sorted(tuple(entry["data"]["scope"].items()) for entry in entries)
    assert scopes == [(("business_line", "marketing"),), (("project", "seo"),)]
    assert finops.received == []  # its webhook wants budget.exceeded only
