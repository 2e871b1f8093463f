"""Two proxies, one budget (issue #8): each counts what the other holds.

Two proxy apps share the session's Tansu broker — each with its own BudgetGate and instance id,
as two replicas would — and a worker-and-analytics app writes the ledger. Concurrent clients,
spread over both proxies, spend against one `block` budget with exact reservations (max_tokens
= what the model generates), each until its first refusal. With each replica seeing the other's
spend only once the worker has counted it (the sink's 0.5 s batch window plus a status round
trip), the other replica's admissions in that time overshoot the limit by several times the
calls in flight; with the holds shared, the overshoot stays within the calls in flight.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tollway.config import load_config
from tollway.config.schema import BudgetConfig, BudgetScope, KeyConfig, TollwayConfig
from tollway.ids import hash_key, new_key_secret
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings

pytestmark = pytest.mark.integration

CLIENTS = 24  # 12 per proxy
LIMIT = Decimal("0.2")
PROMPT = [{"role": "user", "content": "Summarise the quarterly numbers for the board."}]


def _runtime(
    namespace: str, data_dir: Path, config: TollwayConfig, keys: list[KeyConfig], **kw: object
) -> Runtime:
    data_dir.mkdir(exist_ok=True)
    settings = Settings(
        topic_namespace=namespace, data_dir=data_dir, kafka_session_timeout_s=3.0,
        sink_batch_seconds=0.5,  # the default: the lag the shared holds have to cover
    )  # fmt: skip
    return Runtime(settings=settings, config=config, extra_keys=keys, **kw)  # type: ignore[arg-type]


async def _topic_exists(bootstrap: str, topic: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return topic in await admin.list_topics()
    finally:
        await admin.close()


async def test_two_proxies_overshoot_a_burst_by_at_most_the_calls_in_flight(
    kafka_bootstrap: str, namespace: str, store: object, tmp_path: Path
) -> None:
    secret, free = new_key_secret(), new_key_secret()
    keys = [
        KeyConfig(id=kid, hash=hash_key(s), business_line="support", project="helpdesk")
        for kid, s in (("k_shared", secret), ("k_free", free))
    ]
    demo = load_config(None)
    slow = [  # 100 ms a call: a burst of a few seconds, many status round trips
        p.model_copy(update={"sim": p.sim.model_copy(update={"latency_ms": 100})})
        for p in demo.providers
    ]
    budget = BudgetConfig(
        id="shared", scope=BudgetScope(key_id="k_shared"), limit_usd=LIMIT, action="block"
    )
    config = demo.model_copy(update={"providers": slow, "budgets": [budget]})
    backend = _runtime(namespace, tmp_path / "w", config, keys, bootstrap=kafka_bootstrap,
                       roles=frozenset({"worker", "analytics"}), store=store)  # fmt: skip
    proxy = frozenset({"proxy"})
    proxies = [
        _runtime(
            namespace, tmp_path / f"p{n}", config, keys, bootstrap=kafka_bootstrap, roles=proxy
        )
        for n in range(2)
    ]
    served: list[tuple[float, float, Decimal]] = []  # started, finished, cost
    refused: list[float] = []
    apps = [build_app(p) for p in proxies]
    async with (
        serving(build_app(backend)),
        serving(apps[0]) as base_a,
        serving(apps[1]) as base_b,
        httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=CLIENTS)) as http,
    ):
        gates = [app.state.gateway.budgets for app in apps]
        assert gates[0].instance_id != gates[1].instance_id  # one instance per gateway
        assert await _topic_exists(kafka_bootstrap, f"{namespace}tollway.budget-holds.v1")

        async def call(base: str, key: str, body: dict[str, object]) -> httpx.Response:
            return await http.post(
                f"{base}/v1/chat/completions",
                json={"model": "gpt-4o", "messages": PROMPT, **body},
                headers={"authorization": f"Bearer {key}"},
            )

        probe = await call(base_a, free, {})  # what one call generates and costs
        tokens = probe.json()["usage"]["completion_tokens"]
        cost = Decimal(probe.headers["x-tollway-cost-usd"])
        assert 300 <= LIMIT / cost <= 800  # a burst of a few seconds

        async def client(base: str) -> None:
            while True:
                t0 = time.perf_counter()
                response = await call(base, secret, {"max_tokens": tokens})
                if response.status_code == 429:
                    refused.append(time.perf_counter())
                    return
                response.raise_for_status()
                cost = Decimal(response.headers["x-tollway-cost-usd"])
                served.append((t0, time.perf_counter(), cost))

        await asyncio.gather(*(client((base_a, base_b)[i % 2]) for i in range(CLIENTS)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the worker writes the last calls
            rows = await store.query(  # type: ignore[attr-defined]
                "SELECT count() AS n, toString(sum(cost_usd)) AS spend FROM calls"
                " WHERE key_id = 'k_shared' AND status = 'ok'"
            )
            if int(rows.rows[0]["n"]) >= len(served):
                break
            await asyncio.sleep(0.3)

    spend = Decimal(rows.rows[0]["spend"])
    assert int(rows.rows[0]["n"]) == len(served)
    assert spend == sum((c for _, _, c in served), Decimal(0))
    overshoot = (spend - LIMIT) / cost
    total = Decimal(0)
    in_flight = 0
    for _, finished, c in sorted(served, key=lambda s: s[1]):
        total += c
        if total >= LIMIT:
            in_flight = sum(1 for s, f, _ in served if s <= finished < f)
            break
    first = sum((c for _, f, c in served if f <= min(refused)), Decimal(0))
    print(
        f"\nshared holds: {len(served)} calls served, spend {spend} of {LIMIT} USD, overshoot "
        f"{overshoot:.1f} calls ({100 * (spend - LIMIT) / LIMIT:.1f} %), {in_flight} in flight "
        f"at the crossing, first refusal at {100 * first / LIMIT:.1f} %"
    )
    # each proxy counts the other's reservations within a publish interval and a record's
    # trip through the broker: what they admit meanwhile is at most about the calls in flight
    assert spend < LIMIT + (CLIENTS + 4) * cost, f"overshoot {overshoot:.1f} calls"
