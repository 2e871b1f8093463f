"""Budget status computed from the ledger: the durable answer to "where does each budget stand".

The worker keeps live budget state in Faust tables, but the embedded broker forgets them on a
restart; the ledger does not. So this module recomputes, for each budget in the config, the
spend of its `ok` calls in the current period window — the period taken in the budget's own time
zone — from `calls_daily` when the window is whole UTC days, `calls_hourly` when it is whole
hours, else straight from `calls`; also from `calls` when the scope names users or tags, which
the rollups do not keep. The rollups sum exactly what the ledger holds, and a month of one
business line is a few thousand rollup rows against millions of calls.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from analytics.store.base import Store, quote_identifier, sql_string
from tollway.budgets import period_window
from tollway.config.schema import BudgetConfig, BudgetScope

#: [start, end) in UTC; end is None for a `total` budget
PeriodWindow = tuple[datetime, datetime | None]


def scope_conditions(scope: BudgetScope) -> list[str]:
    """SQL conditions on `calls` for every field the scope names (all must match)."""
    conditions = []
    for column in ("business_line", "project", "task_type", "key_id", "user", "model"):
        value = getattr(scope, column)
        if value is not None:
            conditions.append(f"{quote_identifier(column)} = {sql_string(value)}")
    for name, value in sorted((scope.tag or {}).items()):
        conditions.append(f"tags[{sql_string(name)}] = {sql_string(value)}")
    return conditions


def _ch_time(value: datetime) -> str:
    return f"toDateTime64({sql_string(value.strftime('%Y-%m-%d %H:%M:%S'))}, 3, 'UTC')"


def _day(value: datetime) -> str:
    return f"toDate({sql_string(value.strftime('%Y-%m-%d'))})"


def _hour(value: datetime) -> str:
    return f"toDateTime({sql_string(value.strftime('%Y-%m-%d %H:%M:%S'))}, 'UTC')"


#: (table, its time column, whether an instant is one of its bucket starts, the instant in SQL)
_ROLLUPS: tuple[tuple[str, str, Callable[[datetime], bool], Callable[[datetime], str]], ...] = (
    (
        "calls_daily",
        "day",
        lambda t: t == t.replace(hour=0, minute=0, second=0, microsecond=0),
        _day,
    ),
    ("calls_hourly", "hour", lambda t: t == t.replace(minute=0, second=0, microsecond=0), _hour),
)


def spend_source(scope: BudgetScope, window: PeriodWindow) -> tuple[str, list[str]]:
    """The cheapest table that sums this scope's spend in `window` exactly (the window's bounds
    are bucket starts of a rollup that keeps every field the scope names), and its time
    conditions."""
    start, end = window
    bounds = [start] if end is None else [start, end]
    rollups = _ROLLUPS if scope.user is None and not scope.tag else ()
    table, column = "calls", "ts"
    literal: Callable[[datetime], str] = _ch_time
    for name, time_column, fits, written in rollups:
        if all(fits(b.astimezone(UTC)) for b in bounds):
            table, column, literal = name, time_column, written
            break
    if end is None:  # `total`: everything
        return table, []
    return table, [f"{column} >= {literal(start)}", f"{column} < {literal(end)}"]


async def spend_in_window(store: Store, scope: BudgetScope, window: PeriodWindow) -> Decimal:
    table, times = spend_source(scope, window)
    conditions = ["status = 'ok'", *scope_conditions(scope), *times]
    result = await store.query(
        f"SELECT toString(sum(cost_usd)) AS spend FROM {table} WHERE {' AND '.join(conditions)}",
        readonly=True,
    )
    return Decimal(result.rows[0]["spend"])


def _state(ratio: float, alerts: list[float]) -> str:
    if ratio >= 1:
        return "exceeded"
    if alerts and ratio >= min(alerts):
        return "warned"
    return "ok"


def _forecast(spend: Decimal, window: PeriodWindow, now: datetime) -> Decimal:
    """Linear: the spend so far, extended at the same rate to the end of the period."""
    start, end = window
    if end is None:
        return spend
    elapsed = max((now - start).total_seconds(), 3600.0)
    length = (end - start).total_seconds()
    return (spend * Decimal(length) / Decimal(elapsed)).quantize(Decimal("1e-9"))


async def budget_status(store: Store, budget: BudgetConfig, now: datetime) -> dict[str, Any]:
    window = period_window(budget.period, budget.timezone, now)
    spend = await spend_in_window(store, budget.scope, window)
    ratio = float(spend / budget.limit_usd)
    return {
        "id": budget.id,
        "scope": budget.scope.model_dump(exclude_none=True),
        "period": budget.period,
        "timezone": budget.timezone,
        "limit_usd": budget.limit_usd,
        "spend_usd": spend,
        "ratio": round(ratio, 6),
        "period_start": window[0],
        "period_end": window[1],
        "forecast_usd": _forecast(spend, window, now),
        "action": budget.action,
        "state": _state(ratio, list(budget.alerts)),
    }
