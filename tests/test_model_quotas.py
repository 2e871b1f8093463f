"""Provider quotas as callers meet them: a model at its quota — counted across two proxy
replicas through Kafka — is passed over for the route's fallback without a try, the ledger
saying why; a model with nowhere to go answers 429 with `retry-after` in each SDK's protocol.
Real Tansu broker, worker and chDB ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.pipeline import eventually, role_runtime
from tollway.config import load_config
from tollway.config.schema import KeyConfig, TollwayConfig
from tollway.ids import hash_key, new_key_secret
from tollway.server import serving
from tollway.service import Runtime, build_app

pytestmark = pytest.mark.integration

SECRET = new_key_secret()
KEY = KeyConfig(id="k_quota", hash=hash_key(SECRET), business_line="support")
HELLO = [{"role": "user", "content": "Say hello."}]
PRICE = {"input_per_mtok": 1, "output_per_mtok": 2}


def _config() -> TollwayConfig:
    config = load_config(None).model_dump(mode="json", exclude_none=True)
    config["models"] += [
        {"name": "capped", "provider": "sim", "quota": {"requests_per_minute": 3}, **PRICE},
        {"name": "alone", "provider": "sim", "quota": {"requests_per_minute": 1}, **PRICE},
    ]
    config["routes"].append(
        {"name": "quota-route", "candidates": ["capped"], "fallbacks": ["gpt-4o-mini"]}
    )
    return TollwayConfig.model_validate(config)


def _runtime(
    bootstrap: str, namespace: str, data_dir: Path, roles: set[str], store: object = None
) -> Runtime:
    return role_runtime(
        bootstrap, namespace, data_dir, roles, config=_config(), store=store, extra_keys=[KEY]
    )


def _openai(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=SECRET, max_retries=0)


async def test_a_models_quota_holds_across_replicas_and_calls_fall_back(
    kafka_bootstrap: str, namespace: str, store: Any, tmp_path: Path
) -> None:
    everything = _runtime(
        kafka_bootstrap, namespace, tmp_path / "a", {"proxy", "worker", "analytics"}, store
    )
    proxy = _runtime(kafka_bootstrap, namespace, tmp_path / "b", {"proxy"})
    async with serving(build_app(everything)) as a, serving(build_app(proxy)) as b:
        served = []
        for i in range(8):  # alternate, with time for the counts to travel
            answer = await _openai(a if i % 2 else b).chat.completions.with_raw_response.create(
                model="quota-route",
                messages=HELLO,  # type: ignore[arg-type]
            )
            served.append(answer.headers["x-tollway-model"])
            await asyncio.sleep(0.3)
        assert served == ["capped"] * 3 + ["gpt-4o-mini"] * 5

        async def ledger() -> list[Any]:
            result = await store.query(
                "SELECT model, route_reason, length(attempts) AS tries, fallback_used FROM calls"
                " WHERE route = 'quota-route' AND model = 'gpt-4o-mini'"
            )
            return list(result.rows)

        rows = await eventually(ledger, None, until=lambda rows: len(rows) == 5)
        assert len(rows) == 5
        for row in rows:
            assert "skipped (at quota: capped)" in row["route_reason"]
            assert (row["tries"], row["fallback_used"]) == (1, True)  # no try on `capped`


async def test_a_model_with_nowhere_to_go_answers_429_in_each_protocol(
    kafka_bootstrap: str, namespace: str, store: Any, tmp_path: Path
) -> None:
    everything = _runtime(
        kafka_bootstrap, namespace, tmp_path, {"proxy", "worker", "analytics"}, store
    )
    async with serving(build_app(everything)) as base:
        client = _openai(base)
        await client.chat.completions.create(model="alone", messages=HELLO)  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError) as refused:
            await client.chat.completions.create(model="alone", messages=HELLO)  # type: ignore[arg-type]
        error = refused.value.body
        assert isinstance(error, dict)
        assert (error["type"], error["code"]) == ("rate_limit_exceeded", "provider_quota_reached")
        assert "at quota: alone" in error["message"]
        assert 1 <= int(refused.value.response.headers["retry-after"]) <= 120

        claude = anthropic.AsyncAnthropic(base_url=base, api_key=SECRET, max_retries=0)
        with pytest.raises(anthropic.RateLimitError) as refused_too:
            await claude.messages.create(model="alone", max_tokens=50, messages=HELLO)  # type: ignore[arg-type]
        assert refused_too.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]

        async def refusals() -> list[Any]:
            result = await store.query(
                "SELECT status, http_status, error_code FROM calls WHERE model = 'alone'"
                " OR requested_model = 'alone' ORDER BY ts"
            )
            return [tuple(r.values()) for r in result.rows]

        rows = await eventually(refusals, None, until=lambda rows: len(rows) == 3)
        assert rows == [
            ("ok", 200, ""), ("error", 429, "rate_limit_exceeded"),
            ("error", 429, "rate_limit_exceeded"),
        ]  # fmt: skip
