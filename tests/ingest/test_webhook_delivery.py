"""Webhook delivery over real HTTP into a real chDB store: signatures, retries with the same
`webhook-id`, Retry-After, dead letters, idempotency, concurrency limits, and no secret in
records or logs."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ingest.webhooks.delivery import RetryPolicy, parse_retry_after, redact_url
from ingest.webhooks.dispatcher import WebhookDispatcher, decode_alert
from ingest.webhooks.payload import summary
from ingest.webhooks.signing import Signer, WebhookSecretError, load_secret
from tollway.budget_events import BudgetAlert

from .conftest import SECRET_ENV, hook, make_alert
from .receiver import Receiver, Reply, new_secret

FAST = RetryPolicy(base_s=0.005, factor=2.0, max_s=0.05)


def _dispatcher(store, *webhooks, secret: str, **options) -> WebhookDispatcher:  # type: ignore[no-untyped-def]
    return WebhookDispatcher(
        list(webhooks), store, retry=FAST, environ={SECRET_ENV: secret}, **options
    )


async def _rows(store, webhook_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    result = await store.query(
        "SELECT attempt, outcome, http_status, error, url, event_type, payload"
        f" FROM webhook_deliveries WHERE webhook_id = '{webhook_id}' ORDER BY ts, attempt"
    )
    return result.rows


async def test_an_alert_is_delivered_once_with_a_valid_signature(ledger_store) -> None:
    secret = new_secret()
    alert = make_alert(0.8)
    async with Receiver(secret).running() as rx:
        dispatcher = _dispatcher(ledger_store, hook(rx.url), secret=secret)
        try:
            [result] = await dispatcher.dispatch(alert)
        finally:
            await dispatcher.close()

    assert result.outcome == "delivered" and result.attempts == 1 and result.http_status == 200
    [got] = rx.received
    assert got.payload is not None, got.error  # Webhook(secret).verify accepted it
    assert got.headers["webhook-id"] == alert.alert_id
    assert got.headers["content-type"] == "application/json"
    body = got.payload
    assert body["type"] == "budget.threshold_reached"
    assert body["timestamp"].startswith(alert.fired_at.strftime("%Y-%m-%dT%H:%M"))
    data = body["data"]
    assert data["alert_id"] == alert.alert_id and data["budget_id"] == "marketing-monthly"
    assert (data["spend_usd"], data["limit_usd"], data["threshold"]) == ("4012.55", "5000", 0.8)
    assert data["scope"] == {"business_line": "marketing"}
    assert data["summary"] == (
        "Budget marketing-monthly reached 80% of $5,000.00 (spent $4,012.55) for 2026-11"
    )
    rows = await _rows(ledger_store, alert.alert_id)
    assert [(r["attempt"], r["outcome"], r["http_status"]) for r in rows] == [(1, "delivered", 200)]
    assert rows[0]["event_type"] == "budget.threshold_reached"
    assert rows[0]["payload"] == got.body.decode()


async def test_retries_keep_the_webhook_id_and_honour_retry_after(ledger_store) -> None:
    secret = new_secret()
    alert = make_alert(1.0)
    script = [Reply(500), Reply(429, {"Retry-After": "0"})]
    async with Receiver(secret, script).running() as rx:
        dispatcher = _dispatcher(ledger_store, hook(rx.url, attempts=5), secret=secret)
        try:
            [result] = await dispatcher.dispatch(alert)
        finally:
            await dispatcher.close()

    assert result.outcome == "delivered" and result.attempts == 3
    assert len(rx.received) == 3 and all(r.payload is not None for r in rx.received)
    assert {r.headers["webhook-id"] for r in rx.received} == {alert.alert_id}
    assert len({r.body for r in rx.received}) == 1  # the same bytes each time
    rows = await _rows(ledger_store, alert.alert_id)
    assert [(r["attempt"], r["outcome"], r["http_status"]) for r in rows] == [
        (1, "failed", 500),
        (2, "failed", 429),
        (3, "delivered", 200),
    ]
    assert rows[0]["error"].startswith("HTTP 500")


async def test_an_endpoint_that_never_succeeds_ends_with_a_dead_record(ledger_store) -> None:
    secret = new_secret()
    alert = make_alert(0.5)
    async with Receiver(secret, default=Reply(503)).running() as rx:
        dispatcher = _dispatcher(ledger_store, hook(rx.url, attempts=4), secret=secret)
        try:
            [result] = await dispatcher.dispatch(alert)
        finally:
            await dispatcher.close()

    assert result.outcome == "dead" and result.attempts == 4 and result.http_status == 503
    assert len(rx.received) == 4
    rows = await _rows(ledger_store, alert.alert_id)
    assert [(r["attempt"], r["outcome"]) for r in rows] == [
        (1, "failed"), (2, "failed"), (3, "failed"), (4, "failed"), (4, "dead"),
    ]  # fmt: skip
    assert "gave up after 4 attempt(s): HTTP 503" in rows[-1]["error"]


async def test_unreachable_endpoints_and_410_gone_are_dead_letters(ledger_store) -> None:
    secret = new_secret()
    async with Receiver(secret, default=Reply(410)).running() as rx:
        gone_url = rx.url
        dispatcher = _dispatcher(ledger_store, hook(gone_url, attempts=5), secret=secret)
        try:
            [gone] = await dispatcher.dispatch(make_alert(0.5))
        finally:
            await dispatcher.close()
    assert (gone.outcome, gone.attempts, len(rx.received)) == ("dead", 1, 1)  # no retry of 410

    dispatcher = _dispatcher(ledger_store, hook(gone_url, attempts=2), secret=secret)
    try:  # the receiver has stopped: connection refused
        [refused] = await dispatcher.dispatch(make_alert(0.8))
    finally:
        await dispatcher.close()
    assert refused.outcome == "dead" and refused.attempts == 2 and "ConnectError" in refused.error


async def test_a_redelivered_alert_is_delivered_once(ledger_store) -> None:
    secret = new_secret()
    alert = make_alert(0.8)
    other = make_alert(0.8, budget="support-monthly")
    async with Receiver(secret, default=Reply(200, delay_s=0.2)).running() as rx:
        dispatcher = _dispatcher(ledger_store, hook(rx.url), secret=secret)
        try:
            # two copies at once (a producer retry), then the Kafka redelivery after a crash
            first, second = await asyncio.gather(
                dispatcher.dispatch(alert), dispatcher.dispatch(alert)
            )
            again = await dispatcher.dispatch(alert)
            await dispatcher.dispatch(other)
        finally:
            await dispatcher.close()
        # a new process (new dispatcher) finds the record in the store
        fresh = _dispatcher(ledger_store, hook(rx.url), secret=secret)
        try:
            [after_restart] = await fresh.dispatch(alert)
        finally:
            await fresh.close()

    assert [r.headers["webhook-id"] for r in rx.received] == [alert.alert_id, other.alert_id]
    assert first[0].outcome == second[0].outcome == "delivered"
    assert again[0].outcome == after_restart.outcome == "skipped"
    rows = await _rows(ledger_store, alert.alert_id)
    assert [r["outcome"] for r in rows] == ["delivered"]


async def test_only_subscribed_endpoints_get_an_alert_and_each_gets_it(ledger_store) -> None:
    secret = new_secret()
    async with Receiver(secret).running() as a, Receiver(secret).running() as b:
        dispatcher = _dispatcher(
            ledger_store,
            hook(a.url, id="a"),
            hook(b.url, id="b").model_copy(update={"events": ["budget.exceeded"]}),
            secret=secret,
        )
        try:
            await dispatcher.dispatch(make_alert(0.8))  # threshold_reached: only a
            await dispatcher.dispatch(make_alert(1.0))  # exceeded: both
        finally:
            await dispatcher.close()
    assert [r.payload["type"] for r in a.received] == [
        "budget.threshold_reached",
        "budget.exceeded",
    ]
    assert [r.payload["type"] for r in b.received] == ["budget.exceeded"]
    assert b.received[0].payload["data"]["summary"] == (
        "Budget marketing-monthly exceeded its limit of $5,000.00 (spent $4,012.55, 80%)"
        " for 2026-11; action: block"
    )


async def test_the_concurrency_limit_is_per_endpoint(ledger_store) -> None:
    secret = new_secret()
    async with Receiver(secret, default=Reply(200, delay_s=0.15)).running() as rx:
        dispatcher = _dispatcher(ledger_store, hook(rx.url, max_concurrency=2), secret=secret)
        try:
            alerts = [make_alert(0.8, budget=f"b{i}") for i in range(6)]
            results = await asyncio.gather(*(dispatcher.dispatch(a) for a in alerts))
        finally:
            await dispatcher.close()
    assert all(r[0].outcome == "delivered" for r in results)
    assert len(rx.received) == 6 and rx.max_in_flight == 2


async def test_the_secret_never_appears_in_records_or_logs(
    ledger_store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    whsec = new_secret()
    raw = "correct-horse-battery-staple-raw-secret"
    secrets = [whsec, whsec.removeprefix("whsec_"), raw]
    script = [Reply(500), Reply(429, {"Retry-After": "0"})]
    async with (
        Receiver(whsec, script).running() as a,
        Receiver(raw.encode(), default=Reply(502)).running() as b,
    ):
        dispatcher = WebhookDispatcher(
            [
                hook(a.url, id="a"),
                hook(b.url, id="b").model_copy(update={"secret_env": "RAW_SECRET"}),
            ],
            ledger_store,
            retry=FAST,
            environ={SECRET_ENV: whsec, "RAW_SECRET": raw},
        )
        try:
            results = await dispatcher.dispatch(make_alert(0.8))
            test = await dispatcher.send_test("b")
        finally:
            await dispatcher.close()
        for name, value in ((SECRET_ENV, whsec), ("RAW_SECRET", raw)):
            assert value not in repr(dispatcher.endpoints) and name  # reprs hide the key

    assert sorted(r.outcome for r in results) == ["dead", "delivered"]
    assert test.outcome == "dead"
    assert b.received and all(r.payload is not None for r in b.received)  # raw key verifies
    dump = await ledger_store.query("SELECT * FROM webhook_deliveries FORMAT JSON")
    text = str(dump.rows)
    assert len(dump.rows) >= 9
    for secret in secrets:
        assert secret not in text
        assert secret not in caplog.text
    assert "attempt 1 failed" in caplog.text  # the logs did run


def test_secrets_from_the_environment() -> None:
    key = b"0123456789abcdef0123"
    whsec = "whsec_" + base64.b64encode(key).decode()
    assert load_secret("S", {"S": whsec}) == key
    assert load_secret("S", {"S": whsec.rstrip("=")}) == key  # unpadded base64 too
    assert load_secret("S", {"S": "plain text"}) == b"plain text"
    with pytest.raises(WebhookSecretError, match="S is not set"):
        load_secret("S", {})
    with pytest.raises(WebhookSecretError) as bad:
        load_secret("S", {"S": "whsec_not*base64!"})
    assert "not*base64" not in str(bad.value)
    with pytest.raises(WebhookSecretError, match="webhook ops: environment variable"):
        WebhookDispatcher([hook("http://127.0.0.1:9/x")], store=None, environ={})  # type: ignore[arg-type]

    signer = Signer(key)
    moment = datetime.now(UTC)
    headers = signer.sign("msg_1", moment, b'{"a":1}')
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(moment.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert "0123456789" not in repr(signer)


def test_backoff_has_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(base_s=1.0, factor=2.0, max_s=10.0, max_retry_after_s=60)
    rng = random.Random(7)
    for failed, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 10.0)):
        draws = [policy.delay(failed, None, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8 and min(draws) < ceiling * 0.2
    assert policy.delay(3, 0.0, rng) == 0.0
    assert policy.delay(3, 30.0, rng) == 30.0
    assert policy.delay(3, 3600.0, rng) == 60  # capped
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert (
        parse_retry_after((now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT"), now)
        == 90
    )
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_summaries_and_decoding() -> None:
    alert = make_alert(0.8)
    assert decode_alert(alert.encode()) == alert
    for bad in (
        b"",
        b"{nope",
        b'{"alert_id": "x"}',
        b'{"alert_id":"x","type":"nope","budget_id":"b"}',
    ):
        with pytest.raises(ValueError):
            decode_alert(bad)
    quarterly = alert.model_copy(update={"period": "quarterly", "timezone": "Europe/Paris"})
    assert summary(quarterly).endswith("for 2026-Q4")
    forecast = BudgetAlert(
        alert_id="f", type="budget.forecast_breach", budget_id="ops", period="total",
        limit_usd=alert.limit_usd, spend_usd=alert.spend_usd, forecast_usd=alert.spend_usd * 2,
    )  # fmt: skip
    assert summary(forecast) == (
        "Budget ops is forecast to reach $8,025.10 of its $5,000.00 limit (spent $4,012.55 so far)"
    )
    assert (
        redact_url("https://user:pw@hooks.example.com/x?y=1") == "https://hooks.example.com/x?y=1"
    )
    circuit = BudgetAlert(
        alert_id="c", type="provider.circuit_opened", provider="openai", model="gpt-4o",
        failures=5, error="openai: HTTP 503",
    )  # fmt: skip
    assert summary(circuit) == (
        "Circuit opened for gpt-4o on openai after 5 consecutive failures: calls go to their "
        "fallbacks until a probe succeeds (last error: openai: HTTP 503)"
    )
    spike = BudgetAlert(
        alert_id="a", type="spend.anomaly", scope={"project": "seo"},
        period_start=datetime(2026, 11, 27, 9, tzinfo=UTC), spend_usd=Decimal("42.5"),
        baseline_usd=Decimal("3.1"), zscore=12.4,
    )  # fmt: skip
    assert summary(spike) == (
        "Spend anomaly: project seo spent $42.50 in the hour from 2026-11-27 09:00 UTC, "
        "12.4 standard deviations above its usual $3.10"
    )
    assert decode_alert(spike.encode()) == spike


async def test_submit_does_not_block_and_acks_when_the_sequence_ends(ledger_store) -> None:
    """What the Faust agent relies on: `submit` returns at once, the ack comes after the
    delivery sequence ended, and an alert cut short by `close` is never acked (replayed)."""
    secret = new_secret()
    acked: list[str] = []

    def acker(name: str):  # type: ignore[no-untyped-def]
        async def ack() -> None:
            acked.append(name)

        return ack

    async with (
        Receiver(secret, default=Reply(200, delay_s=0.6)).running() as slow,
        Receiver(secret).running() as fast,
        Receiver(secret, default=Reply(200, delay_s=2)).running() as stuck,
    ):
        dispatcher = _dispatcher(
            ledger_store,
            hook(slow.url, id="slow").model_copy(update={"events": ["budget.exceeded"]}),
            hook(fast.url, id="fast").model_copy(update={"events": ["budget.threshold_reached"]}),
            hook(stuck.url, id="stuck").model_copy(update={"events": ["budget.forecast_breach"]}),
            secret=secret,
            close_grace_s=0.2,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        await dispatcher.submit(make_alert(1.0), acker("slow"))
        await dispatcher.submit(make_alert(0.8), acker("fast"))
        forecast = make_alert(0.8).model_copy(
            update={"alert_id": "forecast", "type": "budget.forecast_breach"}
        )
        await dispatcher.submit(forecast, acker("stuck"))
        assert loop.time() - started < 0.3  # the agent is free to read on
        while len(acked) < 2 and loop.time() - started < 10:
            await asyncio.sleep(0.02)
        await dispatcher.close()
    assert acked == ["fast", "slow"]  # "stuck" was cancelled at close: left for a replay
    assert len(slow.received) == len(fast.received) == len(stuck.received) == 1
