"""What does tollway add to a call? The same load against an upstream directly and through
`tollway serve --role proxy` (which also publishes one CallEvent per call to Kafka).

Baseline: the upstream called directly, in the same run. The matrix: concurrency 1, 64 and 512,
plain and streamed (`stream: true`), an upstream answering at once and one answering after
1,500 ms; at 1,500 ms the most clients also start spread over that delay (`512 spread`: each
client's first call at a random moment within it), not all in the same millisecond, which with
an upstream this exact keeps them in lockstep; tollway with 1 and with 2 worker processes. Reported per cell: calls/s and p50/p99
latency directly and through tollway, the throughput ratio, the added p50/p99, failures, and
tollway's CPU time per call. Then the targets of the router issue, met or missed, and a check
that every call's event reached Kafka exactly once (one record per event id). Each run starts
once the proxy has finished the calls the previous one left in flight (`_settle`).

A second baseline shows what a proxy with no logic costs on the same libraries: the same
cells through `benchmarks/passthrough.py`, a uvicorn app that relays each call on tollway's
upstream client and does nothing else (none of tollway's tuning), with as many worker processes
as tollway's largest run. tollway minus pass-through is what the gateway adds over it.

The load generator is `wrk` (keep-alive connections, a Lua body) when it is installed —
`apt-get install wrk` or `brew install wrk`. Without it, an aiohttp load generator in this
process stands in, with a note: it shares this process's CPU with nothing else but is slower
than wrk, so its figures understate what the proxy can do.

Run: `python -m benchmarks proxy_overhead` (about 8 to 11 minutes), or
`python -m benchmarks.proxy_overhead --workers 2 --seconds 3 --slow-seconds 5`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from benchmarks.load_generators import (
    FAST_MODEL,
    SLOW_MODEL,
    SLOW_MS,
    AiohttpLoad,
    Cell,
    Result,
    Wrk,
)
from benchmarks.passthrough import UPSTREAM_ENV as PASSTHROUGH_UPSTREAM_ENV
from benchmarks.proxy_report import Report, report_lines
from benchmarks.topic_records import TopicEnd, count_events
from tollway.broker import EmbeddedBroker, free_port
from tollway.ids import hash_key, new_key_secret
from tollway.topics import Topics

CONCURRENCY = (1, 64, 512)
NAMESPACE = "bench."
#: before each run the proxy must be quiet (`_settle`): windows of this length, each using
#: under this share of a core with no event acknowledged
SETTLE_WINDOW_S = 0.2
SETTLED_CPU = 0.1


@dataclass(frozen=True)
class Matrix:
    """The runs every target gets: the cells, by this load generator with this key."""

    load: Wrk | AiohttpLoad
    secret: str
    cells: list[Cell]
    seconds: float  # a run against the fast upstream
    slow_seconds: float  # a run against the slow one

    def duration(self, cell: Cell) -> float:
        """Staggered clients run longer by their start-up spread (in whole seconds, as wrk
        takes them), so that all of them are calling for as long as in the other cells."""
        seconds = self.slow_seconds if cell.upstream_ms else self.seconds
        return seconds + math.ceil(cell.stagger_ms / 1000)

    async def run(self, url: str, cell: Cell) -> Result:
        return await self.load.run(url, self.secret, cell, self.duration(cell))

    async def warm_up(self, url: str) -> Cell:
        """Connections and caches, not measured: a second at the largest concurrency."""
        warm = Cell(0, False, max(c.concurrency for c in self.cells))
        await self.load.run(url, self.secret, warm, 1.0)
        return warm


def _config(upstream_port: int, key_hash: str) -> dict[str, object]:
    def model(name: str) -> dict[str, object]:
        return {
            "name": name,
            "provider": "upstream",
            "family": "custom",
            "input_per_mtok": 0.15,
            "output_per_mtok": 0.60,
        }

    return {
        "providers": [
            {
                "name": "upstream",
                "type": "openai_compatible",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
            }
        ],
        "models": [model(FAST_MODEL), model(SLOW_MODEL)],
        "keys": [{"id": "k_bench", "hash": key_hash, "business_line": "bench", "project": "p"}],
    }


async def _wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as answer:
                    await answer.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a process and its children still running (Linux)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        pids = [pid, *_children(pid)]
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    except (OSError, ValueError, IndexError):
        return None
    return total


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


async def _settle(pid: int, topic: TopicEnd, quiet_s: float, timeout_s: float = 30.0) -> None:
    """Wait until the proxy has finished the previous run: a load generator that stops leaves
    up to one call per connection in flight (512 after a run at concurrency 512), which the
    proxy still serves (and bills) with nobody waiting; measured from that moment, a run at
    concurrency 1 would queue its first calls behind them (hundreds of ms, which wrk's
    correction for coordinated omission turns into the whole p99), and count their CPU time
    and events as its own. Settled: `quiet_s` (longer than the previous run's upstream takes
    to answer, plus a second for a broker slow to acknowledge) in which the proxy used under
    a tenth of a core and Kafka acknowledged no event."""
    deadline = time.monotonic() + timeout_s
    cpu, records = _cpu_seconds(pid), await topic.records()
    quiet = 0.0
    while quiet < quiet_s and time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_WINDOW_S)
        cpu_now, records_now = _cpu_seconds(pid), await topic.records()
        if cpu is None or cpu_now is None:
            return
        idle = cpu_now - cpu < SETTLE_WINDOW_S * SETTLED_CPU and records_now == records
        quiet = quiet + SETTLE_WINDOW_S if idle else 0.0
        cpu, records = cpu_now, records_now


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def start_proxy(
    bootstrap: str, config_path: Path, data_dir: Path, workers: int = 1
) -> tuple[subprocess.Popen[bytes], int]:
    """`tollway serve --role proxy` on a free port, events to the benchmark's namespace."""
    port = free_port()
    env = {
        **os.environ,
        "TOLLWAY_KAFKA_BOOTSTRAP": bootstrap,
        "TOLLWAY_CONFIG": str(config_path),
        "TOLLWAY_PORT": str(port),
        "TOLLWAY_DATA_DIR": str(data_dir),
        "TOLLWAY_TOPIC_NAMESPACE": NAMESPACE,
    }
    command = [sys.executable, "-m", "tollway.cli.main", "serve", "--role", "proxy"]
    command += ["--log-level", "warning", "--workers", str(workers)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL), port


