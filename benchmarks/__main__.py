"""Run every benchmark: `python -m benchmarks [name ...]` (or `make bench`)."""

from __future__ import annotations

import asyncio
import importlib
import sys

BENCHMARKS = [
    "proxy_overhead",
    "upstream_http2",
    "response_cache",
    "ledger_write",
    "analytics_queries",
    "ingest_throughput",
    "enforcement",
    "rate_limits",
    "routing_simulation",
    "guardrails",
    "dashboard_pages",
    "dashboard_browser",
]


def main(argv: list[str]) -> None:
    """Names run in order; a number after a name is passed to its `run` (e.g. the size:
    `python -m benchmarks analytics_queries 100000000`)."""
    plan: list[tuple[str, list[int]]] = []
    for arg in argv:
        if arg.isdigit() and plan:
            plan[-1][1].append(int(arg))
        else:
            plan.append((arg, []))
    for name, args in plan or [(name, []) for name in BENCHMARKS]:
        module = importlib.import_module(f"benchmarks.{name}")
        result = module.run(*args)
        lines = asyncio.run(result) if asyncio.iscoroutine(result) else result
        print("\n".join(lines), flush=True)
        print(flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
