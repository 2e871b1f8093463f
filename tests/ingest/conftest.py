"""Fixtures of the webhook tests: a migrated store, alerts, and webhook configs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from analytics.migrate import migrate
from tests.ingest.receiver import SECRET_ENV
from tollway.budget_events import AlertType, BudgetAlert
from tollway.config.schema import WebhookConfig


@pytest.fixture
async def ledger_store(store):  # type: ignore[no-untyped-def]
    await migrate(store)
    return store


def make_alert(threshold: float = 0.8, budget: str = "marketing-monthly") -> BudgetAlert:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    kind: AlertType = "budget.exceeded" if threshold >= 1 else "budget.threshold_reached"
    return BudgetAlert(
        alert_id=BudgetAlert.make_id(budget, start, kind, threshold),
        type=kind,
        budget_id=budget,
        scope={"business_line": "marketing"},
        period="monthly",
        period_start=start,
        period_end=datetime(2026, 12, 1, tzinfo=UTC),
        threshold=threshold,
        spend_usd=Decimal("4012.55"),
        limit_usd=Decimal("5000"),
        percent=80.251,
        action="block",
    )


def hook(url: str, *, id: str = "ops", attempts: int = 3, **extra: object) -> WebhookConfig:
    return WebhookConfig(
        id=id,
        url=url,
        secret_env=SECRET_ENV,
        events=["budget.threshold_reached", "budget.exceeded"],
        max_attempts=attempts,
        timeout_s=5.0,
        **extra,  # type: ignore[arg-type]
    )
