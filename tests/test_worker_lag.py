"""`/readyz` of a worker reports its lag — call events on the topic not yet in the ledger — and
turns not-ready above `ready_max_lag`. Real Tansu and chDB: the lag is computed from the
broker's end offsets against what the sink wrote and what the group committed."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from analytics.ledger import Ledger
from analytics.migrate import migrate
from ingest.ledger_sink import RawMessage
from ingest.worker import LedgerWorker
from tollway.config import load_config
from tollway.events import CallEvent
from tollway.kafka import ensure_topics
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings
from tollway.topics import Topics

from .pipeline import produce

pytestmark = pytest.mark.integration


def _events(n: int) -> list[CallEvent]:
    return [
        CallEvent(ts=datetime.now(UTC), business_line="lag", key_id=f"k_{i % 3}",
                  cost_usd=Decimal("0.001"))
        for i in range(n)
    ]  # fmt: skip


async def _read(bootstrap: str, topic: str, n: int) -> list[RawMessage]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    messages: list[RawMessage] = []
    try:
        while len(messages) < n:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                messages += [RawMessage(r.value, r.topic, r.partition, r.offset) for r in records]
    finally:
        await consumer.stop()
    return messages


async def test_lag_counts_what_the_ledger_lacks_and_gates_readiness(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path
) -> None:
    topics = Topics(namespace)
    await ensure_topics(kafka_bootstrap, topics.specs())
    await migrate(store)
    await produce(kafka_bootstrap, topics.calls, _events(300))
    settings = Settings(topic_namespace=namespace, data_dir=tmp_path, ready_max_lag=150)
    worker = LedgerWorker(settings, kafka_bootstrap, Ledger(store))  # not consuming
    try:
        assert await worker.lag() == 300

        # the real sink writes some of them (no commit yet): only the rest is lag
        messages = await _read(kafka_bootstrap, topics.calls, 300)
        written = [m for m in messages if m.partition == messages[0].partition]
        await worker.sink.process(written)
        assert await worker.lag() == 300 - len(written)

        app = build_app(
            Runtime(settings=settings, config=load_config(None), bootstrap=kafka_bootstrap,
                    roles=frozenset({"worker"}), store=store)
        )  # fmt: skip
        app.state.store, app.state.worker = store, worker  # what the lifespan would set
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
            body = response.json()
            assert body["lag"] == {"messages": 300 - len(written), "max": 150}
            expected = 200 if 300 - len(written) <= 150 else 503
            assert response.status_code == expected
            assert body["checks"]["lag"] == ("ok" if expected == 200 else "behind")

            await worker.sink.process([m for m in messages if m not in written])
            response = await client.get("/readyz")
            assert response.status_code == 200
            assert response.json()["lag"]["messages"] == 0
    finally:
        await worker.close_lag_reader()
        await worker._producer.stop()  # created with the worker, never started here


async def test_a_running_worker_catches_up_to_zero_lag(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path
) -> None:
    settings = Settings(topic_namespace=namespace, data_dir=tmp_path,
                        kafka_session_timeout_s=3.0, sink_batch_seconds=0.1)  # fmt: skip
    runtime = Runtime(settings=settings, config=load_config(None), bootstrap=kafka_bootstrap,
                      roles=frozenset({"worker", "analytics"}), store=store)  # fmt: skip
    async with serving(build_app(runtime)) as base, httpx.AsyncClient() as client:
        await produce(kafka_bootstrap, Topics(namespace).calls, _events(400))
        deadline, body = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            response = await client.get(f"{base}/readyz")
            body = response.json()
            if response.status_code == 200 and body.get("lag", {}).get("messages") == 0:
                break
            await asyncio.sleep(0.2)
        assert body["lag"]["messages"] == 0, body
        assert body["status"] == "ready"
        count = await store.query("SELECT count() AS n FROM calls")
        assert int(count.rows[0]["n"]) == 400
