"""Exactly once across a worker crash: `tollway serve --role worker,analytics` is SIGKILLed in
the middle of a stream of several thousand call events and restarted on the same data dir.

A SIGKILL is the case a graceful stop never exercises: batches written to the ledger but not
yet committed are redelivered, spend counted into the Faust table may or may not have reached
its changelog. The ledger must still hold every event exactly once, and the budget spend the
worker publishes must converge to the ledger's sum — the two invariants the proxies rely on.
The worker runs as a real subprocess (the kill must be a real process death), against the
session's Tansu broker and its own chDB directory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from tollway.broker import free_port
from tollway.events import CallEvent
from tollway.kafka import new_producer
from tollway.topics import Topics

pytestmark = pytest.mark.integration

TOLLWAY = [sys.executable, "-m", "tollway.cli.main"]
EVENTS = 6000
ADMIN_KEY = "tw_admin_crash_test_key"
BUDGET_SQL = "status = 'ok' AND business_line = 'marketing'"


class Worker:
    """One `tollway serve --role worker,analytics` process; its output goes to a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*TOLLWAY, "serve", "--role", "worker,analytics", "--log-level", "warning"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


async def _ready(worker: Worker, base: str, timeout_s: float = 90.0) -> None:
    """Until `/readyz` answers 200; a start that dies (chDB still settling after the SIGKILL
    of its previous owner) is retried, as a supervisor would."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            if not worker.alive():
                await asyncio.sleep(1.0)
                worker.start()
            try:
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError("the worker did not become ready:\n" + worker.output())


async def _sql(client: httpx.AsyncClient, base: str, query: str) -> dict[str, object]:
    response = await client.post(
        f"{base}/v1/analytics/sql",
        json={"query": query},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    )
    response.raise_for_status()
    return response.json()["data"][0]  # type: ignore[no-any-return]


async def _published_spend(bootstrap: str, topic: str, budget_id: str) -> Decimal:
    """Sum over partitions of the latest status record per key, as the proxies compute it."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    latest: dict[bytes, dict[str, object]] = {}
    try:
        while batch := await consumer.getmany(timeout_ms=800):
            for records in batch.values():
                for record in records:
                    latest[record.key] = orjson.loads(record.value)
    finally:
        await consumer.stop()
    return sum(
        (Decimal(str(s["spend_usd"])) for s in latest.values() if s["budget_id"] == budget_id),
        Decimal(0),
    )


