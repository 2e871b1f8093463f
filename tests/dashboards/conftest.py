"""A running analytics API over a chDB ledger seeded around *today*, for the dashboard tests.

The dashboard's Overview is about today and this month, so unlike tests/analytics/seed.py the
calls here are dated relative to the clock. The API runs in the test's event loop (tests/serving);
`run_page` drives Streamlit's AppTest on a worker thread so the loop stays free to answer it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.ledger import Ledger
from analytics.migrate import migrate
from tests.analytics.conftest import make_event
from tests.analytics.seed import analytics_app
from tollway.config import load_config
from tollway.config.schema import BudgetConfig, BudgetScope, TollwayConfig
from tollway.events import CallEvent
from tollway.server import serving

APP = Path(__file__).parents[2] / "dashboards" / "app.py"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
PAGES = {
    "overview": None,
    "explorer": "views/explorer.py",
    "budgets": "views/budgets.py",
    "routing": "views/routing.py",
    "calls": "views/calls.py",
    "keys": "views/keys.py",
    "audit": "views/audit.py",
}
COMBOS = [
    ("marketing", "campaigns", "chat", "k_mkt"),
    ("marketing", "seo", "summarize", "k_seo"),
    ("support", "helpdesk", "chat", "k_sup"),
]
MODELS = [("gpt-4o-mini", Decimal("0.0012")), ("gpt-4o", Decimal("0.0150"))]
TIMINGS: dict[str, list[float]] = {}


def recent_events(now: datetime | None = None) -> list[CallEvent]:
    """Calls over the last 14 days (today included), 3 attribution combos x 2 models; every
    7th call fails (costing nothing), one call was blocked by a budget, every 4th had
    an email redacted by the `pii` guardrail, and the first three of every five belong to a
    session (an agent's run) of the day."""
    now = now or datetime.now(UTC)
    events = []
    i = 0
    for days_ago in range(14):
        for combo in COMBOS:
            for model, unit in MODELS:
                i += 1
                business_line, project, task_type, key_id = combo
                status = "error" if i % 7 == 0 else "blocked" if i == 10 else "ok"
                events.append(
                    make_event(
                        # every other call on a whole second: its time has no fraction
                        ts=_whole_second_if(i % 2 == 0, now - timedelta(days=days_ago, minutes=i)),
                        business_line=business_line,
                        project=project,
                        task_type=task_type,
                        key_id=key_id,
                        model=model,
                        environment="staging" if i % 5 == 0 else "prod",
                        status=status,
                        budget_action="blocked" if status == "blocked" else "none",
                        cost_usd=unit * (1 + days_ago % 3) if status == "ok" else Decimal(0),
                        duration_ms=100 + 3 * i,
                        guardrails=["pii"] if i % 4 == 0 else [],
                        session_id=f"run-{days_ago}-{i % 2}" if i % 5 < 3 else "",
                    )
                )
    return events


def dashboard_config() -> TollwayConfig:
    """The demo config with one budget already exceeded and one comfortable."""
    budgets = [
        BudgetConfig(
            id="marketing-monthly",
            scope=BudgetScope(business_line="marketing"),
            period="monthly",
            limit_usd=Decimal("0.05"),
            action="block",
        ),
        BudgetConfig(
            id="support-total",
            scope=BudgetScope(business_line="support"),
            period="total",
            limit_usd=Decimal("100"),
        ),
    ]
    return load_config(None).model_copy(update={"budgets": budgets})


def _whole_second_if(whole: bool, moment: datetime) -> datetime:
    return moment.replace(microsecond=0) if whole else moment


@dataclass
class Api:
    url: str
    events: list[CallEvent]


async def serve_api(store: object, events: list[CallEvent]) -> AsyncIterator[Api]:
    """The analytics API over `store` holding `events`, for as long as the test runs."""
    await migrate(store)  # type: ignore[arg-type]
    if events:
        await Ledger(store).write(events)  # type: ignore[arg-type]
    async with serving(analytics_app(store, dashboard_config())) as url:  # type: ignore[arg-type]
        yield Api(url, events)


@pytest.fixture
async def api(store: object) -> AsyncIterator[Api]:
    async for running in serve_api(store, recent_events()):
        yield running


@pytest.fixture
async def empty_api(store: object) -> AsyncIterator[Api]:
    async for running in serve_api(store, []):
        yield running


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str | None], None]:
    def point(url: str, key: str | None) -> None:
        monkeypatch.setenv("TOLLWAY_DASHBOARD_API", url)
        if key is None:
            monkeypatch.delenv("TOLLWAY_DASHBOARD_KEY", raising=False)
        else:
            monkeypatch.setenv("TOLLWAY_DASHBOARD_KEY", key)

    return point


async def run_page(
    page: str, query: dict[str, str] | None = None, at: AppTest | None = None
) -> AppTest:
    """Render one page (timed); pass `at` to rerun after interacting with it."""
    if at is None:
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.query_params.update(query or {})
        if PAGES[page] is not None:
            await asyncio.to_thread(at.run)  # register the pages, then switch
            at.switch_page(PAGES[page])
            at.query_params.update(query or {})
    started = time.perf_counter()
    await asyncio.to_thread(at.run)
    TIMINGS.setdefault(page, []).append(time.perf_counter() - started)
    return at


def text_of(at: AppTest) -> str:
    """Every piece of text on the page, for "does it say …" checks."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    for kind in (at.info, at.error, at.warning, at.success):
        parts += [str(e.value) for e in kind]
    return "\n".join(parts)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not TIMINGS:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    summary = {
        page: {"runs": len(t), "median_s": sorted(t)[len(t) // 2], "max_s": max(t)}
        for page, t in TIMINGS.items()
    }
    (ARTIFACTS / "dashboard-render-times.json").write_text(json.dumps(summary, indent=2))
