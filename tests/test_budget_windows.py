"""Which window a call is charged to, and which budgets count it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tollway.budgets import EPOCH, Windows, budget_window, matches, period_window
from tollway.config.schema import BudgetConfig, BudgetScope, Period


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "zone", "at", "start", "end"),
    [
        ("daily", "UTC", utc(2026, 11, 26, 23, 59), utc(2026, 11, 26), utc(2026, 11, 27)),
        # Paris is UTC+1 in November: its day starts at 23:00 UTC the evening before
        (
            "daily",
            "Europe/Paris",
            utc(2026, 11, 26, 23, 30),
            utc(2026, 11, 26, 23),
            utc(2026, 11, 27, 23),
        ),
        ("weekly", "UTC", utc(2026, 11, 26, 12), utc(2026, 11, 23), utc(2026, 11, 30)),  # Thu → Mon
        ("monthly", "UTC", utc(2026, 12, 31, 23, 59), utc(2026, 12, 1), utc(2027, 1, 1)),
        (
            "monthly",
            "America/New_York",
            utc(2026, 12, 1, 3),
            utc(2026, 11, 1, 4),
            utc(2026, 12, 1, 5),
        ),
        ("quarterly", "UTC", utc(2026, 11, 26), utc(2026, 10, 1), utc(2027, 1, 1)),
        ("quarterly", "UTC", utc(2026, 3, 31, 23), utc(2026, 1, 1), utc(2026, 4, 1)),
        # a DST change inside the window: the day of the switch is 23 hours long
        ("daily", "Europe/Paris", utc(2026, 3, 29, 12), utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)),
    ],
)
def test_period_windows(
    period: str, zone: str, at: datetime, start: datetime, end: datetime
) -> None:
    assert period_window(period, zone, at) == (start, end)  # type: ignore[arg-type]


def test_total_has_no_end() -> None:
    assert period_window("total", "UTC", utc(2026, 1, 1)) == (EPOCH, None)


def test_a_call_started_before_midnight_belongs_to_the_old_day() -> None:
    started = utc(2026, 11, 26, 23, 59, 59)
    assert period_window("daily", "UTC", started)[0] == utc(2026, 11, 26)


CALL = {"business_line": "marketing", "project": "seo", "task_type": "chat", "key_id": "k1",
        "user": "ada", "model": "gpt-4o"}  # fmt: skip


@pytest.mark.parametrize(
    ("scope", "counted"),
    [
        (BudgetScope(), True),
        (BudgetScope(business_line="marketing"), True),
        (BudgetScope(business_line="support"), False),
        (BudgetScope(business_line="marketing", project="seo", model="gpt-4o"), True),
        (BudgetScope(business_line="marketing", project="campaigns"), False),
        (BudgetScope(key_id="k1", user="ada"), True),
        (BudgetScope(tag={"team": "growth"}), True),
        (BudgetScope(tag={"team": "other"}), False),
        (BudgetScope(tag={"missing": "x"}), False),
    ],
)
def test_scope_matching(scope: BudgetScope, counted: bool) -> None:
    assert matches(scope, CALL, {"team": "growth"}) is counted


@pytest.mark.parametrize("period", ["daily", "weekly", "monthly", "quarterly", "total"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York"])
def test_the_window_cache_answers_as_the_computation_does(period: Period, zone: str) -> None:
    """Calls in time order across DST switches, day, week, month and quarter boundaries, then
    out of order, and naive times (read as UTC): the reused window is always the right one."""
    budget = BudgetConfig(id="b", period=period, timezone=zone, limit_usd=Decimal(1))
    start = utc(2026, 3, 27)  # Europe's DST switch is on the 29th, the US's was on the 8th
    times = [start + timedelta(hours=7 * i, minutes=13 * i) for i in range(600)]
    times += [times[i] for i in random.Random(7).sample(range(len(times)), 200)]
    times += [t.replace(tzinfo=None) for t in times[:50]]
    windows = Windows()
    for at in times:
        assert windows.of(budget, at) == budget_window(budget, at), at
