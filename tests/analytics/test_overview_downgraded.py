"""The Overview's downgraded count, now read from a daily rollup, equals the raw count.

Downgraded calls are placed on both sides of the month's first UTC instant and today, so a
rollup read that took the wrong days (or a raw count that it no longer equals) shows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from analytics.ledger import Ledger
from analytics.store import ChdbStore
from tests.analytics.conftest import make_event
from tests.analytics.seed import FINOPS_KEY, analytics_app
from tests.dashboards.conftest import dashboard_config, recent_events, run_page
from tollway.events import CallEvent
from tollway.server import serving


def _downgraded_events(now: datetime) -> list[CallEvent]:
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    moments = [
        month_start - timedelta(milliseconds=1),  # last month: not counted
        month_start - timedelta(days=3),
        month_start,  # the month's first instant: counted
        month_start + (now - month_start) / 2,
        now - timedelta(seconds=1),
        now - timedelta(seconds=2),
    ]
    return [
        make_event(ts=ts, budget_action="downgraded", model="gpt-4o-mini", requested_model="gpt-4o")
        for ts in moments
    ]


@pytest.fixture
async def api_url(ledger_store: ChdbStore) -> AsyncIterator[tuple[str, list[CallEvent]]]:
    now = datetime.now(UTC)
    events = recent_events(now) + _downgraded_events(now)
    await Ledger(ledger_store).write(events)
    async with serving(analytics_app(ledger_store, dashboard_config())) as url:
        yield url, events


async def test_overview_counts_downgraded_calls_exactly(
    api_url: tuple[str, list[CallEvent]],
    ledger_store: ChdbStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, events = api_url
    monkeypatch.setenv("TOLLWAY_DASHBOARD_API", url)
    monkeypatch.setenv("TOLLWAY_DASHBOARD_KEY", FINOPS_KEY)
    at = await run_page("overview")
    assert not at.exception, at.exception
    shown = next(m.value for m in at.metric if m.label == "Downgraded")
    month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    by_hand = sum(1 for e in events if e.ts >= month_start and e.budget_action == "downgraded")
    raw = await ledger_store.query(
        "SELECT count() AS n FROM calls WHERE budget_action = 'downgraded'"
        f" AND ts >= toDateTime('{month_start:%Y-%m-%d} 00:00:00', 'UTC')"
    )
    assert shown == f"{by_hand:,}" == f"{raw.rows[0]['n']:,}"
    assert by_hand >= 3
