"""`ChdbStore`: the ledger in-process, through chDB (embedded ClickHouse).

chDB facts this module is built around (measured with chDB 4.4 / ClickHouse 26.9):
- One embedded server per process, bound to one data directory: a Session on a second path
  fails while any session is open ("EmbeddedServer already initialized with path …"). After
  the last session closes, another path can be opened. So sessions are shared per path through
  a reference-counted registry, and closed when the last `ChdbStore` on that path closes.
- The current database (`USE`) is session state; stores with different databases share the
  session, so each call re-selects its database when another store changed it.
- All calls of one session run on one dedicated worker thread: the event loop never blocks, and
  `USE` + statement pairs cannot interleave.
- After a failed query, chDB may prepend the failed query's partial output to the NEXT result;
  a throw-away `SELECT 1 FORMAT Null` after every error clears it.
- A string passed to `Session.query` may hold several `;`-separated statements and chDB runs
  them all: never hand it unchecked user text (see `analytics.sql_guard`). Inserts go through
  `send_insert`, so row data is never parsed as SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

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

T = TypeVar("T")


class _SharedSession:
    """One chDB session and its worker thread, shared by every store on one data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.refs = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"chdb:{path.name}")
        self._session: Any = None
        self._current_db: str | None = None

    # Everything below runs on the worker thread only.

    def session(self) -> Any:
        if self._session is None:
            from chdb import session as chdb_session

            self.path.mkdir(parents=True, exist_ok=True)
            try:
                self._session = chdb_session.Session(str(self.path))
            except Exception as exc:
                raise StoreError(f"cannot open chDB at {self.path}: {exc}") from None
        return self._session

    def run(self, sql: str, fmt: str, database: str | None) -> bytes:
        session = self.session()
        if database is not None:
            self._use(session, database)
        try:
            return bytes(session.query(sql, fmt).bytes())
        except Exception as exc:
            self._recover(session)
            raise clean_error(str(exc)) from None

    def insert(self, statement: str, payload: bytes) -> None:
        session = self.session()
        try:
            with session.send_insert(statement, "JSONEachRow") as inserter:
                inserter.append(payload)
                inserter.finish()
        except Exception as exc:
            self._recover(session)
            raise clean_error(str(exc)) from None

    def forget_database(self) -> None:
        """DDL may drop or create databases: select the current one afresh next time."""
        self._current_db = None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _use(self, session: Any, database: str) -> None:
        if self._current_db == database:
            return
        try:
            session.query(f"USE {quote_identifier(database)}", "TabSeparated")
            self._current_db = database
        except Exception:
            # The database does not exist yet (before `migrate`): run in `default`.
            self._recover(session)
            session.query("USE default", "TabSeparated")
            self._current_db = None

    def _recover(self, session: Any) -> None:
        self._current_db = None
        with contextlib.suppress(Exception):  # a broken session reports itself on the next call
            session.query("SELECT 1 FORMAT Null", "TabSeparated")


_registry: dict[Path, _SharedSession] = {}
_registry_lock = threading.Lock()


def _acquire(path: Path) -> _SharedSession:
    with _registry_lock:
        shared = _registry.get(path)
        if shared is None:
            others = [str(p) for p in _registry]
            if others:
                raise StoreError(
                    f"chDB is already open at {others[0]} in this process; one process can use "
                    f"one chDB directory at a time (asked for {path})"
                )
            shared = _registry[path] = _SharedSession(path)
        shared.refs += 1
        return shared


def _release(shared: _SharedSession) -> bool:
    """Drop one reference; True when it was the last (the caller then closes the session)."""
    with _registry_lock:
        shared.refs -= 1
        if shared.refs > 0:
            return False
        _registry.pop(shared.path, None)
        return True


class ChdbStore(Store):
    """A `Store` on a chDB data directory; several databases may share one directory."""

    def __init__(self, path: Path, database: str) -> None:
        self.path = Path(path).resolve()
        self.database = check_database_name(database)
        self._shared: _SharedSession | None = _acquire(self.path)

    async def _call(self, fn: Callable[[_SharedSession], T]) -> T:
        shared = self._shared
        if shared is None:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(shared.executor, fn, shared)

    async def command(self, sql: str) -> None:
        def work(shared: _SharedSession) -> None:
            try:
                shared.run(sql, "TabSeparated", self.database)
            finally:
                shared.forget_database()

        await self._call(work)

    async def query(
        self,
        sql: str,
        *,
        readonly: bool = False,
        max_rows: int | None = None,
        timeout_s: float | None = None,
    ) -> QueryResult:
        settings = query_settings(readonly=readonly, max_rows=max_rows, timeout_s=timeout_s)
        final = with_settings(sql, settings)
        payload = await self._call(lambda shared: shared.run(final, "JSON", self.database))
        return parse_json_result(payload)

    async def insert_lines(
        self, table: str, lines: bytes, settings: Mapping[str, str] | None = None
    ) -> None:
        if not lines:
            return
        statement = f"INSERT INTO {quote_identifier(self.database)}.{quote_identifier(table)}"
        if settings:
            statement += " SETTINGS " + ", ".join(
                f"{quote_identifier(k)} = {sql_string(v)}" for k, v in settings.items()
            )
        await self._call(lambda shared: shared.insert(statement, lines))

    async def ping(self) -> bool:
        try:
            result = await self.query("SELECT 1 AS ok")
        except (StoreError, QueryError):
            return False
        return result.rows == [{"ok": 1}]

    async def close(self) -> None:
        shared, self._shared = self._shared, None
        if shared is None or not _release(shared):
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(shared.executor, shared.close)
        shared.executor.shutdown(wait=True)

    def __repr__(self) -> str:
        return f"ChdbStore(path={str(self.path)!r}, database={self.database!r})"
