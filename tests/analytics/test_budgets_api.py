"""GET /v1/analytics/budgets: spend of ok calls in each budget's period, in its time zone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from analytics.ledger import Ledger
from analytics.store import ChdbStore
from tests.analytics.seed import VIEWER_KEY, analytics_app, finops_client, seeded_events
from tollway.budgets import period_window
from tollway.config.schema import BudgetConfig, BudgetScope, TollwayConfig

AT = "2025-03-12T03:00:00Z"  # 2025-03-11 23:00 in New York (EDT since 9 March)


def _config() -> TollwayConfig:
    return TollwayConfig(
        budgets=[
            BudgetConfig(
                id="marketing-monthly",
                scope=BudgetScope(business_line="marketing"),
                limit_usd=Decimal("0.05"),
                action="block",
            ),
            BudgetConfig(
                id="seo-daily-ny",
                scope=BudgetScope(business_line="marketing", project="seo"),
                period="daily",
                timezone="America/New_York",
                limit_usd=Decimal("0.1"),
                alerts=[0.5, 1.0],
            ),
            BudgetConfig(
                id="support-users",
                scope=BudgetScope(business_line="support", user="u1", tag={"team": "growth"}),
                period="total",
                limit_usd=Decimal("100"),
            ),
        ]
    )


@pytest.fixture
async def client(ledger_store: ChdbStore) -> AsyncIterator[httpx.AsyncClient]:
    await Ledger(ledger_store).write(seeded_events())
    async with finops_client(analytics_app(ledger_store, _config())) as client:
        yield client


def _ok_spend(keep) -> Decimal:  # type: ignore[no-untyped-def]
    return sum((e.cost_usd for e in seeded_events() if e.status == "ok" and keep(e)), Decimal(0))


async def test_budget_spend_ratio_and_state(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/analytics/budgets", params={"at": AT})
    assert response.status_code == 200, response.text
    budgets = {b["id"]: b for b in response.json()["budgets"]}

    monthly = budgets["marketing-monthly"]
    spend = _ok_spend(lambda e: e.business_line == "marketing")
    assert Decimal(monthly["spend_usd"]) == spend
    assert monthly["limit_usd"] == "0.05" and monthly["action"] == "block"
    assert monthly["ratio"] == pytest.approx(float(spend / Decimal("0.05")))
    assert monthly["state"] == "exceeded"
    assert (monthly["period_start"], monthly["period_end"]) == (
        "2025-03-01T00:00:00Z",
        "2025-04-01T00:00:00Z",
    )
    # linear forecast: spend over 11 1/8 elapsed days, extended to 31
    assert Decimal(monthly["forecast_usd"]) == pytest.approx(spend * 31 / Decimal("11.125"))

    daily = budgets["seo-daily-ny"]
    start, end = datetime(2025, 3, 11, 4, tzinfo=UTC), datetime(2025, 3, 12, 4, tzinfo=UTC)
    assert (daily["period_start"], daily["period_end"]) == (
        "2025-03-11T04:00:00Z",
        "2025-03-12T04:00:00Z",
    )
    spend = _ok_spend(lambda e: e.project == "seo" and start <= e.ts < end)
    # by hand: 2 x 0.002 (mini) + 2 x 0.02 (gpt-4o) on 11 March, one mini call failed
    assert Decimal(daily["spend_usd"]) == spend == Decimal("0.042")
    assert daily["state"] == "ok" and daily["timezone"] == "America/New_York"

    total = budgets["support-users"]
    assert total["period_end"] is None
    assert Decimal(total["spend_usd"]) == _ok_spend(
        lambda e: e.business_line == "support" and e.user == "u1"
    )
    assert total["scope"] == {"business_line": "support", "user": "u1", "tag": {"team": "growth"}}


async def test_viewer_sees_its_business_lines_budgets_only(client: httpx.AsyncClient) -> None:
    client.headers["Authorization"] = f"Bearer {VIEWER_KEY}"
    body = (await client.get("/v1/analytics/budgets", params={"at": AT})).json()
    assert [b["id"] for b in body["budgets"]] == ["marketing-monthly", "seo-daily-ny"]


async def test_budgets_as_csv(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/analytics/budgets", params={"at": AT}, headers={"Accept": "text/csv"}
    )
    lines = response.text.splitlines()
    assert lines[0].startswith("id,scope,period,timezone,limit_usd,spend_usd,ratio")
    assert lines[1].startswith('marketing-monthly,"{""business_line"":""marketing""}",monthly')


@pytest.mark.parametrize(
    ("period", "zone", "now", "start", "end"),
    [
        ("weekly", "UTC", datetime(2025, 3, 13, 12, tzinfo=UTC), "2025-03-10", "2025-03-17"),
        ("quarterly", "UTC", datetime(2025, 5, 2, tzinfo=UTC), "2025-04-01", "2025-07-01"),
        (
            "monthly",
            "Asia/Tokyo",
            datetime(2025, 3, 31, 16, tzinfo=UTC),
            "2025-03-31T15",
            "2025-04-30T15",
        ),
    ],
)
def test_period_windows(period: str, zone: str, now: datetime, start: str, end: str) -> None:
    window_start, window_end = period_window(period, zone, now)  # type: ignore[arg-type]
    assert window_start.isoformat().startswith(start)
    assert window_end is not None and window_end.isoformat().startswith(end)


@pytest.mark.parametrize(
    ("scope", "period", "zone", "table"),
    [
        (BudgetScope(business_line="marketing"), "monthly", "UTC", "calls_daily"),
        (BudgetScope(project="seo", key_id="k1"), "total", "UTC", "calls_daily"),
        (BudgetScope(business_line="marketing"), "daily", "America/New_York", "calls_hourly"),
        (BudgetScope(model="gpt-4o"), "weekly", "Asia/Kolkata", "calls"),  # +05:30
        (BudgetScope(user="u1"), "monthly", "UTC", "calls"),  # not in the rollups
        (BudgetScope(tag={"team": "growth"}), "total", "UTC", "calls"),
    ],
)
def test_budget_spend_is_summed_from_the_cheapest_exact_table(
    scope: BudgetScope, period: str, zone: str, table: str
) -> None:
    from analytics.budget_status import spend_source

    window = period_window(period, zone, datetime(2025, 3, 12, 3, tzinfo=UTC))  # type: ignore[arg-type]
    source, times = spend_source(scope, window)
    assert source == table
    assert len(times) == (0 if period == "total" else 2)
