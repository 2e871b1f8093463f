"""`provider.circuit_opened` as a webhook subscriber meets it: calls to a failing model open its
circuit in the proxy, and the alert reaches the receiver signed, through Kafka and the worker's
dispatcher, once; a failed probe reopening the circuit raises no second alert; the alert is
listed by `GET /v1/analytics/alerts`. Real Tansu broker, worker and chDB ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.ingest.receiver import SECRET_ENV, signed_receiver
from tests.pipeline import eventually, listed_alerts, role_runtime
from tollway.config import load_config
from tollway.config.schema import KeyConfig, TollwayConfig
from tollway.ids import hash_key, new_key_secret
from tollway.server import serving
from tollway.service import build_app

pytestmark = pytest.mark.integration

SECRET = new_key_secret()
ADMIN = "tw-test-admin-circuits"
HELLO = [{"role": "user", "content": "Say hello."}]


def _config(url: str) -> TollwayConfig:
    config = load_config(None).model_dump(mode="json", exclude_none=True)
    config["providers"].append(
        {"name": "flaky", "type": "sim", "sim": {"error_rate": 1.0}, "max_retries": 0,
         "breaker_failures": 2, "breaker_cooldown_s": 0.3}
    )  # fmt: skip
    config["models"].append(
        {"name": "flaky-mini", "provider": "flaky", "input_per_mtok": 1, "output_per_mtok": 2}
    )
    config["webhooks"] = [
        {
            "id": "oncall",
            "url": url,
            "secret_env": SECRET_ENV,
            "events": ["provider.circuit_opened"],
        }
    ]
    return TollwayConfig.model_validate(config)


async def test_an_opened_circuit_reaches_the_webhook_once(
    kafka_bootstrap: str,
    namespace: str,
    store: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = KeyConfig(id="k_circuits", hash=hash_key(SECRET), business_line="support")
    async with signed_receiver(monkeypatch) as oncall:
        runtime = role_runtime(
            kafka_bootstrap, namespace, tmp_path, {"proxy", "worker", "analytics"},
            config=_config(oncall.url), store=store, extra_keys=[key], admin_key=ADMIN,
        )  # fmt: skip
        async with serving(build_app(runtime)) as base:
            client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=SECRET, max_retries=0)
            statuses = []
            for _ in range(3):
                try:
                    await client.chat.completions.create(model="flaky-mini", messages=HELLO)  # type: ignore[arg-type]
                except openai.APIStatusError as exc:
                    statuses.append(exc.status_code)
            assert statuses == [502, 502, 503]  # two failures open it; then it is skipped
            await asyncio.sleep(0.4)  # past the cool-down: the probe fails and reopens it
            with pytest.raises(openai.APIStatusError):
                await client.chat.completions.create(model="flaky-mini", messages=HELLO)  # type: ignore[arg-type]

            [got] = await oncall.wait_for(1)
            await asyncio.sleep(1.0)  # time for a second alert, were one sent

            # and the alert is in the alerts table, for the dashboard and SQL
            def listed() -> Awaitable[list[dict[str, Any]]]:
                return listed_alerts(base, ADMIN, "provider.circuit_opened")

            [entry] = await eventually(listed, None, until=bool)
            assert entry["summary"].startswith("Circuit opened for flaky-mini on flaky")
            assert (entry["data"]["model"], entry["data"]["failures"]) == ("flaky-mini", 2)
            async with httpx.AsyncClient() as http:
                bad = await http.get(
                    f"{base}/v1/analytics/alerts", params={"type": "circuit.nope"},
                    headers={"authorization": f"Bearer {ADMIN}"},
                )  # fmt: skip
            assert bad.status_code == 400 and "circuit.nope" in bad.text
    assert len(oncall.received) == 1
    assert got.payload is not None, got.error  # the signature verified
    assert got.payload["type"] == "provider.circuit_opened"
    data = got.payload["data"]
    assert (data["provider"], data["model"], data["failures"]) == ("flaky", "flaky-mini", 2)
    assert data["summary"].startswith("Circuit opened for flaky-mini on flaky after 2")
    assert got.headers["webhook-id"].startswith("circuit:flaky:flaky-mini:")
