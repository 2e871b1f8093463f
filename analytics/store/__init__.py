"""The ClickHouse store behind the ledger: chDB in the embedded default, a server otherwise.

`open_store(settings)` picks the implementation from the connection settings, so callers never
branch on where ClickHouse runs.
"""

from __future__ import annotations

from analytics.store.base import QueryError, QueryResult, Store, StoreError
from analytics.store.chdb_store import ChdbStore
from analytics.store.server_store import ServerStore
from tollway.settings import Settings

__all__ = [
    "ChdbStore",
    "QueryError",
    "QueryResult",
    "ServerStore",
    "Store",
    "StoreError",
    "open_store",
]


def open_store(settings: Settings) -> Store:
    """chDB at `settings.chdb_path` unless `TOLLWAY_CLICKHOUSE_URL` names a server."""
    if settings.clickhouse_url:
        return ServerStore(settings.clickhouse_url, settings.clickhouse_database)
    return ChdbStore(settings.chdb_path, settings.clickhouse_database)
