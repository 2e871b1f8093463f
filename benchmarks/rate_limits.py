"""Does a requests-a-minute limit hold across proxy replicas, and by how much is it passed? For
a key's rate limit, and for a model's provider quota (the same limiter and sharing; a model at
its quota with no other candidate is a 429 too).

`proxies` `tollway serve --role proxy` processes in front of the fast upstream
(`benchmarks/upstream.py`), one key with `limits: {requests_per_minute: LIMIT}` (or one model
with `quota: {requests_per_minute: LIMIT}`), and 32
closed-loop clients per proxy sending as fast as they are answered for RUN_S seconds, started
just after a minute begins, so the whole run falls in one window of the limiter (where the
sliding minute is exactly the window's count). Reported per setting: the calls admitted
against the limit, the overshoot in calls and in % of the limit, the refusals, and how soon
the limit was reached. The baseline, in the same run: one proxy, which admits exactly up to
the limit (its own counts are exact); with two, each learns the other's counts at most every
100 ms plus a record's trip through the broker, and admits within that time what it cannot
see yet.

A third limit, calls in flight (`max_parallel_requests: PARALLEL` on the key), runs against an
upstream answering in SLOW_MS: the clients pause 10 ms after a refusal, and the upstream
reports the most calls it held at once — while the first calls, sent by every client at once,
are held, and after they have ended. One proxy is the baseline; with two, a slot taken on one is seen by the
other within 100 ms plus a record's trip, so the first burst can take a slot on each.

Run: `python -m benchmarks rate_limits` (about 5 to 6 minutes: each minute-limit setting waits
for the next minute to begin).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from benchmarks.processes import Processes, wait_ready
from tollway.broker import EmbeddedBroker, free_port
from tollway.ids import hash_key, new_key_secret

LIMIT = 3000
RUN_S = 20.0
CLIENTS_PER_PROXY = 32
PARALLEL = 16
SLOW_MS = 100
PARALLEL_RUN_S = 10.0


async def run() -> list[str]:
    lines = [
        f"rate limits: one key (or one model's provider quota) limited to {LIMIT:,} requests a "
        f"minute, {CLIENTS_PER_PROXY} clients a proxy sending as fast as answered for "
        f"{RUN_S:g} s, within one minute window",
        f"  {'limit':>11} {'proxies':>7} | {'admitted':>8} {'over':>5} {'over %':>7} | "
        f"{'refused':>8} | {'limit reached after':>19}",
    ]
    for subject in ("key", "model quota"):
        for proxies in (1, 2):
            admitted, refused, reached = await _setting(proxies, subject)
            over = admitted - LIMIT
            lines.append(
                f"  {subject:>11} {proxies:>7} | {admitted:>8,} {over:>5} {over / LIMIT:>6.2%} | "
                f"{refused:>8,} | {reached:>17.2f} s"
            )
    lines += [
        f"calls in flight: the key limited to {PARALLEL} at once, an upstream answering in "
        f"{SLOW_MS} ms, {CLIENTS_PER_PROXY} clients a proxy for {PARALLEL_RUN_S:g} s",
        f"  {'proxies':>7} | {'admitted/s':>10} | {'peak, first calls':>18} "
        f"{'peak after':>10} | {'refused':>8}",
    ]
    for proxies in (1, 2):
        admitted, refused, (burst, steady) = await _setting(proxies, "in flight")
        rate = admitted / PARALLEL_RUN_S
        lines.append(f"  {proxies:>7} | {rate:>10,.0f} | {burst:>18} {steady:>10} | {refused:>8,}")
    return lines


async def _setting(proxies: int, subject: str) -> tuple[int, int, Any]:
    """Admitted, refused, and when the limit was first reached (calls in flight: the peaks in
    the first second and after it)."""
    secret = new_key_secret()
    limit = {"requests_per_minute": LIMIT}
    on_key = {"limits": limit} if subject == "key" else {}
    on_model: dict[str, object] = {"quota": limit} if subject == "model quota" else {}
    if subject == "in flight":
        on_key = {"limits": {"max_parallel_requests": PARALLEL}}
        on_model = {"upstream_name": "bench-slow"}  # answered after SLOW_MS
    upstream_port = free_port()
    config = {
        "providers": [
            {
                "name": "upstream",
                "type": "openai_compatible",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
            }
        ],
        "models": [
            {
                "name": "bench-model",
                "provider": "upstream",
                "input_per_mtok": 0.15,
                "output_per_mtok": 0.60,
                **on_model,
            }
        ],
        "keys": [
            {
                "id": "k_limited",
                "hash": hash_key(secret),
                "business_line": "bench",
                **on_key,
            }
        ],
    }
    with tempfile.TemporaryDirectory() as tmp, Processes(Path(tmp) / "log") as processes:
        config_path = Path(tmp) / "tollway.yaml"
        config_path.write_text(yaml.safe_dump(config))
        async with EmbeddedBroker() as broker:
            upstream = processes.start(
                "-m", "benchmarks.upstream", str(upstream_port), "--slow-ms", str(SLOW_MS)
            )
            await wait_ready(f"http://127.0.0.1:{upstream_port}/", upstream)
            urls = []
            for i in range(proxies):
                port = free_port()
                env = {**os.environ, "TOLLWAY_KAFKA_BOOTSTRAP": broker.bootstrap,
                       "TOLLWAY_CONFIG": str(config_path), "TOLLWAY_PORT": str(port),
                       "TOLLWAY_DATA_DIR": str(Path(tmp) / f"p{i}")}  # fmt: skip
                proxy = processes.start(
                    "-m", "tollway.cli.main", "serve", "--role", "proxy", "--log-level", "warning",
                    env=env,
                )  # fmt: skip
                await wait_ready(f"http://127.0.0.1:{port}/healthz", proxy)
                urls.append(f"http://127.0.0.1:{port}/v1/chat/completions")
            if subject == "in flight":
                peak = _PeakReader(f"http://127.0.0.1:{upstream_port}/peak")
                load = _load(urls, secret, PARALLEL_RUN_S, pause_s=0.01)
                first_calls_over = 2 * SLOW_MS / 1000 + 0.5  # the first burst's calls ended
                (admitted, refused, _), burst = await asyncio.gather(
                    load, peak.after(first_calls_over)
                )
                return admitted, refused, (burst, await peak.after(0))
            await _next_minute()
            return await _load(urls, secret, RUN_S)


class _PeakReader:
    """The upstream's peak of calls held since the previous reading."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def after(self, seconds: float) -> int:
        await asyncio.sleep(seconds)
        async with aiohttp.ClientSession() as session, session.get(self.url) as answer:
            return int((await answer.json())["peak"])


