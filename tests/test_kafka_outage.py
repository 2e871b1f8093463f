"""A Kafka outage under traffic: the proxy keeps answering, its events wait in memory and then in
the on-disk spool, and once the broker is back every call is in the ledger exactly once.

The test runs its own Tansu broker (it stops it) and keeps the proxy — a `proxy`-role app —
running throughout. Calls flow before the outage, during it (long enough for the producer's
sends to time out and the events to reach the spool, and for one streamed call to be
abandoned by its client), and while the broker comes back.

The embedded broker keeps everything in memory: it comes back empty, and whatever it had
acknowledged but the ledger worker had not yet consumed dies with it. That loss is the
broker's, not the proxy's (a real Kafka cluster keeps its log), so the test stops the worker —
which drains the calls topic into the ledger — a moment before it stops the broker, pausing new
calls meanwhile. The ledger worker is started again after the broker returns, as the consumer
group and its offsets are gone with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.pipeline import worker_app
from tollway.broker import EmbeddedBroker
from tollway.config.schema import KeyConfig, TollwayConfig
from tollway.ids import hash_key, new_key_secret
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings

pytestmark = pytest.mark.integration

CLIENTS = 4
OUTAGE_S = 14.0  # more than the producer's 10 s request timeout: the sends fail, events spool


def _config() -> TollwayConfig:
    price = {"input_per_mtok": 0.15, "output_per_mtok": 0.60}
    return TollwayConfig.model_validate(
        {
            "providers": [
                {"name": "sim", "type": "sim", "sim": {"latency_ms": 5}},
                {
                    "name": "sim-slow",
                    "type": "sim",
                    "sim": {"latency_ms": 5, "ms_per_output_token": 25, "output_tokens": 200},
                },
            ],
            "models": [
                {"name": "gpt-4o-mini", "provider": "sim", **price},
                {"name": "slow-mini", "provider": "sim-slow", **price},
            ],
        }
    )


@dataclass
class Traffic:
    """Clients calling the proxy in a loop while `flowing` is set; every answer's event id."""

    base_url: str
    secret: str
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    event_ids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    in_flight: int = 0
    stopped: bool = False

    async def client(self, n: int) -> None:
        sdk = openai.AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key=self.secret, max_retries=0)
        i = 0
        while not self.stopped:
            await self.flowing.wait()
            if self.stopped:
                break
            self.in_flight += 1
            clock = time.monotonic()
            try:
                raw = await sdk.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"client {n} call {i}: how is it?"}],
                )
                self.event_ids.append(raw.headers["x-tollway-event-id"])
                self.seconds.append(time.monotonic() - clock)
            except openai.APIError as exc:
                self.failures.append(repr(exc))
            finally:
                self.in_flight -= 1
            i += 1
            await asyncio.sleep(0.02)

    async def settled(self) -> None:
        while self.in_flight:
            await asyncio.sleep(0.01)


async def _abandon_a_stream(base_url: str, secret: str) -> str:
    """Read the first chunks of a long stream, then hang up; its event id."""
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "POST",
            f"{base_url}/v1/chat/completions",
            headers={"authorization": f"Bearer {secret}"},
            json={
                "model": "slow-mini",
                "stream": True,
                "messages": [{"role": "user", "content": "tell me a very long story"}],
            },
        ) as response,
    ):
        assert response.status_code == 200
        lines = 0
        async for _ in response.aiter_lines():
            lines += 1
            if lines >= 6:
                break
        return response.headers["x-tollway-event-id"]


async def _ledger_counts(store: Any) -> tuple[int, int]:
    row = (await store.query("SELECT count() AS n, uniqExact(event_id) AS u FROM calls")).rows[0]
    return int(row["n"]), int(row["u"])


async def _until_ledger_holds(store: Any, expected: int, timeout_s: float) -> tuple[int, int]:
    deadline = time.monotonic() + timeout_s
    counts = await _ledger_counts(store)
    while counts[1] < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        counts = await _ledger_counts(store)
    return counts


@contextlib.asynccontextmanager
async def _worker(
    bootstrap: str, namespace: str, store: Any, data_dir: Path, config: TollwayConfig
) -> AsyncIterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    async with serving(worker_app(bootstrap, namespace, store, data_dir, config)):
        yield


