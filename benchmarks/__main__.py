"""Run every benchmark: `python -m benchmarks [name ...]` (or `make bench`)."""

from __future__ import annotations

import asyncio
import importlib
import sys

BENCHMARKS = [
    "proxy_overhead",
    "ledger_write",
    "analytics_queries",
    "ingest_throughput",
    "enforcement",
]


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        module = importlib.import_module(f"benchmarks.{name}")
        result = module.run()
        lines = asyncio.run(result) if asyncio.iscoroutine(result) else result
        print("\n".join(lines), flush=True)
        print(flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
