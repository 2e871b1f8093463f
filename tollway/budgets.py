"""Budget arithmetic shared by the worker (which counts spend) and the proxy (which gates calls).

Pure functions, no I/O: which calls a budget counts (`matches`), and the period window a call
belongs to (`period_window`). A call is charged to the window in which it *started*, computed
in the budget's own time zone, so a call in flight across midnight belongs to the old day and
a reset needs no sweeper: the new window simply has no spend yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tollway.config.schema import BudgetConfig, BudgetScope, Period

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SCOPE_FIELDS = ("business_line", "project", "task_type", "key_id", "user", "model")


def matches(scope: BudgetScope, attrs: Mapping[str, object], tags: Mapping[str, str]) -> bool:
    """Does a call with these attribution fields (and tags) count against this scope?"""
    for field in SCOPE_FIELDS:
        wanted = getattr(scope, field)
        if wanted is not None and attrs.get(field) != wanted:
            return False
    if scope.tag:
        return all(tags.get(k) == v for k, v in scope.tag.items())
    return True


def period_window(period: Period, timezone: str, at: datetime) -> tuple[datetime, datetime | None]:
    """[start, end) of the window containing `at`, as UTC instants; `total` has no end."""
    if period == "total":
        return EPOCH, None
    zone = ZoneInfo(timezone)
    local = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if period == "daily":
        start, end = day, day + timedelta(days=1)
    elif period == "weekly":  # ISO weeks: Monday to Monday
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "monthly":
        start = day.replace(day=1)
        end = _add_months(start, 1)
    else:  # quarterly
        start = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        end = _add_months(start, 3)
    return _to_utc(start, zone), _to_utc(end, zone)


def budget_window(budget: BudgetConfig, at: datetime) -> tuple[datetime, datetime | None]:
    return period_window(budget.period, budget.timezone, at)


class Windows:
    """`budget_window` for many calls in a row: each (period, time zone)'s last window is
    reused while the calls fall inside it — a batch of a few seconds' calls almost always
    does — instead of converting every call's time into the budget's zone."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[datetime, datetime | None]] = {}

    def of(self, budget: BudgetConfig, at: datetime) -> tuple[datetime, datetime | None]:
        key = (budget.period, budget.timezone)
        last = self._last.get(key)
        if (
            last is not None
            and at.tzinfo is not None
            and last[0] <= at
            and (last[1] is None or at < last[1])
        ):
            return last
        window = self._last[key] = budget_window(budget, at)
        return window


def _add_months(first_of_month: datetime, months: int) -> datetime:
    index = first_of_month.month - 1 + months
    return first_of_month.replace(year=first_of_month.year + index // 12, month=index % 12 + 1)


def _to_utc(local_midnight: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in `zone` as UTC (a midnight skipped by DST resolves forward)."""
    return local_midnight.replace(tzinfo=zone).astimezone(UTC)
