"""One call, the whole way: OpenAI SDK → proxy → Kafka → faust worker → ClickHouse ledger.

Real engines only: the Tansu broker and chDB from conftest. The test waits for the ledger,
then checks every row against what the SDK saw and against the price catalogue.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from tollway.config import load_config
from tollway.config.schema import KeyConfig, TollwayConfig
from tollway.ids import hash_key, new_key_secret
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings

pytestmark = pytest.mark.integration

ADMIN_KEY = "tw-test-admin"


def _key(key_id: str, business_line: str, project: str, task_type: str) -> tuple[str, KeyConfig]:
    secret = new_key_secret()
    return secret, KeyConfig(
        id=key_id,
        hash=hash_key(secret),
        business_line=business_line,
        project=project,
        task_type=task_type,
    )


def _expected_cost(config: TollwayConfig, model: str, prompt: int, completion: int) -> Decimal:
    """Cost straight from the catalogue's list prices (USD per million tokens)."""
    entry = config.model(model)
    assert entry is not None and entry.input_per_mtok is not None
    assert entry.output_per_mtok is not None
    return (prompt * entry.input_per_mtok + completion * entry.output_per_mtok) / Decimal(1_000_000)


async def _wait_for_rows(store, expected: int, timeout_s: float = 60.0) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        result = await store.query("SELECT count() AS n FROM calls")
        count = int(result.rows[0]["n"])
        if count >= expected:
            return count
        await asyncio.sleep(0.2)
    return count


async def test_sdk_calls_land_once_each_in_the_ledger(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path
) -> None:
    """Tansu + chDB: the embedded default's engines."""
    await sdk_calls_land_once_each(kafka_bootstrap, namespace, store, tmp_path)


async def sdk_calls_land_once_each(bootstrap: str, namespace: str, store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The scenario, for any pair of engines (see also test_docker_engines.py)."""
    config = load_config(None)
    marketing_secret, marketing = _key("k_mkt", "marketing", "campaigns", "chat")
    support_secret, support = _key("k_sup", "support", "helpdesk", "summarisation")
    settings = Settings(
        topic_namespace=namespace,
        data_dir=tmp_path,
        kafka_session_timeout_s=3.0,
        sink_batch_seconds=0.2,
    )
    runtime = Runtime(
        settings=settings,
        config=config,
        bootstrap=bootstrap,
        extra_keys=[marketing, support],
        admin_key=ADMIN_KEY,
        store=store,
    )
    seen: dict[str, dict[str, object]] = {}
    async with serving(build_app(runtime)) as base_url:
        plan = [(marketing_secret, "gpt-4o-mini")] * 4 + [(support_secret, "claude-3-5-haiku")] * 3
        for i, (secret, model) in enumerate(plan):
            client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=secret, max_retries=0)
            raw = await client.chat.completions.with_raw_response.create(
                model=model,
                messages=[{"role": "user", "content": f"Summarise call number {i} " * (i + 1)}],
            )
            completion = raw.parse()
            event_id = raw.headers["x-tollway-event-id"]
            seen[event_id] = {
                "model": completion.model,
                "prompt": completion.usage.prompt_tokens,
                "completion": completion.usage.completion_tokens,
                "cost_header": Decimal(raw.headers["x-tollway-cost-usd"]),
                "key": "k_mkt" if secret == marketing_secret else "k_sup",
            }
            assert raw.headers["x-tollway-model"] == model
            assert raw.headers["x-tollway-provider"] == "sim"
            assert completion.choices[0].message.content

        assert await _wait_for_rows(store, len(plan)) == len(plan)

        # the analytics API answers the same question over HTTP
        async with httpx.AsyncClient(base_url=base_url) as http:
            response = await http.post(
                "/v1/analytics/sql",
                json={"query": "SELECT count() AS n FROM calls"},
                headers={"authorization": f"Bearer {ADMIN_KEY}"},
            )
            assert response.status_code == 200, response.text
            assert int(response.json()["data"][0]["n"]) == len(plan)

    rows = (
        await store.query(
            "SELECT toString(event_id) AS event_id, key_id, business_line, project, task_type,"
            " model, provider, input_tokens, output_tokens, toString(cost_usd) AS cost, status"
            " FROM calls"
        )
    ).rows
    assert len(rows) == len(plan)
    assert {r["event_id"] for r in rows} == set(seen)
    for row in rows:
        call = seen[row["event_id"]]
        assert row["key_id"] == call["key"]
        if call["key"] == "k_mkt":
            assert (row["business_line"], row["project"], row["task_type"]) == (
                "marketing",
                "campaigns",
                "chat",
            )
        else:
            assert (row["business_line"], row["project"], row["task_type"]) == (
                "support",
                "helpdesk",
                "summarisation",
            )
        assert row["model"] == call["model"]
        assert row["provider"] == "sim"
        assert row["status"] == "ok"
        assert int(row["input_tokens"]) == call["prompt"]
        assert int(row["output_tokens"]) == call["completion"]
        expected = _expected_cost(
            config, str(call["model"]), int(row["input_tokens"]), int(row["output_tokens"])
        )
        assert Decimal(row["cost"]) == call["cost_header"]
        assert abs(Decimal(row["cost"]) - expected) < Decimal("0.005")  # to the cent
        assert Decimal(row["cost"]) == expected.quantize(Decimal("1e-9"))  # and to the nano-dollar

    # the hourly rollup agrees with the raw rows, per business line
    raw_totals = await store.query(
        "SELECT business_line, toString(sum(cost_usd)) AS cost, count() AS calls,"
        " sum(input_tokens) AS input FROM calls GROUP BY business_line ORDER BY business_line"
    )
    rollup = await store.query(
        "SELECT business_line, toString(sum(cost_usd)) AS cost, sum(calls) AS calls,"
        " sum(input_tokens) AS input FROM calls_hourly GROUP BY business_line ORDER BY business_line"
    )
    assert rollup.rows == raw_totals.rows
    assert [r["business_line"] for r in raw_totals.rows] == ["marketing", "support"]
