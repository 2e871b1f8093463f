"""What each page asks the API for, in one place, its independent requests sent together.

The pages call these; so does `keep_default_views_warm`, which asks for every page's default
view (the first thing a visitor sees) from the dashboard's start on, through the same answer
cache, so the cache's warmer keeps those answers fresh before anyone opened a page. Requests
that do not depend on each other go out at once on a few threads: a page that asks eight
questions waits for the slowest, not for their sum (the analytics API answers them side by
side; its store still runs one query at a time).
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dashboards.client import AccessDenied, AnalyticsClient, ApiError, DashboardError
from dashboards.models import (
    Alert,
    Anomaly,
    Budget,
    Call,
    CostReport,
    Metrics,
    Recommendation,
    RoutingStat,
    Session,
    SessionSummary,
    Timeseries,
)

log = logging.getLogger(__name__)
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dashboard-load")
#: Explorer levels, in drill order (the page's LEVELS)
LEVELS = ("business_line", "project", "task_type", "model", "key_id")
#: the defaults of each page's first view (the pages' own widgets start on these)
EXPLORER_DAYS = 30
ROUTING_DAYS = 30
CALLS_LIMIT = 200
#: how often `keep_default_views_warm` asks again (it only has to keep them "recently used")
DEFAULT_VIEWS_EVERY_S = 60.0


def together(*loads: Callable[[], Any]) -> list[Any]:
    """Run `loads` at once; their answers in order, or the first load's error."""
    futures = [_POOL.submit(load) for load in loads]
    return [future.result() for future in futures]


def utc_today() -> date:
    """Today's date: the API's days are UTC days (the pages' `dashboards.session.today`)."""
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class Overview:
    recent: Metrics  # the last 90 days (empty: the "no calls yet" page)
    today: Metrics
    month: CostReport  # since the first of the month, by status
    forecast: Decimal
    budgets: list[Budget]
    downgraded: str
    series: Timeseries  # daily spend by business line, 30 days
    this_week: CostReport  # by project, the last 7 days
    last_week: CostReport  # by project, the 7 days before
    anomalies: list[Anomaly]  # projects' unusual days, the last 7 days
    alerts: list[Alert] | None  # the last 7 days' alerts (None: not for this key)


def _downgraded(client: AnalyticsClient, since: date) -> str:
    """Downgrades are a budget action, not a dimension of the summaries: only the SQL endpoint
    (finops/admin) can count them, so a viewer sees a dash. Counted from the smallest daily
    rollup (every rollup keeps `downgraded` per UTC day, this one about a hundred rows a day):
    the range starts at a UTC midnight and runs to now, so whole days of the rollup are exactly
    the raw rows, while a raw count reads a month of the ledger (0.2 to 0.5 s at 100M calls)."""
    try:
        rows = client.sql(
            "SELECT sum(downgraded) AS n FROM calls_daily_by_line"
            f" WHERE day >= toDate('{since.isoformat()}')"
        )
    except (AccessDenied, ApiError):
        return "—"
    return f"{int(rows[0]['n']) if rows else 0:,}"


def _alerts(client: AnalyticsClient) -> list[Alert] | None:
    """The recent alerts, which only finops and admin keys may read: None for the others."""
    try:
        return client.alerts()
    except AccessDenied:
        return None


def overview(client: AnalyticsClient, day: date) -> Overview:
    end, month_start = day + timedelta(days=1), day.replace(day=1)
    recent, today, month, budgets, downgraded, series, this_week, last_week, spikes, alerts = (
        together(
            lambda: client.cost(day - timedelta(days=89), end),
            lambda: client.cost(day, end),
            lambda: client.cost(month_start, end, group_by=["status"]),
            client.budgets,
            lambda: _downgraded(client, month_start),
            lambda: client.timeseries(day - timedelta(days=29), end, group_by=["business_line"]),
            lambda: client.cost(day - timedelta(days=6), end, group_by=["project"]),
            lambda: client.cost(
                day - timedelta(days=13), day - timedelta(days=6), group_by=["project"]
            ),
            lambda: client.anomalies(day - timedelta(days=6), end),
            lambda: _alerts(client),
        )
    )
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    forecast = month.totals.cost_usd * Decimal(days_in_month) / Decimal(day.day)
    return Overview(
        recent.totals,
        today.totals,
        month,
        forecast,
        budgets,
        downgraded,
        series,
        this_week,
        last_week,
        spikes,
        alerts,
    )


