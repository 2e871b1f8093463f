"""Webhooks end to end: a BudgetAlert published on the real Tansu broker reaches a real
receiver through the worker's Faust agent; `tollway webhooks test|list` as subprocesses."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from analytics.ledger import Ledger
from ingest.webhooks.signing import WebhookSecretError
from ingest.worker import LedgerWorker
from tests.pipeline import role_runtime
from tollway.config import load_config
from tollway.config.schema import TollwayConfig
from tollway.kafka import new_producer
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings
from tollway.topics import Topics

from .conftest import SECRET_ENV, hook, make_alert
from .receiver import Receiver, new_secret

pytestmark = pytest.mark.integration

ADMIN = "tw-test-admin-webhooks"


def _runtime(bootstrap: str, namespace: str, tmp_path: Path, store, url: str) -> Runtime:  # type: ignore[no-untyped-def]
    config: TollwayConfig = load_config(None).model_copy(update={"webhooks": [hook(url, id="rx")]})
    settings = Settings(
        topic_namespace=namespace,
        data_dir=tmp_path,
        kafka_session_timeout_s=3.0,
        sink_batch_seconds=0.2,
    )
    return Runtime(
        settings=settings,
        config=config,
        bootstrap=bootstrap,
        roles=frozenset({"worker", "analytics"}),
        store=store,
        admin_key=ADMIN,
    )


async def _count(store, sql: str) -> int:  # type: ignore[no-untyped-def]
    return int((await store.query(sql)).rows[0]["n"])


async def _logged(caplog: pytest.LogCaptureFixture, text: str, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while text not in caplog.text and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return text in caplog.text


async def test_an_alert_on_the_topic_reaches_the_receiver_once(
    kafka_bootstrap: str,
    namespace: str,
    store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ingest.webhooks")
    secret = new_secret()
    monkeypatch.setenv(SECRET_ENV, secret)
    alert = make_alert(0.8)
    topic = Topics(namespace).budget_alerts
    async with (
        Receiver(secret).running() as rx,
        serving(build_app(_runtime(kafka_bootstrap, namespace, tmp_path, store, rx.url))),
    ):
        producer = new_producer(kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"{not an alert", key=b"junk")
            await producer.send_and_wait(topic, alert.encode(), key=alert.alert_id.encode())
            await rx.wait_for(1)
            # the same alert again, as a redelivery would bring it
            await producer.send_and_wait(topic, alert.encode(), key=alert.alert_id.encode())
            assert await _logged(caplog, "was already delivered; skipped")
        finally:
            await producer.stop()

    [got] = rx.received
    assert got.payload is not None, got.error
    assert got.headers["webhook-id"] == alert.alert_id
    assert "skipping a message that is not a BudgetAlert" in caplog.text
    assert secret not in caplog.text
    assert got.payload["type"] == "budget.threshold_reached"
    assert got.payload["data"]["summary"].startswith("Budget marketing-monthly reached 80%")
    delivered = (
        "SELECT count() AS n FROM webhook_deliveries"
        f" WHERE webhook_id = '{alert.alert_id}' AND outcome = 'delivered'"
    )
    assert await _count(store, delivered) == 1


async def test_webhooks_follow_the_reloaded_file(
    kafka_bootstrap: str,
    namespace: str,
    store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker started without webhooks delivers to one added to tollway.yaml, then to its
    new URL; a webhook whose secret variable is unset is not applied (logged), and the
    previous webhooks keep working."""
    from tollway.config.loader import dump_config

    secret = new_secret()
    monkeypatch.setenv(SECRET_ENV, secret)
    path = tmp_path / "tollway.yaml"
    config = load_config(None)
    path.write_text(dump_config(config, defaults=False))
    runtime = role_runtime(
        kafka_bootstrap, namespace, tmp_path, {"worker", "analytics"}, config_file=path,
        store=store,
    )  # fmt: skip
    app = build_app(runtime)
    topic = Topics(namespace).budget_alerts

    async def reloaded(webhooks: list[Any]) -> None:
        path.write_text(dump_config(config.model_copy(update={"webhooks": webhooks})))
        deadline = time.monotonic() + 20
        while runtime.config.webhooks != load_config(path).webhooks:
            assert time.monotonic() < deadline, "the reload never came"
            await asyncio.sleep(0.05)

    async with (
        Receiver(secret).running() as first,
        Receiver(secret).running() as second,
        serving(app),
    ):
        producer = new_producer(kafka_bootstrap)
        await producer.start()
        try:
            await reloaded([hook(first.url, id="rx")])
            alert = make_alert(0.8)
            await producer.send_and_wait(topic, alert.encode(), key=alert.alert_id.encode())
            await first.wait_for(1)

            await reloaded([hook(second.url, id="rx")])
            moved = make_alert(0.9)
            await producer.send_and_wait(topic, moved.encode(), key=moved.alert_id.encode())
            await second.wait_for(1)

            unset = hook(first.url, id="broken").model_copy(update={"secret_env": "UNSET_SECRET"})
            await reloaded([hook(second.url, id="rx"), unset])
            assert await _logged(caplog, "the reloaded webhooks are not applied")
            kept = make_alert(1.0)
            await producer.send_and_wait(topic, kept.encode(), key=kept.alert_id.encode())
            await second.wait_for(2)
        finally:
            await producer.stop()
    assert [r.headers["webhook-id"] for r in first.received] == [alert.alert_id]
    assert [r.headers["webhook-id"] for r in second.received] == [moved.alert_id, kept.alert_id]