async def _uncommitted(
    bootstrap: str, topic: str, group_id: str
) -> dict[int, tuple[int | None, int]]:
    """The partitions of `topic` whose offset committed by the group is short of their end,
    as {partition: (committed, end)}. The end is read from the records themselves (Tansu's
    ListOffsets answers the start of the last batch, see `LedgerWorker._calls_end_offsets`)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = dict.fromkeys(tps, 0)
        while batch := await consumer.getmany(timeout_ms=800):
            for tp, records in batch.items():
                ends[tp] = max(ends[tp], records[-1].offset + 1)
        behind: dict[int, tuple[int | None, int]] = {}
        for tp, end in ends.items():
            committed = await consumer.committed(tp)
            if end and committed != end:
                behind[tp.partition] = (committed, end)
        return behind
    finally:
        await consumer.stop()


def _events(n: int) -> list[CallEvent]:
    return [
        CallEvent(
            ts=datetime.now(UTC),
            business_line=["marketing", "support", "research"][i % 3],
            project=["seo", "campaigns"][i % 2],
            key_id=f"k_{i % 7}",
            model="gpt-4o-mini",
            cost_usd=Decimal("0.000137") * (1 + i % 13),
            status="error" if i % 11 == 10 else "ok",
        )
        for i in range(n)
    ]


@pytest.fixture
async def worker_env(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    config = tmp_path / "tollway.yaml"
    budget = {"id": "crash-mkt", "scope": {"business_line": "marketing"}, "limit_usd": 1_000_000}
    config.write_text(yaml.safe_dump({"budgets": [budget]}))
    yield {
        **os.environ,
        "TOLLWAY_DATA_DIR": str(tmp_path / "data"),
        "TOLLWAY_CONFIG": str(config),
        "TOLLWAY_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "TOLLWAY_TOPIC_NAMESPACE": namespace,
        "TOLLWAY_ADMIN_KEY": ADMIN_KEY,
        "TOLLWAY_PORT": str(free_port()),
        "TOLLWAY_KAFKA_SESSION_TIMEOUT_S": "3",
        "TOLLWAY_SINK_BATCH_SECONDS": "0.2",
        # the periodic reconciliation is what repairs a crash between ledger insert and count
        "TOLLWAY_BUDGET_RECONCILE_SECONDS": "2",
    }


async def test_sigkill_mid_stream_leaves_every_event_once(
    worker_env: dict[str, str], kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    topics = Topics(namespace)
    base = f"http://127.0.0.1:{worker_env['TOLLWAY_PORT']}"
    worker = Worker(worker_env, tmp_path / "worker.log")
    events = _events(EVENTS)
    expected_spend = sum(
        (e.cost_usd for e in events if e.status == "ok" and e.business_line == "marketing"),
        Decimal(0),
    )
    worker.start()
    try:
        await _ready(worker, base)
        producer = new_producer(kafka_bootstrap)
        await producer.start()

        async def produce() -> None:  # a steady stream, ~3,000 events/s, so the kill lands mid-way
            for i in range(0, EVENTS, 150):
                for event in events[i : i + 150]:
                    await producer.send(topics.calls, event.encode(), key=event.partition_key)
                await producer.flush()
                await asyncio.sleep(0.05)

        stream = asyncio.create_task(produce())
        async with httpx.AsyncClient(timeout=30) as client:
            killed_at = 0
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                row = await _sql(client, base, "SELECT count() AS n FROM calls")
                killed_at = int(str(row["n"]))
                if killed_at >= EVENTS // 4:
                    break
                await asyncio.sleep(0.05)
            worker.kill()
            await stream
            await producer.stop()
            assert 0 < killed_at < EVENTS, f"the kill did not land mid-stream ({killed_at})"

            worker.start()  # same data dir, same namespace: same ledger, same consumer group
            await _ready(worker, base)
            deadline = time.monotonic() + 120
            counts: dict[str, object] = {}
            while time.monotonic() < deadline:
                counts = await _sql(
                    client, base, "SELECT count() AS n, uniqExact(event_id) AS u FROM calls"
                )
                if int(counts["n"]) >= EVENTS:  # type: ignore[call-overload]
                    break
                await asyncio.sleep(0.3)
            await asyncio.sleep(1.5)  # a late duplicate would show up here
            counts = await _sql(
                client, base, "SELECT count() AS n, uniqExact(event_id) AS u FROM calls"
            )
            assert (int(counts["n"]), int(counts["u"])) == (EVENTS, EVENTS), worker.output()  # type: ignore[call-overload]

            ledger = await _sql(
                client, base, f"SELECT toString(sum(cost_usd)) AS s FROM calls WHERE {BUDGET_SQL}"
            )
            ledger_spend = Decimal(str(ledger["s"]))
            assert ledger_spend == expected_spend

            # every message acknowledged, not only every event in the ledger: a message the
            # worker skipped whose event was already written before the kill leaves the count
            # right, but stops the group's committed offset at it for good
            behind: dict[int, tuple[int | None, int]] = {}
            deadline = time.monotonic() + 15  # Faust commits every second
            while time.monotonic() < deadline:
                behind = await _uncommitted(
                    kafka_bootstrap, topics.calls, f"{namespace}tollway-ledger"
                )
                if not behind:
                    break
                await asyncio.sleep(0.5)
            assert not behind, f"committed offsets short of the end (committed, end): {behind}"

            published = Decimal(-1)
            deadline = time.monotonic() + 30  # reconciliation runs every 2 s
            while time.monotonic() < deadline:
                published = await _published_spend(
                    kafka_bootstrap, topics.budget_status, "crash-mkt"
                )
                if published == ledger_spend:
                    break
                await asyncio.sleep(0.5)
            assert published == ledger_spend, worker.output()
    finally:
        if worker.alive():
            worker.kill()
