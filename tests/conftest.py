"""Real engines for the tests: one Tansu broker and one chDB directory per test session.

Each test gets its own topic namespace and its own ClickHouse database, so tests share the
engines (they are slow to start) but never each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.hang_report import pytest_runtest_protocol  # noqa: F401  (prints a hung test's tasks)
from tollway.broker import EmbeddedBroker


@pytest.fixture(scope="session")
async def kafka_bootstrap() -> AsyncIterator[str]:
    async with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
async def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Path]:
    """The one chDB directory of this test process (chDB opens one directory per process);
    an anchor store keeps its session open for the whole run."""
    from analytics.store.chdb_store import ChdbStore

    path = tmp_path_factory.mktemp("chdb")
    anchor = ChdbStore(path, "default")
    yield path
    await anchor.close()


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def store(chdb_path: Path) -> AsyncIterator[object]:
    from analytics.store.chdb_store import ChdbStore

    database = f"t_{uuid.uuid4().hex[:10]}"
    store = ChdbStore(chdb_path, database)
    yield store
    await store.command(f"DROP DATABASE IF EXISTS {database}")
    await store.close()