async def test_a_missing_secret_stops_the_worker_at_start_up(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    runtime = _runtime(kafka_bootstrap, namespace, tmp_path, store, "http://127.0.0.1:9/hook")
    with pytest.raises(WebhookSecretError, match=f"webhook rx: environment variable {SECRET_ENV}"):
        LedgerWorker(runtime.settings, kafka_bootstrap, Ledger(store), runtime.config)


async def _tollway(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tollway.cli.main", "webhooks", *args,
        env={**os.environ, "TOLLWAY_ADMIN_KEY": ADMIN, "COLUMNS": "200", **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_the_cli_sends_a_signed_test_event(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = new_secret()
    monkeypatch.setenv(SECRET_ENV, secret)
    async with Receiver(secret).running() as rx:
        runtime = _runtime(kafka_bootstrap, namespace, tmp_path, store, rx.url)
        async with serving(build_app(runtime)) as base:
            started = time.monotonic()
            code, output = await _tollway("test", "rx", "--url", base)
            assert code == 0, output
            assert "delivered" in output and "HTTP 200" in output
            assert time.monotonic() - started < 30

            code, output = await _tollway("test", "nope", "--url", base)
            assert code == 1 and "unknown webhook 'nope'" in output and "rx" in output

            code, output = await _tollway("test", "rx", "--url", base, "--key", "tw-wrong")
            assert code == 1 and "invalid API key" in output

    [got] = rx.received
    assert got.payload is not None, got.error
    assert got.payload["type"] == "webhook.test"
    assert got.headers["webhook-id"].startswith("test:rx:")
    rows = await store.query("SELECT event_type, outcome FROM webhook_deliveries")
    assert rows.rows == [{"event_type": "webhook.test", "outcome": "delivered"}]


async def test_the_cli_lists_endpoints_without_secrets(tmp_path: Path) -> None:
    config = tmp_path / "tollway.yaml"
    config.write_text(
        "webhooks:\n"
        "  - {id: ops, url: 'https://bot:hunter2@hooks.example.com/tollway', secret_env: OPS_SECRET,"
        " events: [budget.exceeded]}\n"
        "  - {url: 'https://chat.example.com/in', secret_env: CHAT_SECRET,"
        " events: [budget.threshold_reached, budget.exceeded]}\n"
    )
    secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
    code, output = await _tollway("list", "--config", str(config), env={"OPS_SECRET": secret})
    assert code == 0, output
    assert "ops" in output and "https://hooks.example.com/tollway" in output
    assert "wh-2" in output and "budget.threshold_reached" in output
    assert "OPS_SECRET (set)" in output and "CHAT_SECRET (not set)" in output
    assert secret not in output and "hunter2" not in output
