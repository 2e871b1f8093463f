"""Budget status computed from the ledger: the durable answer to "where does each budget stand".

The worker keeps live budget state in Faust tables, but the embedded broker forgets them on a
restart; the ledger does not. So this module recomputes, for each budget in the config, the
spend of its `ok` calls in the current period window — the period taken in the budget's own time
zone — straight from `calls` (scopes may name users and tags, which the rollups do not keep).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from analytics.store.base import Store, quote_identifier, sql_string
from tollway.config.schema import BudgetConfig, BudgetScope

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PeriodWindow:
    start: datetime  # UTC
    end: datetime | None  # UTC; None for a `total` budget


def period_window(period: str, timezone: str, now: datetime) -> PeriodWindow:
    """The period containing `now`, with its boundaries at local midnight in `timezone`."""
    if period == "total":
        return PeriodWindow(EPOCH, None)
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    day = local.date()
    if period == "daily":
        first, last = day, day + timedelta(days=1)
    elif period == "weekly":  # ISO weeks: Monday to Monday
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=7)
    elif period == "monthly":
        first = day.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1)
    elif period == "quarterly":
        first = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        last = (first + timedelta(days=95)).replace(day=1)
    else:
        raise ValueError(f"unknown budget period {period!r}")

    def midnight(d: Any) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)

    return PeriodWindow(midnight(first), midnight(last))


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


async def spend_in_window(store: Store, scope: BudgetScope, window: PeriodWindow) -> Decimal:
    conditions = ["status = 'ok'", *scope_conditions(scope)]
    if window.end is not None:
        conditions += [f"ts >= {_ch_time(window.start)}", f"ts < {_ch_time(window.end)}"]
    result = await store.query(
        f"SELECT toString(sum(cost_usd)) AS spend FROM calls WHERE {' AND '.join(conditions)}",
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
    if window.end is None:
        return spend
    elapsed = max((now - window.start).total_seconds(), 3600.0)
    length = (window.end - window.start).total_seconds()
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
        "period_start": window.start,
        "period_end": window.end,
        "forecast_usd": _forecast(spend, window, now),
        "action": budget.action,
        "state": _state(ratio, list(budget.alerts)),
    }
