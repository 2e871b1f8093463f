"""`session.expensive` as a webhook subscriber meets it: a session whose calls have cost
`sessions.alert_usd` within the last day reaches the receiver, signed, through Kafka and the
worker's dispatcher, once however often the sessions are scanned; cheaper sessions, older ones
and calls that named no session alert no one; with no threshold nothing is scanned. Real Tansu
broker, worker and chDB ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from analytics.ledger import Ledger
from analytics.migrate import migrate
from analytics.session_alerts import SessionAlerts
from tests.analytics.conftest import make_event
from tests.ingest.receiver import SECRET_ENV, signed_receiver
from tests.pipeline import eventually, listed_alerts, role_runtime
from tollway.config import load_config
from tollway.config.schema import SessionPolicy, TollwayConfig, WebhookConfig
from tollway.server import serving
from tollway.service import build_app

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
ADMIN = "tw-test-admin-sessions"


def _calls() -> list[Any]:
    """run-big: $6 over three calls; run-small: $0.50; run-old: $20, but two days ago; and $9
    that named no session."""
    start = NOW - timedelta(hours=3)
    return [
        make_event(ts=start, session_id="run-big", cost_usd=Decimal("1")),
        make_event(ts=start + timedelta(minutes=4), session_id="run-big", cost_usd=Decimal("2")),
        make_event(ts=start + timedelta(minutes=9), session_id="run-big", cost_usd=Decimal("3")),
        make_event(ts=start, session_id="run-small", cost_usd=Decimal("0.5")),
        make_event(ts=NOW - timedelta(days=2), session_id="run-old", cost_usd=Decimal("20")),
        make_event(ts=start, cost_usd=Decimal("9")),
    ]


def _config(url: str, alert_usd: str | None) -> TollwayConfig:
    hook = WebhookConfig(id="finops", url=url, secret_env=SECRET_ENV, events=["session.expensive"])  # type: ignore[list-item]
    policy = SessionPolicy(alert_usd=Decimal(alert_usd) if alert_usd else None)
    return load_config(None).model_copy(update={"webhooks": [hook], "sessions": policy})


async def test_an_expensive_session_reaches_the_webhook_once(
    kafka_bootstrap: str,
    namespace: str,
    store: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await migrate(store)
    await Ledger(store).write(_calls())
    async with signed_receiver(monkeypatch) as finops:
        runtime = role_runtime(
            kafka_bootstrap, namespace, tmp_path, {"worker", "analytics"},
            config=_config(finops.url, "5"), store=store, admin_key=ADMIN,
        )  # fmt: skip
        app = build_app(runtime)
        async with serving(app) as base:
            scanner: SessionAlerts = app.state.session_alerts
            found = await scanner.find(NOW)
            assert [(a.alert_id, a.spend_usd) for a in found] == [("session:run-big", Decimal(6))]
            await scanner.check_once(NOW)  # the scan at start may have published it already
            assert await scanner.check_once(NOW) == []  # this process publishes it once
            await finops.wait_for(1)
            entries = await eventually(
                lambda: listed_alerts(base, ADMIN, "session.expensive"),
                None,
                until=lambda listed: len(listed) == 1,
            )
            await asyncio.sleep(1.0)  # time for more deliveries, were any made
    assert len(finops.received) == 1 and len(entries) == 1
    [delivery] = finops.received
    assert delivery.headers["webhook-id"] == "session:run-big"
    assert delivery.payload is not None, delivery.error
    assert delivery.payload["data"]["summary"] == (
        "Session run-big of key k_marketing (marketing/campaigns/summarize) has cost $6.00 "
        "over 9 min, over the $5.00 a session may cost before this alert (sessions.alert_usd)"
    )
    assert entries[0]["data"]["scope"]["session_id"] == "run-big"


async def test_without_a_threshold_no_session_is_scanned(
    kafka_bootstrap: str, namespace: str, store: Any, tmp_path: Path
) -> None:
    await migrate(store)
    await Ledger(store).write(_calls())
    runtime = role_runtime(
        kafka_bootstrap, namespace, tmp_path, {"analytics"},
        config=_config("http://127.0.0.1:9/", None), store=store,
    )  # fmt: skip
    app = build_app(runtime)
    async with serving(app):
        scanner: SessionAlerts = app.state.session_alerts
        assert await scanner.find(NOW) == []
        runtime.config = _config("http://127.0.0.1:9/", "0.4")  # as a hot reload would
        found = await scanner.find(NOW)
        assert [a.alert_id for a in found] == ["session:run-big", "session:run-small"]


def test_a_threshold_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="alert_usd"):
        TollwayConfig.model_validate({"sessions": {"alert_usd": 0}})
