"""`guardrail.triggered` as a security team's webhook meets it: a key that keeps pasting an AWS
key into prompts is refused every time, and the receiver gets one signed alert for that key
and hour, naming the guardrail and what it found (never the secret); the alert is listed by
`GET /v1/analytics/alerts`. Real Tansu broker, worker and chDB ledger, the OpenAI SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

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
ADMIN = "tw-test-admin-guardrails"
AWS = "AKIAIOSFODNN7EXAMPLE"


def _config(url: str) -> TollwayConfig:
    config = load_config(None).model_dump(mode="json", exclude_none=True)
    config["guardrails"] = [{"id": "no-secrets", "detect": ["secrets"], "action": "block"}]
    config["webhooks"] = [
        {"id": "security", "url": url, "secret_env": SECRET_ENV, "events": ["guardrail.triggered"]}
    ]
    return TollwayConfig.model_validate(config)


async def test_a_blocked_secret_alerts_security_once_per_key_and_hour(
    kafka_bootstrap: str,
    namespace: str,
    store: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = KeyConfig(id="k_careless", hash=hash_key(SECRET), business_line="support")
    async with signed_receiver(monkeypatch) as security:
        runtime = role_runtime(
            kafka_bootstrap, namespace, tmp_path, {"proxy", "worker", "analytics"},
            config=_config(security.url), store=store, extra_keys=[key], admin_key=ADMIN,
        )  # fmt: skip
        async with serving(build_app(runtime)) as base:
            client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=SECRET, max_retries=0)
            for attempt in range(3):
                with pytest.raises(openai.BadRequestError):
                    await client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": f"try {attempt}: {AWS}"}],
                    )
            [got] = await security.wait_for(1)
            await asyncio.sleep(1.0)  # time for more deliveries, were any made

            def listed() -> Awaitable[list[dict[str, Any]]]:
                return listed_alerts(base, ADMIN, "guardrail.triggered")

            [entry] = await eventually(listed, None, until=bool)
    assert len(security.received) == 1
    assert got.payload is not None, got.error  # the signature verified
    assert got.payload["type"] == "guardrail.triggered"
    data = got.payload["data"]
    assert (data["guardrail"], data["action"], data["key_id"]) == (
        "no-secrets",
        "block",
        "k_careless",
    )
    assert data["summary"] == (
        "Guardrail no-secrets blocked a call from key k_careless (support) to gpt-4o-mini: the "
        "request contained an AWS access key id; this key's further matches this hour raise no "
        "new alert"
    )
    assert AWS not in str(got.payload)
    assert got.headers["webhook-id"].startswith("guardrail:no-secrets:k_careless:")
    assert entry["summary"] == data["summary"]