async def test_calls_flow_through_a_broker_outage_and_land_once_each(
    namespace: str, store: Any, tmp_path: Path
) -> None:
    config = _config()
    secret = new_key_secret()
    key = KeyConfig(id="k_outage", hash=hash_key(secret), business_line="eng", project="gw")
    broker = EmbeddedBroker()
    await broker.start()
    proxy_settings = Settings(
        topic_namespace=namespace,
        data_dir=tmp_path / "proxy",
        event_buffer=50,
        event_spool_after_s=1.0,
    )
    proxy = build_app(
        Runtime(
            settings=proxy_settings,
            config=config,
            bootstrap=broker.bootstrap,
            roles=frozenset({"proxy"}),
            extra_keys=[key],
            admin_key="tw-outage-admin",
        )
    )
    spool_dir = proxy_settings.event_spool_path / f"{namespace}tollway.calls.v1"
    timings: dict[str, float] = {}
    test_clock = time.monotonic()
    try:
        async with serving(proxy) as base_url:
            publisher = proxy.state.gateway.publisher
            traffic = Traffic(base_url, secret)
            clients = [asyncio.create_task(traffic.client(n)) for n in range(CLIENTS)]
            try:
                # 1. broker and worker up: calls land in the ledger
                async with _worker(broker.bootstrap, namespace, store, tmp_path / "w1", config):
                    traffic.flowing.set()
                    await asyncio.sleep(2.0)
                    traffic.flowing.clear()  # (see the module docstring)
                    await traffic.settled()
                    before = len(traffic.event_ids)
                    assert await _until_ledger_holds(store, before, 30) == (before, before)
                    assert await publisher.flush(10)
                    paused = time.monotonic()
                # 2. the outage: calls go on
                await broker.stop()
                traffic.flowing.set()
                timings["calls paused (s)"] = time.monotonic() - paused
                outage = time.monotonic()
                abandoned = await _abandon_a_stream(base_url, secret)
                await asyncio.sleep(OUTAGE_S)
                during = len(traffic.event_ids) - before
                assert during > 0 and not traffic.failures, traffic.failures
                assert publisher.spooled > 0
                assert list(spool_dir.glob("*.ndjson")), "the events did not reach the disk"
                spooled_at_peak = publisher.spooled

                # 3. the broker comes back empty on the same port; calls still flowing
                broker = EmbeddedBroker(port=broker.port)
                await broker.start()
                timings["outage (s)"] = time.monotonic() - outage
                back = time.monotonic()
                await asyncio.sleep(3.0)
                async with _worker(broker.bootstrap, namespace, store, tmp_path / "w2", config):
                    traffic.stopped = True
                    traffic.flowing.set()
                    await asyncio.gather(*clients)
                    assert not traffic.failures, traffic.failures
                    assert await publisher.flush(60)
                    timings["spool drained after the broker came back (s)"] = (
                        time.monotonic() - back
                    )
                    expected = {*traffic.event_ids, abandoned}
                    counts = await _until_ledger_holds(store, len(expected), 60)
                    await asyncio.sleep(1.5)  # a late duplicate would show here
                    counts = await _ledger_counts(store)
            finally:
                traffic.stopped = True
                traffic.flowing.set()
                for task in clients:
                    task.cancel()
    finally:
        await broker.stop()

    assert counts == (len(expected), len(expected))
    rows = (
        await store.query(
            "SELECT toString(event_id) AS id, http_status, error_code, output_tokens,"
            " toString(cost_usd) AS cost FROM calls"
        )
    ).rows
    assert {r["id"] for r in rows} == expected
    stream = next(r for r in rows if r["id"] == abandoned)
    assert (int(stream["http_status"]), stream["error_code"]) == (499, "client_disconnected")
    assert int(stream["output_tokens"]) > 0
    assert list(spool_dir.glob("*.ndjson")) == []
    timings["test (s)"] = time.monotonic() - test_clock
    print(
        f"\ncalls: {before} before, {during} during the outage, {len(expected)} in all "
        f"(+1 abandoned stream); {spooled_at_peak} spooled at the peak; "
        f"slowest answer {max(traffic.seconds):.3f}s; "
        + "; ".join(f"{k} {v:.1f}" for k, v in timings.items())
    )
    # a call that waited on Kafka would take the producer's 10 s request timeout
    assert max(traffic.seconds) < 5.0
