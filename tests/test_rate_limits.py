"""Per-key rate limits as SDK users meet them: a key's requests a minute hold across two proxy
replicas (they share their counts through Kafka), a refused call is a 429 with `retry-after`
in the caller's protocol and a `blocked` row in the ledger, and new limits set through the
admin API reach every replica. Real Tansu broker, worker and chDB ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.pipeline import chat_status, eventually, role_runtime
from tollway.server import serving
from tollway.service import Runtime, build_app

pytestmark = pytest.mark.integration

ADMIN = "tw-test-admin-rates"
AS_ADMIN = {"authorization": f"Bearer {ADMIN}"}
HELLO = [{"role": "user", "content": "Say hello."}]


def _runtime(
    bootstrap: str, namespace: str, data_dir: Path, roles: set[str], store: object = None
) -> Runtime:
    return role_runtime(bootstrap, namespace, data_dir, roles, store=store, admin_key=ADMIN)


async def test_a_keys_requests_a_minute_hold_across_replicas(
    kafka_bootstrap: str, namespace: str, store: Any, tmp_path: Path
) -> None:
    everything = _runtime(
        kafka_bootstrap, namespace, tmp_path / "a", {"proxy", "worker", "analytics"}, store
    )
    proxy = _runtime(kafka_bootstrap, namespace, tmp_path / "b", {"proxy"})
    async with (
        serving(build_app(everything)) as a,
        serving(build_app(proxy)) as b,
        httpx.AsyncClient() as http,
    ):
        created = await http.post(
            f"{a}/v1/admin/keys", headers=AS_ADMIN,
            json={"business_line": "support", "limits": {"requests_per_minute": 6}},
        )  # fmt: skip
        assert created.json()["record"]["limits"]["requests_per_minute"] == 6
        secret, key_id = created.json()["key"], created.json()["record"]["id"]
        await eventually(lambda: chat_status(b, secret), 200)  # the key reached B (one call)

        # alternate between the replicas, with time for the counts to travel: six in all
        statuses = []
        for i in range(10):
            statuses.append(await chat_status(a if i % 2 else b, secret))
            await asyncio.sleep(0.3)
        assert statuses.count(200) == 5 and statuses[5:] == [429] * 5, statuses

        refused = await http.post(
            f"{b}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
            json={"model": "gpt-4o-mini", "messages": HELLO},
        )  # fmt: skip
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] == "rate_limit_exceeded"
        assert 1 <= int(refused.headers["retry-after"]) <= 120
        assert refused.headers["x-ratelimit-limit-requests"] == "6"
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        claude = anthropic.AsyncAnthropic(base_url=a, api_key=secret, max_retries=0)
        with pytest.raises(anthropic.RateLimitError) as caught:
            await claude.messages.create(model="gpt-4o-mini", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
        assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]

        # a higher limit through the API reaches both replicas
        raised = await http.patch(
            f"{a}/v1/admin/keys/{key_id}", headers=AS_ADMIN,
            json={"limits": {"requests_per_minute": 1000}},
        )  # fmt: skip
        assert raised.json()["limits"]["requests_per_minute"] == 1000
        assert await chat_status(a, secret) == 200
        # until B hears of the new limit it still refuses: each such refusal is a row too
        seen: list[int] = []

        async def status_on_b() -> int:
            seen.append(await chat_status(b, secret))
            return seen[-1]

        assert await eventually(status_on_b, 200) == 200

        # every refusal is in the ledger, as a blocked call
        async def refusals() -> int:
            rows = (
                await store.query(
                    "SELECT count() AS n FROM calls WHERE key_id = "
                    f"'{key_id}' AND status = 'blocked' AND error_code = 'rate_limit_exceeded'"
                )
            ).rows
            return int(rows[0]["n"])

        # five, the raw 429, the Anthropic one, and B's before it heard of the new limit
        expected = 7 + seen.count(429)
        assert await eventually(refusals, expected) == expected


async def test_tokens_a_minute_count_what_calls_used(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    async with (
        serving(build_app(_runtime(kafka_bootstrap, namespace, tmp_path, {"proxy"}))) as a,
        httpx.AsyncClient() as http,
    ):
        created = await http.post(
            f"{a}/v1/admin/keys", headers=AS_ADMIN,
            json={"business_line": "support", "limits": {"tokens_per_minute": 300}},
        )  # fmt: skip
        secret = created.json()["key"]
        client = openai.AsyncOpenAI(base_url=f"{a}/v1", api_key=secret, max_retries=0)
        used = 0
        with pytest.raises(openai.RateLimitError) as refused:
            for _ in range(100):
                answer = await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
                assert answer.usage is not None
                used += answer.usage.total_tokens
        assert used >= 300 and used - answer.usage.total_tokens < 300  # refused once spent
        assert refused.value.response.headers["x-ratelimit-limit-tokens"] == "300"


async def test_a_business_lines_limit_holds_for_all_its_keys_together(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """Team-level limits: the support line's keys share 3 requests a minute, and a marketing key
    is not held back by them; the refusal names the line."""
    from tollway.config import load_config
    from tollway.config.schema import KeyConfig, TollwayConfig
    from tollway.ids import hash_key, new_key_secret

    config = load_config(None).model_dump(mode="json", exclude_none=True)
    for line in config["organisation"]["business_lines"]:
        if line["name"] == "support":
            line["limits"] = {"requests_per_minute": 3}
    secrets = {name: new_key_secret() for name in ("k_sup1", "k_sup2", "k_mkt")}
    keys = [
        KeyConfig(id=name, hash=hash_key(secret),
                  business_line="marketing" if name == "k_mkt" else "support")
        for name, secret in secrets.items()
    ]  # fmt: skip
    runtime = role_runtime(
        kafka_bootstrap, namespace, tmp_path, {"proxy"},
        config=TollwayConfig.model_validate(config), extra_keys=keys,
    )  # fmt: skip
    async with serving(build_app(runtime)) as base:
        support = [secrets["k_sup1"], secrets["k_sup2"]]
        statuses = [await chat_status(base, support[i % 2]) for i in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        assert await chat_status(base, secrets["k_mkt"]) == 200

        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=support[0], max_retries=0)
        with pytest.raises(openai.RateLimitError) as refused:
            await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
        assert "rate limit reached for business line support: 3 requests a minute" in str(
            refused.value
        )
        assert refused.value.response.headers["x-ratelimit-limit-requests"] == "3"


def _with_a_slow_stream() -> Any:
    """The default catalogue plus `slow-mini`, whose streams take 20 s to finish."""
    from tollway.config import load_config
    from tollway.config.schema import TollwayConfig

    config = load_config(None).model_dump(mode="json", exclude_none=True)
    config["providers"].append(
        {"name": "slow", "type": "sim",
         "sim": {"latency_ms": 0, "ms_per_output_token": 200, "output_tokens": 100}}
    )  # fmt: skip
    config["models"].append(
        {"name": "slow-mini", "provider": "slow", "input_per_mtok": 1, "output_per_mtok": 2}
    )
    return TollwayConfig.model_validate(config)


def _proxy_with(config: Any, bootstrap: str, namespace: str, data_dir: Path) -> Runtime:
    return role_runtime(bootstrap, namespace, data_dir, {"proxy"}, config=config, admin_key=ADMIN)


async def test_a_keys_calls_in_flight_are_capped_across_replicas(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """Two streams held open on A fill a key's two slots: B refuses a third call until one
    of them ends (here: the client walks away), then serves."""
    config = _with_a_slow_stream()
    a_runtime, b_runtime = (
        _proxy_with(config, kafka_bootstrap, namespace, tmp_path / name) for name in ("a", "b")
    )
    async with (
        serving(build_app(a_runtime)) as a,
        serving(build_app(b_runtime)) as b,
        httpx.AsyncClient() as http,
    ):
        created = await http.post(
            f"{a}/v1/admin/keys", headers=AS_ADMIN,
            json={"business_line": "support", "limits": {"max_parallel_requests": 2}},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        secret = created.json()["key"]
        await eventually(lambda: chat_status(b, secret), 200)  # the key reached B
        await asyncio.sleep(0.5)  # and A has heard that B's call has ended

        client = openai.AsyncOpenAI(base_url=f"{a}/v1", api_key=secret, max_retries=0)
        streams = []
        for _ in range(2):
            stream = await client.chat.completions.create(
                model="slow-mini",
                messages=HELLO,
                stream=True,  # type: ignore[arg-type]
            )
            await anext(aiter(stream))  # it runs: the first chunk is here
            streams.append(stream)

        assert await chat_status(a, secret) == 429  # at once on A
        assert await eventually(lambda: chat_status(b, secret), 429) == 429  # B hears of it
        on_b = openai.AsyncOpenAI(base_url=f"{b}/v1", api_key=secret, max_retries=0)
        with pytest.raises(openai.RateLimitError) as refused:
            await on_b.chat.completions.create(model="gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
        assert "2 calls in flight at once" in str(refused.value)
        assert refused.value.response.headers["retry-after"] == "1"

        await streams[0].close()  # an abandoned stream frees its slot when A sees it go
        assert await eventually(lambda: chat_status(b, secret), 200) == 200
        await streams[1].close()
