"""Which window a call is charged to, and which budgets count it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tollway.budgets import EPOCH, matches, period_window
from tollway.config.schema import BudgetScope


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
