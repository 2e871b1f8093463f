"""Cost-explorer pages (Streamlit) rendered against the analytics API on N synthetic calls.

The calls are those of benchmarks/analytics_queries.py (same generator; `TOLLWAY_BENCH_DIR`
reuses a kept directory of the same size), every part merged. The analytics role's app
(`tollway.service.build_app`, role `analytics`, on that chDB store) is served by uvicorn on a
loopback port, and each page is rendered by Streamlit's AppTest against it with an admin key —
the dashboard's own code path: its httpx client, its pages, its charts. The dashboard caches API
answers for 15 s, so the cache is cleared before every render: each time includes every API
call the page makes. Reported: median and max seconds of 3 renders per page, and the seconds
the page's API calls took on the server side (summed), so page time splits into data and
rendering. The server runs in the same process as AppTest (they share the GIL), which makes the
times an upper bound; the routing-stats publisher of the analytics role (which needs Kafka) is
not started.

Not part of the test suite: `python -m benchmarks dashboard_pages [ROWS]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response

from analytics.store import ChdbStore
from benchmarks.analytics_queries import DEFAULT_ROWS, bench_store, merge_all
from tollway.broker import free_port
from tollway.config import load_config
from tollway.config.schema import BudgetConfig, BudgetScope, TollwayConfig
from tollway.service import Runtime, build_app
from tollway.settings import Settings

APP = Path(__file__).parents[1] / "dashboards" / "app.py"
ADMIN_KEY = "tw-bench-admin"
REPEAT = 3
#: page name → (AppTest page path or None for the default page, query string)
PAGES: dict[str, tuple[str | None, dict[str, str]]] = {
    "overview": (None, {}),
    "explorer (all spend, 30 d)": ("views/explorer.py", {}),
    "explorer (marketing-p1, 90 d)": (
        "views/explorer.py",
        {"business_line": "marketing", "project": "marketing-p1", "days": "90"},
    ),
    "budgets": ("views/budgets.py", {}),
    "routing": ("views/routing.py", {}),
    "calls": ("views/calls.py", {}),
}


def _config() -> TollwayConfig:
    budgets = [
        BudgetConfig(
            id="marketing-monthly",
            scope=BudgetScope(business_line="marketing"),
            period="monthly",
            limit_usd=Decimal("50000"),
        ),
        BudgetConfig(
            id="research-p2-daily",
            scope=BudgetScope(business_line="research", project="research-p2"),
            period="daily",
            limit_usd=Decimal("500"),
        ),
        BudgetConfig(
            id="support-total",
            scope=BudgetScope(business_line="support"),
            period="total",
            limit_usd=Decimal("1000000"),
        ),
    ]
    return load_config(None).model_copy(update={"budgets": budgets})


def _app(store: ChdbStore, api_seconds: list[float]) -> FastAPI:
    runtime = Runtime(
        settings=Settings(),
        config=_config(),
        bootstrap="unused:9092",
        roles=frozenset({"analytics"}),
        store=store,
        admin_key=ADMIN_KEY,
    )
    app = build_app(runtime)
    app.state.store = store  # what the lifespan would set (it is off: no Kafka here)

    @app.middleware("http")
    async def timed(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        began = time.perf_counter()
        response = await call_next(request)
        api_seconds.append(time.perf_counter() - began)
        return response

    return app


@contextlib.contextmanager
def _no_signals() -> Iterator[None]:
    yield


@contextlib.asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    logging.getLogger("uvicorn.access").disabled = True  # no line per request (Streamlit logs)
    server.capture_signals = _no_signals  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _render(
    page: str | None, query: dict[str, str], api_seconds: list[float]
) -> tuple[float, object]:
    from streamlit.testing.v1 import AppTest

    from dashboards.client import clear_cache

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update(query)
    if page is not None:
        await asyncio.to_thread(at.run)  # register the pages, then switch
        at.switch_page(page)
        at.query_params.update(query)
    clear_cache()
    api_seconds.clear()
    began = time.perf_counter()
    await asyncio.to_thread(at.run)
    return time.perf_counter() - began, at


async def _run(rows: int) -> list[str]:
    async with bench_store(rows) as (store, lines):
        await merge_all(store)
        api_seconds: list[float] = []
        async with _serving(_app(store, api_seconds)) as url:
            os.environ["TOLLWAY_DASHBOARD_API"] = url
            os.environ["TOLLWAY_DASHBOARD_KEY"] = ADMIN_KEY
            await _render(None, {}, api_seconds)  # Streamlit's first-run imports: not a page's
            lines.append(
                f"  {'page':<32} {'median s':>9} {'max s':>7} {'API s':>7} {'calls':>6}  target ≤ 1 s"
            )
            for name, (page, query) in PAGES.items():
                times, api = [], []
                for _ in range(REPEAT):
                    took, at = await _render(page, query, api_seconds)
                    if at.exception:  # type: ignore[attr-defined]
                        raise RuntimeError(f"{name}: {at.exception}")  # type: ignore[attr-defined]
                    times.append(took)
                    api.append((sum(api_seconds), len(api_seconds)))
                median = statistics.median(times)
                api_s, calls = api[times.index(sorted(times)[len(times) // 2])]
                lines.append(
                    f"  {name:<32} {median:>9.2f} {max(times):>7.2f} {api_s:>7.2f} {calls:>6}"
                    f"  {'met' if median <= 1 else 'MISSED'}"
                )
    return lines


def run(rows: int = DEFAULT_ROWS) -> list[str]:
    """Render every dashboard page against `rows` synthetic calls; returns report lines."""
    return asyncio.run(_run(rows))


if __name__ == "__main__":
    print("\n".join(run(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ROWS)))
