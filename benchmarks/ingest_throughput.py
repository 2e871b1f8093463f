"""How fast does one worker turn the calls topic into the ledger, and how fresh is the rollup?

Throughput: a backlog of `events` CallEvents on the calls topic is drained by the real worker
(`LedgerWorker`: Faust agent → `LedgerSink` → exactly-once `Ledger.insert_new` → budget spend),
against a baseline measured in the same run: a raw aiokafka consumer writing batches as large as
the worker's largest write (`batch`; by default the worker's `sink_max_batch`: under a backlog
the worker's writes grow to it, ingest/group_commit.py) with the ledger's row encoding and
committing — no Faust, no duplicate check, no budgets. The ratio is what the worker's
guarantees cost. Both run `rounds` times, each on a broker and database of its own, and the
medians are reported: on a shared machine single runs swing by a third.

Freshness: then a steady `rate` events/s for `fresh_seconds`, and the time from an event's send
to its visibility in `calls_hourly` (the rollup the cost explorer reads). Events are grouped in
100 ms slots by their `project`, so the rollup — which only has sums — shows when each slot is
complete; an event's freshness is its slot's visibility time minus the event's send time.
Everything (broker aside) shares one process and the 2-core machine, as one worker would, and
the process's garbage collector is tuned as `tollway serve` tunes it once a role has started
(`tollway.server.tune_gc`; without it, the worker drained about a third fewer events a second).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from analytics.ledger import INSERT_SETTINGS, Ledger, ledger_lines
from analytics.migrate import migrate
from analytics.store.chdb_store import ChdbStore
from ingest.worker import LedgerWorker
from tollway.broker import EmbeddedBroker
from tollway.config import load_config
from tollway.config.schema import BudgetConfig, BudgetScope
from tollway.events import CallEvent, decode_call_event
from tollway.kafka import ensure_topics, new_producer
from tollway.server import tune_gc
from tollway.settings import Settings
from tollway.topics import Topics

BATCH = Settings().sink_max_batch


def _event(i: int, *, business_line: str | None = None, project: str | None = None) -> CallEvent:
    return CallEvent(
        ts=datetime.now(UTC),
        business_line=business_line or ["marketing", "support", "research", "legal"][i % 4],
        project=project or f"p{i % 7}",
        task_type=["chat", "summarisation", "classification"][i % 3],
        key_id=f"k_{i % 11}",
        provider="sim",
        model=["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku"][i % 3],
        input_tokens=200 + i % 500,
        output_tokens=50 + i % 200,
        cost_usd=Decimal("0.000123") + Decimal(i % 97) / 10**6,
    )


async def _produce(bootstrap: str, topics: list[str], events: list[CallEvent]) -> None:
    producer = new_producer(bootstrap, linger_ms=20)
    await producer.start()
    try:
        for n, event in enumerate(events):
            for topic in topics:
                await producer.send(topic, event.encode(), key=event.partition_key)
            if n % 5000 == 4999:
                await producer.flush()
        await producer.flush()
    finally:
        await producer.stop()


@dataclass(frozen=True)
class _Drain:
    """How fast a backlog went, and the process CPU (all its threads) it took an event:
    the CPU figure moves less than the rate when other processes take the cores."""

    rate: float
    cpu_us: float


async def _raw_consumer(
    bootstrap: str, topic: str, store: ChdbStore, total: int, batch: int
) -> _Drain:
    """The baseline: getmany until `batch` messages (or none left) → decode → insert →
    commit, one batch after the other."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="bench-raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=batch,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    tune_gc()  # as for the worker: the same process, the same collector
    done, started, cpu = 0, 0.0, 0.0
    try:
        while done < total:
            values: list[bytes | None] = []
            while len(values) < batch and done + len(values) < total:
                fetched = await consumer.getmany(timeout_ms=500, max_records=batch - len(values))
                got = [r.value for records in fetched.values() for r in records]
                if not got:
                    break
                if not started:
                    started, cpu = time.perf_counter(), time.process_time()
                values += got
            if not values:
                continue
            events = [(decode_call_event(v), 0) for v in values]
            await store.insert_lines("calls", ledger_lines(events), INSERT_SETTINGS)
            await consumer.commit()
            done += len(values)
        rate = done / (time.perf_counter() - started)
        return _Drain(rate, (time.process_time() - cpu) / done * 1e6)
    finally:
        await consumer.stop()


