"""Budgets as an SDK user meets them: blocked with a 429 that says why, downgraded to the
cheaper model, or served and marked — through the real proxy, worker, Kafka and ledger."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tollway.config import load_config
from tollway.config.schema import BudgetConfig, BudgetScope, KeyConfig
from tollway.ids import hash_key, new_key_secret
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings

pytestmark = pytest.mark.integration

BUDGETS = [
    BudgetConfig(id="tight-block", scope=BudgetScope(key_id="k_block"), limit_usd=Decimal("0.001"),
                 action="block"),
    BudgetConfig(id="tight-down", scope=BudgetScope(key_id="k_down"), limit_usd=Decimal("0.0005"),
                 action="downgrade", downgrade_to="gpt-4o-mini"),
    BudgetConfig(id="watch-only", scope=BudgetScope(key_id="k_warn"), limit_usd=Decimal("0.0005"),
                 action="alert_only"),
]  # fmt: skip


def _keys() -> tuple[dict[str, str], list[KeyConfig]]:
    secrets = {name: new_key_secret() for name in ("k_block", "k_down", "k_warn")}
    keys = [
        KeyConfig(id=name, hash=hash_key(secret), business_line="support", project="helpdesk")
        for name, secret in secrets.items()
    ]
    return secrets, keys


async def test_block_downgrade_and_alert_only(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path
) -> None:
    secrets, keys = _keys()
    config = load_config(None).model_copy(update={"budgets": BUDGETS})
    settings = Settings(
        topic_namespace=namespace, data_dir=tmp_path, kafka_session_timeout_s=3.0,
        sink_batch_seconds=0.1,
    )  # fmt: skip
    runtime = Runtime(
        settings=settings, config=config, bootstrap=kafka_bootstrap, extra_keys=keys, store=store
    )
    prompt = [{"role": "user", "content": "Summarise the quarterly numbers for the board."}]
    async with serving(build_app(runtime)) as base:
        client = openai.AsyncOpenAI(
            base_url=f"{base}/v1", api_key=secrets["k_block"], max_retries=0
        )
        served = 0
        with pytest.raises(openai.RateLimitError) as blocked:
            for _ in range(50):
                await client.chat.completions.create(model="gpt-4o", messages=prompt)
                served += 1
        assert 1 <= served < 50
        error = blocked.value.body
        assert error["type"] == "budget_exceeded"  # type: ignore[index]
        assert error["budget_id"] == "tight-block"  # type: ignore[index]
        assert Decimal(error["limit_usd"]) == Decimal("0.001")  # type: ignore[index]
        spent_plus_reserved = Decimal(error["spent_usd"]) + Decimal(error["reserved_usd"])  # type: ignore[index]
        assert spent_plus_reserved >= Decimal("0.001")
        assert blocked.value.response.headers["x-tollway-budget-id"] == "tight-block"
        assert int(blocked.value.response.headers["retry-after"]) > 0

        # the Anthropic protocol gets its own error shape, same type
        claude = anthropic.AsyncAnthropic(base_url=base, api_key=secrets["k_block"], max_retries=0)
        with pytest.raises(anthropic.RateLimitError) as refused:
            await claude.messages.create(model="gpt-4o", max_tokens=50, messages=prompt)  # type: ignore[arg-type]
        assert refused.value.body["error"]["type"] == "budget_exceeded"  # type: ignore[index]

        # downgrade: once the budget is spent, gpt-4o calls are served by gpt-4o-mini
        down = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=secrets["k_down"], max_retries=0)
        models = []
        for _ in range(12):
            raw = await down.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=prompt
            )
            models.append(raw.headers["x-tollway-model"])
        assert models[0] == "gpt-4o" and models[-1] == "gpt-4o-mini"

        # alert only: always served, marked
        warn = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=secrets["k_warn"], max_retries=0)
        for _ in range(6):
            await warn.chat.completions.create(model="gpt-4o", messages=prompt)
        await asyncio.sleep(1.5)

    rows = (
        await store.query(
            "SELECT key_id, status, budget_action, count() AS n FROM calls"
            " GROUP BY key_id, status, budget_action ORDER BY key_id, status, budget_action"
        )
    ).rows
    by = {(r["key_id"], r["status"], r["budget_action"]): int(r["n"]) for r in rows}
    assert by[("k_block", "ok", "none")] == served
    assert by[("k_block", "blocked", "blocked")] == 2  # the OpenAI and the Anthropic refusal
    assert by[("k_down", "ok", "downgraded")] >= 1
    assert by[("k_warn", "ok", "warned")] >= 1
    blocked_ids = await store.query("SELECT budget_ids FROM calls WHERE status = 'blocked' LIMIT 1")
    assert blocked_ids.rows[0]["budget_ids"] == ["tight-block"]


async def test_route_moves_to_its_economy_tier_at_the_downgrade_threshold(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path
) -> None:
    """From `downgrade_at` of the limit, a route's calls are served by its economy tier, and
    an SDK client sees it in the response headers, streamed or not."""
    secret = new_key_secret()
    key = KeyConfig(id="k_tier", hash=hash_key(secret), business_line="support", project="helpdesk")
    demo = load_config(None)
    routes = [
        r.model_copy(update={"economy": ["gpt-4o-mini"]}) if r.name == "smart" else r
        for r in demo.routes
    ]
    budget = BudgetConfig(
        id="tier-down", scope=BudgetScope(key_id="k_tier"), limit_usd=Decimal("0.004"),
        action="downgrade", downgrade_at=0.5,
    )  # fmt: skip
    config = demo.model_copy(update={"budgets": [budget], "routes": routes})
    settings = Settings(topic_namespace=namespace, data_dir=tmp_path, sink_batch_seconds=0.1)
    runtime = Runtime(
        settings=settings, config=config, bootstrap=kafka_bootstrap, extra_keys=[key], store=store
    )
    prompt = [
        {"role": "user", "content": "Draft a polite reply to a customer asking for a refund."}
    ]
    async with serving(build_app(runtime)) as base:
        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0)
        seen: list[tuple[str, str, str | None]] = []
        for _ in range(40):
            raw = await client.chat.completions.with_raw_response.create(
                model="smart", messages=prompt
            )
            h = raw.headers
            seen.append(
                (h["x-tollway-model"], h["x-tollway-route"], h.get("x-tollway-budget-action"))
            )
            if seen[-1][2] == "downgraded":
                break
        assert seen[0] == ("claude-sonnet-4", "smart", None)
        assert seen[-1] == ("gpt-4o-mini", "smart", "downgraded")
        event_id = raw.headers["x-tollway-event-id"]

        async with client.chat.completions.with_streaming_response.create(
            model="smart", messages=prompt, stream=True
        ) as streamed:
            assert streamed.headers["x-tollway-model"] == "gpt-4o-mini"
            assert streamed.headers["x-tollway-budget-action"] == "downgraded"
            assert [chunk async for chunk in await streamed.parse()]
        await asyncio.sleep(1.5)

    row = (
        await store.query(
            "SELECT model, route, budget_action, route_reason FROM calls"
            f" WHERE event_id = '{event_id}'"
        )
    ).rows[0]
    assert (row["model"], row["route"], row["budget_action"]) == (
        "gpt-4o-mini",
        "smart",
        "downgraded",
    )
    assert row["route_reason"].startswith(
        "budget tier-down at its downgrade threshold: economy tier: priority"
    )


async def test_one_proxy_refuses_a_burst_only_once_the_limit_is_spent(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path
) -> None:
    """Issue #4: concurrent clients spend against a `block` budget, each call reserving its
    exact cost (max_tokens = what the model generates). The first refusal comes once what was
    served, plus the calls in flight, reaches the limit — not at about half of it, as when a
    settled cost stayed held for 5 s after the worker had counted it (then counted twice)."""
    secret, free = new_key_secret(), new_key_secret()
    keys = [
        KeyConfig(id=kid, hash=hash_key(s), business_line="support", project="helpdesk")
        for kid, s in (("k_burst", secret), ("k_free", free))
    ]
    demo = load_config(None)
    slow = [  # 100 ms a call: the burst outlasts the worker's count many times over
        p.model_copy(update={"sim": p.sim.model_copy(update={"latency_ms": 100})})
        for p in demo.providers
    ]
    limit, clients = Decimal("0.1"), 8
    budget = BudgetConfig(
        id="burst", scope=BudgetScope(key_id="k_burst"), limit_usd=limit, action="block"
    )
    config = demo.model_copy(update={"providers": slow, "budgets": [budget]})
    settings = Settings(
        topic_namespace=namespace, data_dir=tmp_path, kafka_session_timeout_s=3.0,
        sink_batch_seconds=0.1,
    )  # fmt: skip
    runtime = Runtime(
        settings=settings, config=config, bootstrap=kafka_bootstrap, extra_keys=keys, store=store
    )
    prompt = [{"role": "user", "content": "Summarise the quarterly numbers for the board."}]
    served: list[tuple[float, Decimal]] = []
    refused_at: list[float] = []
    async with serving(build_app(runtime)) as base, httpx.AsyncClient(timeout=30) as http:

        async def call(key: str, body: dict[str, object]) -> httpx.Response:
            return await http.post(
                f"{base}/v1/chat/completions",
                json={"model": "gpt-4o", "messages": prompt, **body},
                headers={"authorization": f"Bearer {key}"},
            )

        probe = await call(free, {})  # a key no budget counts: what one call generates and costs
        tokens = probe.json()["usage"]["completion_tokens"]
        cost = Decimal(probe.headers["x-tollway-cost-usd"])
        assert 150 <= limit / cost <= 400  # a burst of some seconds

        async def client() -> None:
            while not refused_at:
                response = await call(secret, {"max_tokens": tokens})
                if response.status_code == 429:
                    refused_at.append(time.perf_counter())
                    return
                response.raise_for_status()
                served.append(
                    (time.perf_counter(), Decimal(response.headers["x-tollway-cost-usd"]))
                )

        await asyncio.gather(*(client() for _ in range(clients)))
        await asyncio.sleep(1.5)  # the worker writes the last calls

    first_refusal = min(refused_at)
    before = sum((c for t, c in served if t <= first_refusal), Decimal(0))
    # each client stops at its first 429, so at most `clients` calls were in flight then
    # (their reservations are estimates: allow as much again)
    assert before >= limit - 2 * clients * cost, f"refused at {before / limit:.1%} of the limit"
    ledger = await store.query(
        "SELECT toString(sum(cost_usd)) AS spend FROM calls"
        " WHERE key_id = 'k_burst' AND status = 'ok'"
    )
    spend = Decimal(ledger.rows[0]["spend"])
    assert spend == sum((c for _, c in served), Decimal(0))
    assert spend < limit + cost  # one proxy: no call admitted once the limit is reserved