async def _next_minute() -> None:
    """Until a minute has just begun, so RUN_S seconds stay within it."""
    await asyncio.sleep(60 - time.time() % 60 + 0.5)


async def _load(
    urls: list[str], secret: str, run_s: float, pause_s: float = 0.0
) -> tuple[int, int, float]:
    """Admitted, refused, and when the first refusal came (`pause_s`: a client's pause after a
    refusal)."""
    body = {"model": "bench-model", "messages": [{"role": "user", "content": "hello"}]}
    headers = {"authorization": f"Bearer {secret}"}
    admitted = refused = 0
    reached: float | None = None
    started = time.monotonic()
    deadline = started + run_s

    async def client(session: aiohttp.ClientSession, url: str) -> None:
        nonlocal admitted, refused, reached
        while time.monotonic() < deadline:
            async with session.post(url, json=body, headers=headers) as answer:
                await answer.read()
                if answer.status == 200:
                    admitted += 1
                elif answer.status == 429:
                    refused += 1
                    reached = reached or time.monotonic() - started
                    await asyncio.sleep(pause_s)
                else:
                    raise RuntimeError(f"{answer.status}: {(await answer.text())[:300]}")

    connector = aiohttp.TCPConnector(limit=CLIENTS_PER_PROXY * len(urls))
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(
            *(client(session, url) for url in urls for _ in range(CLIENTS_PER_PROXY))
        )
    return admitted, refused, reached or float("nan")


if __name__ == "__main__":
    print("\n".join(asyncio.run(run())))
    sys.exit(0)
