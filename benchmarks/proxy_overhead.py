"""What does tollway add to a call? The same load against an upstream directly and through
`tollway serve --role proxy` (which also publishes one CallEvent per call to Kafka).

Baseline: the upstream called directly, in the same run. Reported: throughput and latency
quantiles for both, the ratios tollway/direct, and the added latency in milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from tollway.broker import EmbeddedBroker, free_port
from tollway.ids import hash_key, new_key_secret

BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "hello " * 100}]}


@dataclass
class Run:
    name: str
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def q(self, p: float) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[int(p) - 1]


async def _wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def _load(name: str, url: str, key: str, requests: int, concurrency: int) -> Run:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        headers = {"authorization": f"Bearer {key}"}
        for _ in range(min(50, requests)):  # warm-up: connections, caches
            await client.post(url, json=BODY, headers=headers)

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                t0 = time.perf_counter()
                response = await client.post(url, json=BODY, headers=headers)
                latencies.append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Run(name, time.perf_counter() - start, latencies)


def _config(upstream_port: int, key_hash: str) -> dict[str, object]:
    return {
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
                "family": "custom",
                "input_per_mtok": 0.15,
                "output_per_mtok": 0.60,
            }
        ],
        "keys": [{"id": "k_bench", "hash": key_hash, "business_line": "bench", "project": "p"}],
    }


async def run(requests: int = 2000, concurrency: int = 16) -> list[str]:
    upstream_port, proxy_port = free_port(), free_port()
    secret = new_key_secret()
    processes: list[subprocess.Popen[bytes]] = []
    async with EmbeddedBroker() as broker:
        with tempfile.TemporaryDirectory() as tmp:
            config_path = Path(tmp) / "tollway.yaml"
            config_path.write_text(yaml.safe_dump(_config(upstream_port, hash_key(secret))))
            try:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "benchmarks.upstream", str(upstream_port)]
                    )
                )
                env = {
                    **os.environ,
                    "TOLLWAY_KAFKA_BOOTSTRAP": broker.bootstrap,
                    "TOLLWAY_CONFIG": str(config_path),
                    "TOLLWAY_PORT": str(proxy_port),
                    "TOLLWAY_DATA_DIR": tmp,
                    "TOLLWAY_TOPIC_NAMESPACE": "bench.",
                }
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "tollway.cli.main",
                            "serve",
                            "--role",
                            "proxy",
                            "--log-level",
                            "warning",
                        ],
                        env=env,
                        stdout=subprocess.DEVNULL,
                    )
                )
                await _wait_http(f"http://127.0.0.1:{upstream_port}/v1/chat/completions")
                await _wait_http(f"http://127.0.0.1:{proxy_port}/healthz")
                direct = await _load(
                    "direct",
                    f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
                    secret,
                    requests,
                    concurrency,
                )
                proxied = await _load(
                    "tollway",
                    f"http://127.0.0.1:{proxy_port}/v1/chat/completions",
                    secret,
                    requests,
                    concurrency,
                )
            finally:
                for process in processes:
                    process.terminate()
                    process.wait(10)
    lines = [
        f"proxy overhead: {requests} chat calls, concurrency {concurrency}, "
        "upstream answers instantly (worst case for relative overhead)",
        f"  {'':8} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8}",
    ]
    for r in (direct, proxied):
        lines.append(f"  {r.name:8} {r.rps:9.0f} {r.q(50):8.2f} {r.q(99):8.2f}")
    lines.append(
        f"  ratio tollway/direct: throughput {proxied.rps / direct.rps:.2f}x, "
        f"p50 {proxied.q(50) / direct.q(50):.2f}x, p99 {proxied.q(99) / direct.q(99):.2f}x; "
        f"added p50 {proxied.q(50) - direct.q(50):.2f} ms"
    )
    return lines


if __name__ == "__main__":
    print("\n".join(asyncio.run(run())))