# --- the run -----------------------------------------------------------------------------------


async def run(
    workers: tuple[int, ...] = (1, 2),
    seconds: float = 5.0,
    slow_seconds: float = 8.0,
    concurrency: tuple[int, ...] = CONCURRENCY,
) -> list[str]:
    secret = new_key_secret()
    upstream_port = free_port()
    cells = [
        Cell(upstream_ms, stream, c)
        for upstream_ms in (0, SLOW_MS)
        for stream in (False, True)
        for c in concurrency
    ]
    if max(concurrency) > 1:  # the most clients against the slow upstream, started spread
        cells += [
            Cell(SLOW_MS, stream, max(concurrency), staggered=True) for stream in (False, True)
        ]
    with tempfile.TemporaryDirectory() as tmp:
        load: Wrk | AiohttpLoad = (
            Wrk(Path(tmp) / "bench.lua") if shutil.which("wrk") else AiohttpLoad()
        )
        report = Report(load.name)
        matrix = Matrix(load, secret, cells, seconds, slow_seconds)
        config_path = Path(tmp) / "tollway.yaml"
        config_path.write_text(yaml.safe_dump(_config(upstream_port, hash_key(secret))))
        async with EmbeddedBroker() as broker:
            upstream = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.upstream",
                    str(upstream_port),
                    "--slow-ms",
                    str(SLOW_MS),
                ]
            )
            try:
                direct_url = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
                await _wait_http(f"http://127.0.0.1:{upstream_port}/")
                for cell in cells:
                    report.direct[cell] = await matrix.run(direct_url, cell)
                report.passthrough_workers = max(workers)
                report.passthrough = await _through_passthrough(matrix, direct_url, max(workers))
                for count in workers:
                    report.proxied[count] = await _through_tollway(
                        matrix, broker.bootstrap, config_path, Path(tmp), count
                    )
                report.proxied_calls = sum(
                    r.calls for by_cell in report.proxied.values() for r in by_cell.values()
                )
                report.events = await count_events(broker.bootstrap, Topics(NAMESPACE).calls)
            finally:
                _stop(upstream)
    return report_lines(report, cells)


async def _through_passthrough(
    matrix: Matrix, upstream_url: str, workers: int
) -> dict[Cell, Result]:
    """The cells through the do-nothing proxy, warmed up as tollway is; between runs, the
    previous run's upstream delay and a second, for the calls it left in flight."""
    port = free_port()
    env = {**os.environ, PASSTHROUGH_UPSTREAM_ENV: upstream_url}
    command = [sys.executable, "-m", "benchmarks.passthrough", str(port)]
    command += ["--workers", str(workers)]
    proxy = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    results: dict[Cell, Result] = {}
    try:
        await _wait_http(f"http://127.0.0.1:{port}/")
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        previous = await matrix.warm_up(url)
        for cell in matrix.cells:
            await asyncio.sleep(previous.upstream_ms / 1000 + 1.0)
            previous = cell
            results[cell] = await matrix.run(url, cell)
    finally:
        _stop(proxy)
    return results


async def _through_tollway(
    matrix: Matrix, bootstrap: str, config_path: Path, tmp: Path, workers: int
) -> dict[Cell, Result]:
    proxy, port = start_proxy(bootstrap, config_path, tmp / f"proxy-{workers}", workers)
    results: dict[Cell, Result] = {}
    try:
        await _wait_http(f"http://127.0.0.1:{port}/healthz")
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        previous = await matrix.warm_up(url)
        async with TopicEnd(bootstrap, Topics(NAMESPACE).calls) as topic:
            for cell in matrix.cells:
                await _settle(proxy.pid, topic, quiet_s=previous.upstream_ms / 1000 + 1.0)
                previous = cell
                records_before, cpu_before = await topic.records(), _cpu_seconds(proxy.pid)
                result = await matrix.run(url, cell)
                cpu_after, records_after = _cpu_seconds(proxy.pid), await topic.records()
                if cpu_before is not None and cpu_after is not None and result.calls:
                    result.cpu_us_per_call = (cpu_after - cpu_before) / result.calls * 1e6
                if result.calls:
                    result.published_per_call = (records_after - records_before) / result.calls
                results[cell] = result
    finally:
        _stop(proxy)  # a graceful stop: every worker flushes its events to Kafka
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to measure (1,2)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per run, 0 ms upstream")
    parser.add_argument("--slow-seconds", type=float, default=8.0, help="per run, 1500 ms")
    parser.add_argument("--concurrency", default="1,64,512")
    args = parser.parse_args()
    lines = asyncio.run(
        run(
            workers=tuple(int(w) for w in args.workers.split(",")),
            seconds=args.seconds,
            slow_seconds=args.slow_seconds,
            concurrency=tuple(int(c) for c in args.concurrency.split(",")),
        )
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
