"""What does a response-cache hit cost the proxy, against a call that goes to the provider?

One `tollway serve --role proxy` process with `cache: {enabled: true}` in front of the fast
upstream (`benchmarks/upstream.py`, answering at once), wrk at concurrency 64 sending one
chat request over and over, plain. The baseline, in the same run and process: the same load
with `x-tollway-cache: skip`, so every call goes to the upstream (a miss costs what any call
costs, plus the cache key). Then with the cache used: after the first call, every call is a
hit. Rounds alternate skip and hit, 5 s each; reported per mode: calls/s, p50/p99 latency and
the proxy's CPU per call (medians of the rounds), and the hits the proxy counted
(`tollway_response_cache_lookups_total`), which must equal the hit rounds' calls.

Run: `python -m benchmarks response_cache [rounds]` (about 40 s with 3 rounds; wrk needed).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import yaml

from benchmarks.load_generators import Cell, Result, Wrk
from benchmarks.proxy_overhead import _config, _cpu_seconds, _stop, _wait_http, start_proxy
from tollway.broker import EmbeddedBroker, free_port
from tollway.ids import hash_key, new_key_secret

SECONDS = 5.0
CONCURRENCY = 64


async def run(rounds: int = 3) -> list[str]:
    if not shutil.which("wrk"):
        return ["response cache: skipped (wrk is not installed: apt-get install wrk)"]
    secret = new_key_secret()
    upstream_port = free_port()
    cell = Cell(0, False, CONCURRENCY)
    results: dict[str, list[tuple[Result, float]]] = {"skip": [], "use": []}
    with tempfile.TemporaryDirectory() as tmp:
        config = {**_config(upstream_port, hash_key(secret)), "cache": {"enabled": True}}
        config_path = Path(tmp) / "tollway.yaml"
        config_path.write_text(yaml.safe_dump(config))
        load = Wrk(Path(tmp) / "bench.lua")
        async with EmbeddedBroker() as broker:
            upstream = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.upstream", str(upstream_port)]
            )
            proxy, port = start_proxy(broker.bootstrap, config_path, Path(tmp) / "proxy")
            try:
                await _wait_http(f"http://127.0.0.1:{upstream_port}/")
                await _wait_http(f"http://127.0.0.1:{port}/healthz")
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                await load.run(url, secret, cell, 1.0)  # warm up (and the first, missed, answer)
                hits_before = await _hits(port)
                for _ in range(rounds):
                    for mode in ("skip", "use"):
                        cpu = _cpu_seconds(proxy.pid) or 0.0
                        result = await load.run(url, secret, cell, SECONDS, cache=mode)
                        used = (_cpu_seconds(proxy.pid) or 0.0) - cpu
                        results[mode].append((result, used / max(result.calls, 1) * 1e6))
                        await asyncio.sleep(1.0)  # the calls wrk left in flight
                hits = await _hits(port) - hits_before
            finally:
                _stop(proxy)
                _stop(upstream)
    return _report(results, hits)


async def _hits(port: int) -> int:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    found = re.search(r'^tollway_response_cache_lookups_total\{outcome="hit"\} (\S+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


def _report(results: dict[str, list[tuple[Result, float]]], hits: int) -> list[str]:
    def median(mode: str, value: str) -> float:
        runs = results[mode]
        pick = {
            "rps": lambda r: r[0].rps,
            "p50": lambda r: r[0].p50_ms,
            "p99": lambda r: r[0].p99_ms,
            "cpu": lambda r: r[1],
        }[value]
        return statistics.median(pick(r) for r in runs)

    lines = [
        f"response cache: one proxy process, wrk, {CONCURRENCY} clients, a 0 ms upstream, "
        f"{len(results['use'])} rounds of {SECONDS:g} s per mode (medians)",
        f"  {'mode':<24} {'calls/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU/call':>9} {'vs skip':>8}",
    ]
    base = median("skip", "rps")
    for mode, label in (("skip", "to the upstream (skip)"), ("use", "from the cache (hit)")):
        lines.append(
            f"  {label:<24} {median(mode, 'rps'):>8.0f} {median(mode, 'p50'):>8.2f} "
            f"{median(mode, 'p99'):>8.2f} {median(mode, 'cpu'):>7.0f}µs "
            f"{median(mode, 'rps') / base:>7.2f}x"
        )
    hit_calls = sum(r.calls for r, _ in results["use"])
    failures = sum(r.failures for runs in results.values() for r, _ in runs)
    lines.append(
        f"  hits counted by the proxy: {hits:,} for {hit_calls:,} calls answered in the hit "
        f"rounds (more: calls still in flight when wrk stopped); failures: {failures}"
    )
    return lines


if __name__ == "__main__":
    print("\n".join(asyncio.run(run(*(int(a) for a in sys.argv[1:])))))