def _written(worker: LedgerWorker) -> int:
    return sum(offset + 1 for offset in worker.sink.written_offsets.values())


async def _until_written(worker: LedgerWorker, total: int, timeout_s: float = 600) -> _Drain:
    """Events/s from the first batch the worker wrote to the last (offsets are contiguous)."""
    deadline = time.monotonic() + timeout_s
    while _written(worker) == 0:
        if time.monotonic() > deadline:
            raise TimeoutError("the worker wrote nothing")
        await asyncio.sleep(0.01)
    first, started, cpu = _written(worker), time.perf_counter(), time.process_time()
    while _written(worker) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker wrote {_written(worker)} of {total}")
        await asyncio.sleep(0.01)
    rate = (total - first) / (time.perf_counter() - started)
    return _Drain(rate, (time.process_time() - cpu) / (total - first) * 1e6)


async def _freshness(
    bootstrap: str, topic: str, store: ChdbStore, rate: int, seconds: float
) -> list[float]:
    """Send `rate` events/s in 100 ms slots; return each event's send → rollup delay (ms)."""
    per_slot = max(1, rate // 10)
    slots = int(seconds * 10)
    sent: dict[str, list[float]] = {}
    visible: dict[str, float] = {}
    producer = new_producer(bootstrap)
    await producer.start()

    async def send() -> None:
        start = time.perf_counter()
        for slot in range(slots):
            await asyncio.sleep(max(0.0, start + slot / 10 - time.perf_counter()))
            name = f"fresh{slot}"
            stamps = sent.setdefault(name, [])
            for i in range(per_slot):
                event = _event(i, business_line="fresh", project=name)
                stamps.append(time.perf_counter())
                await producer.send(topic, event.encode(), key=event.partition_key)

    sender = asyncio.create_task(send())
    deadline = time.monotonic() + seconds + 60
    db = store.database
    try:
        while len(visible) < slots and time.monotonic() < deadline:
            result = await store.query(
                f"SELECT project, sum(calls) AS n FROM {db}.calls_hourly"
                " WHERE business_line = 'fresh' GROUP BY project"
            )
            now = time.perf_counter()
            for row in result.rows:
                name = str(row["project"])
                if name not in visible and int(row["n"]) >= per_slot:
                    visible[name] = now
            await asyncio.sleep(0.02)
        await sender
    finally:
        await producer.stop()
    if len(visible) < slots:
        raise TimeoutError(f"{slots - len(visible)} slots never became visible")
    return [(visible[name] - t) * 1000 for name, stamps in sent.items() for t in stamps]


def _worker(
    store: ChdbStore, bootstrap: str, namespace: str, tmp: Path, batch: int
) -> LedgerWorker:
    """The real worker role: Faust agent, sink, exactly-once ledger, one budget counted."""
    data_dir = tmp / namespace.rstrip(".")
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        topic_namespace=namespace,
        data_dir=data_dir,
        kafka_session_timeout_s=3.0,
        sink_max_batch=batch,
    )
    budget = BudgetConfig(
        id="bench-marketing",
        scope=BudgetScope(business_line="marketing"),
        limit_usd=Decimal(1_000_000),
    )
    config = load_config(None).model_copy(update={"budgets": [budget]})
    return LedgerWorker(settings, bootstrap, Ledger(store), config=config)


@dataclass(frozen=True)
class _Backlog:
    bootstrap: str
    topics: Topics
    store: ChdbStore


async def _count(store: ChdbStore) -> int:
    return int((await store.query("SELECT count() AS n FROM calls")).rows[0]["n"])


@asynccontextmanager
async def _backlog(tmp: Path, namespace: str, events: int) -> AsyncIterator[_Backlog]:
    """A broker of its own with `events` calls on its calls topic, and an empty ledger (its
    database dropped afterwards)."""
    topics = Topics(namespace)
    store = ChdbStore(tmp / "ch", namespace.rstrip(".").replace("-", "_"))
    async with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap, topics.specs())
        try:
            await migrate(store)
            await _produce(broker.bootstrap, [topics.calls], [_event(i) for i in range(events)])
            yield _Backlog(broker.bootstrap, topics, store)
        finally:
            await _drop(store)


