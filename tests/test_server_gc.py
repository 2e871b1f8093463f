"""A served tollway process tunes its garbage collector once started (tollway/server.py):
start-up's objects frozen out of collections and the young generation collected rarely. The
ledger worker's throughput depends on it (a collection every 700 allocations traverses the
batch being written again and again), and so does the ingest benchmark, which applies the
same `tune_gc` to measure the worker as it runs."""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from tollway.broker import free_port
from tollway.server import GC_YOUNG_THRESHOLD, serve


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
async def test_serve_tunes_the_collector_once_started() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)  # CPython's defaults, whatever ran before
    seen: dict[str, int] = {}

    def started() -> None:
        seen["threshold"] = gc.get_threshold()[0]
        seen["frozen"] = gc.get_freeze_count()
        os.kill(os.getpid(), signal.SIGTERM)  # serve() owns SIGTERM: a graceful stop

    await serve(FastAPI(), "127.0.0.1", free_port(), on_started=started)

    assert seen["threshold"] == GC_YOUNG_THRESHOLD > 700
    assert seen["frozen"] > 10_000  # the modules and objects start-up created
