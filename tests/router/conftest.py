"""A whole tollway (proxy + worker + analytics on real Kafka and chDB) in front of the simulator
and three fake upstreams speaking OpenAI, Anthropic and Gemini wire formats.

One stack per test module: engines and fakes are slow-ish to start and the tests tell their
calls apart by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from tests.router import fakes
from tollway.config.schema import KeyConfig, TollwayConfig
from tollway.ids import hash_key, new_key_secret
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings

SECRETS = {
    "FAKE_OPENAI_KEY": "sk-fake-openai-" + uuid.uuid4().hex,
    "FAKE_ANTHROPIC_KEY": "sk-ant-fake-" + uuid.uuid4().hex,
    "FAKE_GEMINI_KEY": "AIza-fake-" + uuid.uuid4().hex,
    "WRONG_KEY": "sk-wrong-" + uuid.uuid4().hex,
}


#: each fake provider's own `headers` in the config, sent beside its credentials
PROVIDER_HEADERS = {
    "openai": {"OpenAI-Organization": "org-tollway"},
    "anthropic": {"anthropic-beta": "token-efficient-tools-2025-02-19"},
}


def _config(urls: dict[str, str]) -> TollwayConfig:
    price = {"input_per_mtok": 0.15, "output_per_mtok": 0.60, "cached_input_per_mtok": 0.075}
    embedding_price = {"input_per_mtok": 0.02, "output_per_mtok": 0, "capabilities": ["embeddings"]}
    return TollwayConfig.model_validate(
        {
            "providers": [
                {"name": "sim", "type": "sim", "sim": {"latency_ms": 5}},
                {
                    "name": "sim-slow",
                    "type": "sim",
                    "sim": {"latency_ms": 5, "ms_per_output_token": 25, "output_tokens": 60},
                },
                {
                    "name": "sim-down",
                    "type": "sim",
                    "sim": {"error_rate": 1.0},
                    "max_retries": 0,
                    "breaker_failures": 1000,
                },
                {
                    "name": "openai-fake",
                    "type": "openai",
                    "base_url": urls["openai"] + "/v1",
                    "api_key_env": "FAKE_OPENAI_KEY",
                    "headers": PROVIDER_HEADERS["openai"],
                },
                {
                    "name": "anthropic-fake",
                    "type": "anthropic",
                    "base_url": urls["anthropic"],
                    "api_key_env": "FAKE_ANTHROPIC_KEY",
                    "headers": PROVIDER_HEADERS["anthropic"],
                },
                {
                    "name": "gemini-fake",
                    "type": "gemini",
                    "base_url": urls["gemini"] + "/v1beta",
                    "api_key_env": "FAKE_GEMINI_KEY",
                },
                {
                    "name": "openai-badkey",
                    "type": "openai",
                    "base_url": urls["openai"] + "/v1",
                    "api_key_env": "WRONG_KEY",
                },
                {
                    "name": "anthropic-badkey",
                    "type": "anthropic",
                    "base_url": urls["anthropic"],
                    "api_key_env": "WRONG_KEY",
                },
            ],
            "models": [
                {"name": "gpt-4o-mini", "provider": "sim", **price},
                {
                    "name": "claude-3-5-haiku",
                    "provider": "sim",
                    "input_per_mtok": 0.80,
                    "output_per_mtok": 4.00,
                    "cached_input_per_mtok": 0.08,
                },
                {"name": "slow-mini", "provider": "sim-slow", **price},
                {"name": "down-mini", "provider": "sim-down", **price},
                {
                    "name": "gpt-4o",
                    "provider": "openai-fake",
                    "upstream_name": "gpt-4o-2024-08-06",
                    "input_per_mtok": 2.50,
                    "output_per_mtok": 10.00,
                    "cached_input_per_mtok": 1.25,
                },
                {
                    "name": "claude-sonnet-4",
                    "provider": "anthropic-fake",
                    "upstream_name": "claude-sonnet-4-20250514",
                    "input_per_mtok": 3.00,
                    "output_per_mtok": 15.00,
                    "cached_input_per_mtok": 0.30,
                    "cache_write_per_mtok": 3.75,
                },
                {
                    "name": "gemini-2.0-flash",
                    "provider": "gemini-fake",
                    "input_per_mtok": 0.10,
                    "output_per_mtok": 0.40,
                    "cached_input_per_mtok": 0.025,
                },
                # reasoning models: OpenAI's reasoning_effort and Anthropic's thinking convert
                *(
                    {
                        "name": name,
                        "provider": provider,
                        "upstream_name": upstream,
                        "capabilities": ["reasoning"],
                        "max_output_tokens": 16000,
                        **price,
                    }
                    for name, provider, upstream in (
                        ("claude-thinker", "anthropic-fake", "claude-sonnet-4-20250514"),
                        ("gemini-thinker", "gemini-fake", "gemini-2.5-flash"),
                        ("o-thinker", "openai-fake", "o4-mini"),
                    )
                ),
                {"name": "gpt-4o-badkey", "provider": "openai-badkey", **price},
                {"name": "claude-badkey", "provider": "anthropic-badkey", **price},
                {"name": "sim-embed", "provider": "sim", **embedding_price},
                {"name": "down-embed", "provider": "sim-down", **embedding_price},
                {
                    "name": "text-embedding-3-small",
                    "provider": "openai-fake",
                    "upstream_name": "text-embedding-3-small-upstream",
                    **embedding_price,
                },
                {
                    "name": "gemini-embedding",
                    "provider": "gemini-fake",
                    "upstream_name": "gemini-embedding-001",
                    "input_per_mtok": 0.15,
                    "output_per_mtok": 0,
                    "capabilities": ["embeddings"],
                },
            ],
            "routes": [
                {"name": "resilient", "candidates": ["down-mini"], "fallbacks": ["gpt-4o-mini"]},
                {
                    "name": "embed",
                    "candidates": ["gpt-4o-mini", "down-embed"],
                    "fallbacks": ["sim-embed"],
                },
                {
                    "name": "choices",
                    "candidates": ["claude-sonnet-4"],
                    "fallbacks": ["gpt-4o-mini"],
                },
            ],
        }
    )


@dataclass
class Stack:
    base_url: str
    key: str
    config: TollwayConfig
    store: Any
    fakes: dict[str, Starlette]

    def expected_cost(
        self, model: str, input_tokens: int, output_tokens: int, cached: int = 0, writes: int = 0
    ) -> Decimal:
        entry = self.config.model(model)
        assert entry is not None and entry.input_per_mtok is not None
        assert entry.output_per_mtok is not None
        cached_price = entry.cached_input_per_mtok or entry.input_per_mtok
        write_price = entry.cache_write_per_mtok or entry.input_per_mtok
        usd = (
            (input_tokens - cached - writes) * entry.input_per_mtok
            + cached * cached_price
            + writes * write_price
            + output_tokens * entry.output_per_mtok
        ) / Decimal(1_000_000)
        return usd.quantize(Decimal("1e-9"))

    async def row(self, event_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """The ledger row of one call, once the worker has written it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = await self.store.query(
                "SELECT *, toString(cost_usd) AS cost FROM calls"
                f" WHERE toString(event_id) = '{event_id}'"
            )
            if result.rows:
                return dict(result.rows[0])
            await asyncio.sleep(0.1)
        raise AssertionError(f"event {event_id} never reached the ledger")

    async def rows_where(self, condition: str, expected: int, timeout_s: float = 30.0) -> list:
        deadline = time.monotonic() + timeout_s
        rows: list[Any] = []
        while time.monotonic() < deadline:
            rows = (
                await self.store.query(
                    f"SELECT *, toString(cost_usd) AS cost FROM calls WHERE {condition}"
                )
            ).rows
            if len(rows) >= expected:
                return [dict(r) for r in rows]
            await asyncio.sleep(0.1)
        return [dict(r) for r in rows]