async def _raw_round(tmp: Path, index: int, events: int, batch: int) -> _Drain:
    """The baseline: a fresh backlog drained by the raw consumer."""
    async with _backlog(tmp, f"bench-raw{index}.", events) as b:
        return await _raw_consumer(b.bootstrap, b.topics.calls, b.store, events, batch)


async def _worker_round(
    tmp: Path, index: int, events: int, batch: int, fresh: tuple[int, float] | None
) -> tuple[_Drain, list[float]]:
    """The worker: the same backlog drained, then, when `fresh` gives a rate and a duration,
    the freshness of a steady stream."""
    namespace = f"bench-worker{index}."
    async with _backlog(tmp, namespace, events) as b:
        worker = _worker(b.store, b.bootstrap, namespace, tmp, batch)
        delays: list[float] = []
        async with worker.running():
            tune_gc()  # what `tollway serve --role worker` does once the worker has started
            drain = await _until_written(worker, events)
            if fresh is not None:
                delays = await _freshness(b.bootstrap, b.topics.calls, b.store, *fresh)
        stored = await _count(b.store)
    expected = events + len(delays)
    assert stored == expected, f"ledger holds {stored} calls, expected {expected}"
    return drain, delays


def _summary(name: str, drains: list[_Drain], baseline: list[_Drain]) -> str:
    """Median rate and range; the median of the rounds' rate ratios to the baseline (each
    round's pair ran back to back); the median CPU an event."""
    rates = [d.rate for d in drains]
    ratio = statistics.median(d.rate / b.rate for d, b in zip(drains, baseline, strict=True))
    cpu = statistics.median(d.cpu_us for d in drains)
    return (
        f"  {name:40} {statistics.median(rates):9.0f} ({min(rates):6.0f} to {max(rates):6.0f})"
        f" {ratio:11.2f}x {cpu:16.1f}"
    )


async def _drop(store: ChdbStore) -> None:
    """No round's tables left behind to merge in the background of the next."""
    await store.command(f"DROP DATABASE IF EXISTS {store.database} SYNC")
    await store.close()


async def run(
    events: int = 40_000,
    batch: int = BATCH,
    rate: int = 1_000,
    fresh_seconds: float = 15.0,
    rounds: int = 3,
) -> list[str]:
    """`python -m benchmarks ingest_throughput [events [batch [rate [fresh_seconds [rounds]]]]]`

    Each round drains the same backlog twice, raw consumer then worker, each on a broker and
    database of its own (the embedded broker keeps every record in memory, and a fuller one
    is slower); single runs on a shared 2-core machine swing by a third, so the verdict is
    the median of the rounds' ratios. Freshness is measured on the last round's worker."""
    lines: list[str] = []
    raw: list[_Drain] = []
    through_worker: list[_Drain] = []
    delays: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(rounds):
            baseline = await _raw_round(Path(tmp), index, events, batch)
            last = index == rounds - 1
            fresh = (rate, fresh_seconds) if last else None
            worker, delays = await _worker_round(Path(tmp), index, events, batch, fresh)
            raw.append(baseline)
            through_worker.append(worker)
            lines.append(
                f"  round {index + 1}: raw {baseline.rate:7.0f}  worker {worker.rate:7.0f}"
                f"  {worker.rate / baseline.rate:5.2f}x   CPU µs an event: raw"
                f" {baseline.cpu_us:5.1f}  worker {worker.cpu_us:5.1f}"
            )
    q = statistics.quantiles(delays, n=100)
    return [
        f"ingest: a backlog of {events} call events, writes of up to {batch}, one worker process,"
        f" {rounds} rounds",
        f"  {'':40} {'events/s: median (range)':>28} {'vs baseline':>12} {'CPU µs an event':>16}",
        _summary("raw aiokafka consumer + insert", raw, raw),
        _summary("tollway worker (Faust, exactly-once)", through_worker, raw),
        *lines,
        f"freshness: {rate} events/s for {fresh_seconds:.0f} s, send → visible in calls_hourly",
        f"  p50 {q[49]:.0f} ms   p95 {q[94]:.0f} ms   max {max(delays):.0f} ms",
    ]


if __name__ == "__main__":
    print("\n".join(asyncio.run(run())))
