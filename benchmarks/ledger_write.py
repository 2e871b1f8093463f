"""What does exactly-once cost? Ledger writes with the event_id check against plain inserts.

Baseline: the same rows inserted with a plain insert (no existence check), in the same run,
into a chDB ledger already holding `prefill` calls, in the batch size the worker uses (500).
Also measured: a redelivered batch (every id already present: the check answers, nothing is
inserted), the path a worker restart takes.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from analytics.ledger import INSERT_SETTINGS, Ledger, ledger_lines
from analytics.migrate import migrate
from analytics.store.chdb_store import ChdbStore
from tollway.events import CallEvent

BATCH = 500


def _events(n: int, start: datetime) -> list[CallEvent]:
    lines = ["marketing", "support", "research", "legal"]
    return [
        CallEvent(
            ts=start + timedelta(milliseconds=37 * i),
            business_line=lines[i % 4],
            project=f"p{i % 7}",
            task_type=["chat", "summarisation", "classification"][i % 3],
            key_id=f"k_{i % 11}",
            provider="sim",
            model=["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku"][i % 3],
            input_tokens=200 + i % 500,
            output_tokens=50 + i % 200,
            cost_usd=Decimal("0.000123") + Decimal(i % 97) / 10**6,
        )
        for i in range(n)
    ]


async def _time_batches(label: str, batches: list[list[CallEvent]], write) -> tuple[str, float]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for batch in batches:
        await write(batch)
    seconds = time.perf_counter() - start
    return label, sum(len(b) for b in batches) / seconds


async def run(calls: int = 50_000, prefill: int = 200_000) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        store = ChdbStore(Path(tmp), "bench")
        try:
            await migrate(store)
            ledger = Ledger(store)
            t0 = datetime(2026, 1, 1, tzinfo=UTC)
            for chunk in range(0, prefill, 50_000):
                rows = [(e, -1) for e in _events(50_000, t0 + timedelta(hours=chunk))]
                await store.insert_lines("calls", ledger_lines(rows), INSERT_SETTINGS)

            fresh_a = _events(calls, t0 + timedelta(days=10))
            fresh_b = _events(calls, t0 + timedelta(days=20))
            split = lambda events: [events[i : i + BATCH] for i in range(0, len(events), BATCH)]  # noqa: E731

            async def plain(batch: list[CallEvent]) -> None:
                lines = ledger_lines((e, -1) for e in batch)
                await store.insert_lines("calls", lines, INSERT_SETTINGS)

            baseline = await _time_batches("plain insert (baseline)", split(fresh_a), plain)
            once = await _time_batches("exactly-once write", split(fresh_b), ledger.write)
            replay = await _time_batches("redelivered batch", split(fresh_b), ledger.write)
            total = (await store.query("SELECT count() AS n FROM calls")).rows[0]["n"]
        finally:
            await store.close()
    assert int(total) == prefill + 2 * calls, "a redelivered batch must insert nothing"
    lines = [f"ledger writes: {calls} calls in batches of {BATCH}, {prefill} calls already stored"]
    for label, rate in (baseline, once, replay):
        lines.append(f"  {label:26} {rate:10.0f} calls/s   {rate / baseline[1]:.2f}x baseline")
    return lines


if __name__ == "__main__":
    print("\n".join(asyncio.run(run())))