@dataclass(frozen=True)
class Explorer:
    start: date
    end: date
    environments: CostReport
    report: CostReport  # by the next level (or every level at the end of the drill)
    series: Timeseries  # daily, by the next level


def explorer(
    client: AnalyticsClient,
    day: date,
    days: int,
    filters: Mapping[str, Sequence[str]],
    level: str | None,
) -> Explorer:
    """The Explorer's view of the `days` up to `day`, `filters` applied, broken down by
    `level` (None: the end of the drill, every level)."""
    start, end = day - timedelta(days=days - 1), day + timedelta(days=1)
    group = [level] if level else list(LEVELS)
    environments, report, series = together(
        lambda: client.cost(start, end, group_by=["environment"]),
        lambda: client.cost(start, end, group_by=group, filters=filters),
        lambda: client.timeseries(start, end, group_by=[level] if level else [], filters=filters),
    )
    return Explorer(start, end, environments, report, series)


def budget_drivers(
    client: AnalyticsClient, budgets: Sequence[Budget], day: date, filterable: Sequence[str]
) -> list[CostReport]:
    """The top five projects of each budget's period so far, in the budgets' order (a `total`
    budget starts in 1970; the API answers at most three years at a time)."""

    def drivers(budget: Budget) -> Callable[[], CostReport]:
        filters = {k: [str(v)] for k, v in budget.scope.items() if k in filterable}
        start = max(date.fromisoformat(budget.period_start[:10]), day - timedelta(days=3 * 365))
        end = day + timedelta(days=1)
        return lambda: client.cost(start, end, group_by=["project"], filters=filters, top=5)

    return together(*(drivers(b) for b in budgets))


def routing(client: AnalyticsClient, days: int) -> tuple[list[Recommendation], list[RoutingStat]]:
    recommendations, stats = together(
        lambda: client.recommendations(days=days),
        lambda: client.routing_stats(days=min(days, 366)),
    )
    return recommendations, stats


def calls(client: AnalyticsClient, day: date, status: str, limit: int) -> list[Call]:
    """The most recent `limit` calls of the last 30 days (`status`: all, ok, error, blocked)."""
    filters = {} if status == "all" else {"status": [status]}
    return client.calls(day - timedelta(days=29), day + timedelta(days=1), filters, limit)


SESSION_DAYS = 7
SESSIONS_LIMIT = 20


def sessions(client: AnalyticsClient, day: date) -> tuple[SessionSummary, list[Session]]:
    """The sessions of the last `SESSION_DAYS` days: how their costs spread, the costliest."""
    start = day - timedelta(days=SESSION_DAYS - 1)
    return client.sessions(start, day + timedelta(days=1), SESSIONS_LIMIT)


#: budget scope fields the cost endpoint can filter by (users and tags only exist in the ledger)
BUDGET_FILTERABLE = ("business_line", "project", "task_type", "key_id", "model", "user")


#: pages whose first view is not kept warm: the audit trail and the keys list are small,
#: asked for by admins only (a warmer with another key would fill the trail with refusals),
#: and best fresh
UNWARMED_PAGES = frozenset({"audit", "keys"})


def default_views(client: AnalyticsClient, day: date) -> None:
    """Ask for what every page shows first, as a visitor's first look would; one page after
    the other (each page's own requests go out together: never a load inside a load)."""
    overview(client, day)
    explorer(client, day, EXPLORER_DAYS, {}, LEVELS[0])
    budget_drivers(client, client.budgets(), day, BUDGET_FILTERABLE)
    routing(client, ROUTING_DAYS)
    calls(client, day, "all", CALLS_LIMIT)
    sessions(client, day)


def keep_default_views_warm(
    client: AnalyticsClient, every_s: float, stop: threading.Event | None = None
) -> threading.Thread:
    """A daemon thread asking for the default views now and every `every_s` (less than the
    cache's keep-warm window, so the cache's warmer never lets them go stale); errors are
    logged and tried again next time."""

    stop = stop or threading.Event()

    def loop() -> None:
        while True:
            began = time.monotonic()
            try:
                default_views(client, utc_today())
            except DashboardError as exc:
                log.warning("keeping the default views warm: %s", exc)
            except Exception:  # the thread must outlive anything a load raises
                log.exception("keeping the default views warm failed")
            if stop.wait(max(0.0, every_s - time.monotonic() + began)):
                return

    thread = threading.Thread(target=loop, name="default-views", daemon=True)
    thread.start()
    return thread
