"""`ServerStore`: the ledger on a ClickHouse server, over HTTP with clickhouse-connect.

It sends exactly the SQL that `ChdbStore` runs (settings included, as a trailing SETTINGS
clause) and uses the same formats: `raw_query(fmt="JSON")` for results and
`raw_insert(fmt="JSONEachRow")` for rows, so the chDB tests speak for this path too.
The client is created lazily on first use, so constructing a store never does I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from analytics.store.base import (
    QueryError,
    QueryResult,
    Store,
    StoreError,
    check_database_name,
    clean_error,
    parse_json_result,
    query_settings,
    quote_identifier,
    sql_string,
    with_settings,
)


class ServerStore(Store):
    """A `Store` on a ClickHouse server given as `http(s)://user:password@host:port`."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        connect_timeout_s: float = 10.0,
        send_receive_timeout_s: float = 300.0,
    ) -> None:
        self.url = url
        self.database = check_database_name(database)
        self._connect_timeout_s = connect_timeout_s
        self._send_receive_timeout_s = send_receive_timeout_s
        self._client: Any = None
        self._database_ready = False
        self._lock = asyncio.Lock()

    async def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                import clickhouse_connect

                try:
                    self._client = await clickhouse_connect.get_async_client(
                        dsn=self.url,
                        connect_timeout=self._connect_timeout_s,
                        send_receive_timeout=self._send_receive_timeout_s,
                    )
                except Exception as exc:
                    raise StoreError(f"cannot connect to ClickHouse: {exc}") from None
        return self._client

    async def _use_database(self, client: Any) -> None:
        """Make the store's database current once it exists (it may not before `migrate`)."""
        if self._database_ready:
            return
        sql = f"SELECT count() AS n FROM system.databases WHERE name = {sql_string(self.database)}"
        payload = await self._guard(client.raw_query(sql, fmt="JSON", use_database=False))
        if parse_json_result(payload).rows[0]["n"]:
            client.database = self.database
            self._database_ready = True

    async def _guard(self, awaitable: Any) -> Any:
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        try:
            return await awaitable
        except OperationalError as exc:
            raise StoreError(f"ClickHouse unreachable: {clean_error(str(exc)).message}") from None
        except DatabaseError as exc:
            raise clean_error(str(exc)) from None
        except (OSError, TimeoutError) as exc:
            raise StoreError(f"ClickHouse unreachable: {exc}") from None

    async def command(self, sql: str) -> None:
        client = await self._get_client()
        await self._guard(client.command(sql, use_database=False))
        if sql.lstrip().upper().startswith("DROP DATABASE"):
            client.database = None
            self._database_ready = False

    async def query(
        self,
        sql: str,
        *,
        readonly: bool = False,
        max_rows: int | None = None,
        timeout_s: float | None = None,
    ) -> QueryResult:
        client = await self._get_client()
        await self._use_database(client)
        settings = query_settings(readonly=readonly, max_rows=max_rows, timeout_s=timeout_s)
        final = with_settings(sql, settings)
        payload = await self._guard(
            client.raw_query(final, fmt="JSON", use_database=self._database_ready)
        )
        return parse_json_result(payload)

    async def insert_lines(
        self, table: str, lines: bytes, settings: Mapping[str, str] | None = None
    ) -> None:
        if not lines:
            return
        client = await self._get_client()
        target = f"{quote_identifier(self.database)}.{quote_identifier(table)}"
        await self._guard(
            client.raw_insert(
                target, insert_block=lines, fmt="JSONEachRow", settings=dict(settings or {})
            )
        )

    async def ping(self) -> bool:
        try:
            client = await self._get_client()
            return bool(await client.ping())
        except (StoreError, QueryError):
            return False

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def __repr__(self) -> str:
        host = self.url.rsplit("@", 1)[-1]  # never print credentials
        return f"ServerStore(host={host!r}, database={self.database!r})"
