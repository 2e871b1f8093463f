"""Fixtures: the session's chDB directory, a fresh database per test, and sample events.

chDB allows one data directory per process, so every test shares one directory (opened in
tests/conftest.py) and gets its own database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from analytics.migrate import migrate
from analytics.store import ChdbStore
from tollway.events import Attempt, CallEvent


@pytest.fixture(scope="session")
def chdb_dir(chdb_path: Path) -> Path:
    """The test session's one chDB directory (see tests/conftest.py)."""
    return chdb_path


@pytest.fixture
async def store(chdb_dir: Path) -> AsyncIterator[ChdbStore]:
    """An empty database of its own (not migrated)."""
    store = ChdbStore(chdb_dir, f"t_{uuid4().hex[:8]}")
    yield store
    await store.command(f"DROP DATABASE IF EXISTS {store.database}")
    await store.close()


@pytest.fixture
async def ledger_store(store: ChdbStore) -> ChdbStore:
    """A database with the migrations applied."""
    await migrate(store)
    return store


def make_event(**overrides: Any) -> CallEvent:
    fields: dict[str, Any] = {
        "ts": datetime(2025, 3, 14, 9, 26, 53, 589_000, tzinfo=UTC),
        "duration_ms": 420,
        "business_line": "marketing",
        "project": "campaigns",
        "task_type": "summarize",
        "user": "ada",
        "key_id": "k_marketing",
        "environment": "prod",
        "tags": {"team": "growth"},
        "provider": "openai",
        "model": "gpt-4o-mini",
        "requested_model": "auto",
        "route": "auto",
        "attempts": [Attempt(provider="openai", model="gpt-4o-mini", status="ok")],
        "input_tokens": 1200,
        "output_tokens": 300,
        "cost_usd": Decimal("0.000360000"),
        "price_version": "2025-01",
    }
    fields.update(overrides)
    return CallEvent(**fields)


def make_events(n: int, start: datetime | None = None) -> list[CallEvent]:
    """`n` events a minute apart, with varied attribution and costs."""
    start = start or datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    lines = ["marketing", "support", "research"]
    return [
        make_event(
            ts=start + timedelta(minutes=i),
            business_line=lines[i % 3],
            model=["gpt-4o-mini", "gpt-4o"][i % 2],
            status="error" if i % 7 == 0 else "ok",
            cost_usd=Decimal("0.000123457") * (i + 1),
            input_tokens=100 + i,
        )
        for i in range(n)
    ]