def fake_apps() -> dict[str, Starlette]:
    """The OpenAI, Anthropic and Gemini fakes, each expecting its own secret."""
    return {
        "openai": fakes.openai_app(SECRETS["FAKE_OPENAI_KEY"]),
        "anthropic": fakes.anthropic_app(SECRETS["FAKE_ANTHROPIC_KEY"]),
        "gemini": fakes.gemini_app(SECRETS["FAKE_GEMINI_KEY"]),
    }


@contextlib.asynccontextmanager
async def run_stack(
    kafka_bootstrap: str,
    chdb_path: Path,
    data_dir: Path,
    apps: dict[str, Starlette],
    make_config: Callable[[dict[str, str]], TollwayConfig],
) -> AsyncIterator[Stack]:
    """A whole tollway in front of `apps` (served on free ports; `make_config` gets their URLs),
    with its own topics and ledger database."""
    from analytics.store.chdb_store import ChdbStore

    database = f"t_{uuid.uuid4().hex[:10]}"
    store = ChdbStore(chdb_path, database)
    secret = new_key_secret()
    key = KeyConfig(id="k_router", hash=hash_key(secret), business_line="eng", project="gateway")
    with pytest.MonkeyPatch.context() as env:
        for name, value in SECRETS.items():
            env.setenv(name, value)
        async with contextlib.AsyncExitStack() as running:
            urls = {
                name: await running.enter_async_context(serving(app))  # type: ignore[arg-type]
                for name, app in apps.items()
            }
            config = make_config(urls)
            settings = Settings(
                topic_namespace=f"t{uuid.uuid4().hex[:10]}.",
                data_dir=data_dir,
                kafka_session_timeout_s=3.0,
                sink_batch_seconds=0.1,
            )
            runtime = Runtime(
                settings=settings,
                config=config,
                bootstrap=kafka_bootstrap,
                extra_keys=[key],
                admin_key="tw-router-admin",
                store=store,
            )
            base_url = await running.enter_async_context(serving(build_app(runtime)))
            yield Stack(base_url=base_url, key=secret, config=config, store=store, fakes=apps)
    await store.command(f"DROP DATABASE IF EXISTS {database}")
    await store.close()


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, chdb_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with run_stack(
        kafka_bootstrap, chdb_path, tmp_path_factory.mktemp("router"), fake_apps(), _config
    ) as running:
        yield running
