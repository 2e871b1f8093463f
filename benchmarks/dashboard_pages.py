"""Cost-explorer pages (Streamlit) rendered against the analytics API on N synthetic calls.

The calls are those of benchmarks/analytics_queries.py (same generator; `TOLLWAY_BENCH_DIR`
reuses a kept directory of the same size, brought to the current migrations first), every part
merged. 1% of the calls get a quality score (`feedback`, one to eleven minutes after the call,
added once; only calls already made: the generator's calls run to tonight), so the Routing page
has scores to join and recommendations to show. The analytics role's app
(`tollway.service.build_app`, role `analytics`, on that chDB store) is served by uvicorn on a
loopback port, and each page is rendered by Streamlit's AppTest against it with an admin key —
the dashboard's own code path: its httpx client, its pages, its charts. The dashboard caches API
answers for 15 s, so the cache is cleared before every render: each time includes every API
call the page makes. Reported: median and max seconds of 3 renders per page, and the seconds
the page's API calls took on the server side (summed), so page time splits into data and
rendering. The server runs in the same process as AppTest (they share the GIL), which makes the
times an upper bound; the routing-stats publisher of the analytics role (which needs Kafka) is
not started. Before the pages, the routing statistics behind the Routing page (30 days, on the API's
whole-hour window) and the proxy's published stats (7 days, exact to the millisecond) are timed
on both paths: the route rollups and the raw ledger.

Not part of the test suite: `python -m benchmarks dashboard_pages [ROWS]`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fastapi import FastAPI, Request, Response

from analytics.migrate import migrate
from analytics.routing_stats import StatsPath, rated_calls_fill_sql, routing_stats_between
from analytics.routing_windows import whole_hours
from analytics.store import ChdbStore
from benchmarks.analytics_queries import DEFAULT_ROWS, bench_store, merge_all
from tollway.config import load_config
from tollway.config.schema import BudgetConfig, BudgetScope, TollwayConfig
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings

APP = Path(__file__).parents[1] / "dashboards" / "app.py"
ADMIN_KEY = "tw-bench-admin"
REPEAT = 3
#: rollups of migration 0012, merged like benchmarks.analytics_queries.ROLLUPS
ROUTE_ROLLUPS = ("calls_hourly_by_route", "calls_daily_by_route")
#: one call in FEEDBACK_EVERY gets a score
FEEDBACK_EVERY = 100
FEEDBACK = """
INSERT INTO {db}.feedback (event_id, score, label, ts, key_id)
SELECT event_id,
    -- a model's mean quality, give or take 0.1 per call
    least(1.0, greatest(0.0, multiIf(model IN ('gpt-4o', 'claude-sonnet', 'claude-opus'), 0.9,
        model IN ('gemini-pro', 'o3-mini'), 0.86, 0.84) + (cityHash64(event_id) % 21 - 10) / 100))
        AS score,
    '' AS label,
    ts + toIntervalSecond(60 + cityHash64(event_id) % 600) AS ts,
    key_id
FROM {db}.calls
WHERE cityHash64(event_id) % {every} = 0 AND ts < now64(3) - INTERVAL 15 MINUTE
"""
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


def analytics_app(store: ChdbStore, api_seconds: list[float]) -> FastAPI:
    """The analytics role's app on `store` (admin key `ADMIN_KEY`, three budgets), appending the
    server-side seconds of every request to `api_seconds` (shared with dashboard_browser)."""
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


async def prepare_store(store: ChdbStore) -> list[str]:
    """Bring a reused store to the current migrations (0012 backfills the route rollups from
    the older ones), add the feedback once, and merge every part."""
    lines = []
    began = time.perf_counter()
    applied = await migrate(store)
    if applied:
        lines.append(f"applied {', '.join(applied)} in {time.perf_counter() - began:.0f} s")
    db = store.database
    rated = await store.query(f"SELECT count() AS n FROM {db}.feedback")
    if not rated.rows[0]["n"]:
        began = time.perf_counter()
        await store.command(FEEDBACK.format(db=db, every=FEEDBACK_EVERY))
        rated = await store.query(f"SELECT count() AS n FROM {db}.feedback")
        scored_s = time.perf_counter() - began
        began = time.perf_counter()  # what migration 0012 does when the scores exist already
        await store.command(rated_calls_fill_sql(datetime(1970, 1, 1, tzinfo=UTC)))
        lines.append(
            f"scored {rated.rows[0]['n']:,} calls (1 in {FEEDBACK_EVERY}) in {scored_s:.0f} s,"
            f" their calls into rated_calls in {time.perf_counter() - began:.0f} s"
        )
    await merge_all(store)
    for table in (*ROUTE_ROLLUPS, "feedback", "rated_calls"):
        await store.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
    return lines


async def _time_routing_stats(store: ChdbStore) -> list[str]:
    """Seconds per routing-stats computation (median of 3), rollup path against raw path: the
    API's windows (whole hours, rollups only) and the publisher's (exact, raw edges)."""
    lines = [f"  {'routing stats':<34} {'rollup s':>9} {'raw s':>7}"]
    for name, days, keys, exact in (
        ("page stats, 30 d (API)", 30, ("route", "task_type", "model"), False),
        ("recommendations, 30 d (API)", 30, ("task_type", "model"), False),
        ("published stats, 7 d (exact)", 7, ("route", "task_type", "model"), True),
    ):
        medians = []
        paths: tuple[StatsPath, ...] = ("rollup", "raw")
        for path in paths:
            times = []
            for _ in range(3):
                end = datetime.now(UTC)
                start = end - timedelta(days=days)
                if not exact:
                    start, end = whole_hours(start, end)
                began = time.perf_counter()
                await routing_stats_between(store, start, end, keys=keys, path=path)
                times.append(time.perf_counter() - began)
            medians.append(statistics.median(times))
        lines.append(f"  {name:<34} {medians[0]:>9.3f} {medians[1]:>7.2f}")
    return lines


async def _run(rows: int) -> list[str]:
    async with bench_store(rows) as (store, lines):
        lines += await prepare_store(store)
        lines += await _time_routing_stats(store)
        api_seconds: list[float] = []
        async with serving(analytics_app(store, api_seconds), lifespan=False) as url:
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
