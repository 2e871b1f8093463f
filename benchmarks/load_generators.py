"""The load generators of the proxy benchmark: `wrk` with a Lua body when it is installed,
else an aiohttp client; both send one `Cell`'s request for a while and report a `Result`."""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

FAST_MODEL = "bench-model"  # the upstream answers at once
SLOW_MODEL = "bench-slow"  # the upstream answers after SLOW_MS
SLOW_MS = 1500
PROMPT = "hello " * 100

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOLLWAY_BENCH_KEY")
wrk.headers["x-tollway-cache"] = os.getenv("TOLLWAY_BENCH_CACHE")
wrk.body = os.getenv("TOLLWAY_BENCH_BODY")
local stagger_ms = tonumber(os.getenv("TOLLWAY_BENCH_STAGGER_MS") or "0")
local unstarted = tonumber(os.getenv("TOLLWAY_BENCH_CLIENTS") or "0")
if stagger_ms > 0 then
  -- each client's first call waits a random time within stagger_ms, later calls none: wrk
  -- asks for a delay before every call and starts a call's clock when it sends it
  math.randomseed(os.time())
  delay = function()
    if unstarted > 0 then
      unstarted = unstarted - 1
      return math.random(0, stagger_ms)
    end
    return 0
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %.0f %.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Cell:
    upstream_ms: int
    stream: bool
    concurrency: int
    #: the clients start spread over one upstream delay (each one's first call at a random
    #: moment within it), not all in the same millisecond: with an upstream that answers
    #: every call after exactly the same delay, clients that start together stay in lockstep
    #: for the whole run, and every wave of calls arrives at once
    staggered: bool = False

    @property
    def stagger_ms(self) -> int:
        return self.upstream_ms if self.staggered else 0

    @property
    def label(self) -> str:
        """The concurrency column: `512`, or `512 spread` for staggered clients."""
        return f"{self.concurrency} spread" if self.staggered else str(self.concurrency)

    @property
    def body(self) -> bytes:
        model = SLOW_MODEL if self.upstream_ms else FAST_MODEL
        request: dict[str, object] = {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
        }
        if self.stream:
            request["stream"] = True
        return orjson.dumps(request)


@dataclass
class Result:
    calls: int  # answered, whatever the status
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int  # non-2xx answers, socket errors and timeouts
    cpu_us_per_call: float | None = None
    #: through tollway: events acknowledged by Kafka during the run, per call answered
    published_per_call: float | None = None

    @property
    def rps(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


# --- load generators ---------------------------------------------------------------------------


class Wrk:
    name = "wrk"

    def __init__(self, script: Path) -> None:
        script.write_text(WRK_SCRIPT)
        self.script = script

    async def run(
        self, url: str, key: str, cell: Cell, seconds: float, cache: str = "skip"
    ) -> Result:
        """`cache`: the `x-tollway-cache` header (read only by a proxy whose cache is on)."""
        command = [
            "wrk",
            "-t1",
            f"-c{cell.concurrency}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(self.script),
            url,
        ]
        env = {
            **os.environ,
            "TOLLWAY_BENCH_KEY": key,
            "TOLLWAY_BENCH_BODY": cell.body.decode(),
            "TOLLWAY_BENCH_CACHE": cache,
            "TOLLWAY_BENCH_STAGGER_MS": str(cell.stagger_ms),
            "TOLLWAY_BENCH_CLIENTS": str(cell.concurrency),
        }
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        text = output.decode(errors="replace")
        line = next((x for x in text.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"wrk failed: {text[-2000:]}")
        calls, duration_us, *errors, p50_us, p99_us = (float(x) for x in line.split()[1:])
        return Result(
            calls=int(calls),
            seconds=duration_us / 1e6,
            p50_ms=p50_us / 1000,
            p99_ms=p99_us / 1000,
            failures=int(sum(errors)),
        )


class AiohttpLoad:
    """The stand-in when wrk is missing: closed-loop clients on keep-alive connections."""

    name = "aiohttp (wrk not installed)"

    async def run(self, url: str, key: str, cell: Cell, seconds: float) -> Result:
        latencies: list[float] = []
        failures = 0
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        connector = aiohttp.TCPConnector(limit=cell.concurrency)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            deadline = time.perf_counter() + seconds

            async def client() -> None:
                nonlocal failures
                await asyncio.sleep(random.uniform(0, cell.stagger_ms / 1000))
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    try:
                        async with session.post(url, data=cell.body, headers=headers) as answer:
                            await answer.read()
                            if answer.status >= 400:
                                failures += 1
                    except (aiohttp.ClientError, TimeoutError):
                        failures += 1
                        continue
                    latencies.append((time.perf_counter() - started) * 1000)

            start = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(cell.concurrency)))
            elapsed = time.perf_counter() - start
        latencies.sort()
        return Result(
            calls=len(latencies),
            seconds=elapsed,
            p50_ms=_quantile(latencies, 0.50),
            p99_ms=_quantile(latencies, 0.99),
            failures=failures,
        )


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


# --- processes ---------------------------------------------------------------------------------
