"""The `Store` contract: one async interface over chDB (embedded) and a ClickHouse server.

Both implementations receive the same SQL text and speak the same wire formats (JSON results,
JSONEachRow inserts), so a query or migration that passes on chDB in the tests behaves the same
on a server. Query settings (read-only mode, limits, JSON number formatting) travel inside the
SQL as a trailing `SETTINGS` clause built here, because chDB has no per-query settings argument
and one mechanism for both paths is easier to trust than two.

Value conventions of `QueryResult.rows`: Decimals arrive as strings (exact, no float rounding),
64-bit and wider integers as Python ints, DateTime64 as `YYYY-MM-DD hh:mm:ss.fff` strings,
Map as dict, Array as list, named Tuple as dict, Nullable NULL as None.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

#: Applied to every `query`: exact Decimals as strings, 64-bit integers as JSON numbers.
OUTPUT_SETTINGS: dict[str, int | str] = {
    "output_format_json_quote_decimals": 1,
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_named_tuples_as_objects": 1,
}

_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_ERROR_HEAD = re.compile(r"Code:\s*(\d+)\.\s*(?:DB::Exception:\s*)?")
_VERSION_TAIL = re.compile(r"\s*\(version [0-9.]+(?: \([^)]*\))?\)")
#: ClickHouse echoes the query ("In scope …"); the settings clause we append is noise there.
_OWN_SETTINGS = re.compile(r" SETTINGS output_format_json_quote_decimals = .*?(?=: |\. \(|$)")
_REPEATED_NAME = re.compile(r"(\([A-Z_]+\))\.?\s*\1$")


class StoreError(Exception):
    """The engine or the connection failed; the same call may succeed later (retryable)."""


class QueryError(Exception):
    """ClickHouse refused the SQL. `message` is ClickHouse's own text: one line, no stack trace."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class QueryResult:
    columns: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


class Store(ABC):
    """Where the ledger lives. Every method is a coroutine; no call blocks the event loop."""

    database: str

    @abstractmethod
    async def command(self, sql: str) -> None:
        """Run a statement that returns no result (DDL, INSERT … SELECT, OPTIMIZE)."""

    @abstractmethod
    async def query(
        self,
        sql: str,
        *,
        readonly: bool = False,
        max_rows: int | None = None,
        timeout_s: float | None = None,
    ) -> QueryResult:
        """Run one result-returning statement with the store's database as current database.

        `readonly=True` makes ClickHouse itself refuse writes, DDL and most table functions
        (`readonly=1`); `max_rows` fails the query when the result is larger (it never silently
        truncates); `timeout_s` is enforced by ClickHouse (`max_execution_time`).
        """

    async def insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Insert rows (JSON-friendly dicts) into `table` of this store's database, in one insert."""
        if rows:
            await self.insert_lines(table, json_each_row(rows))

    @abstractmethod
    async def insert_lines(
        self, table: str, lines: bytes, settings: Mapping[str, str] | None = None
    ) -> None:
        """Insert rows already encoded as JSONEachRow lines, in one insert, with format
        `settings` (e.g. how times are parsed)."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the engine answers a trivial query."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connection or the shared embedded session."""


def check_database_name(name: str) -> str:
    """Database names are spliced into SQL (`{db}`), so only plain identifiers are accepted."""
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"invalid ClickHouse database name {name!r}: use letters, digits and _")
    return name


def query_settings(
    *, readonly: bool, max_rows: int | None, timeout_s: float | None
) -> dict[str, int | str | float]:
    """The per-query settings both stores append; limits first so `readonly` cannot lock them."""
    settings: dict[str, int | str | float] = dict(OUTPUT_SETTINGS)
    if max_rows is not None:
        settings["max_result_rows"] = int(max_rows)
        settings["result_overflow_mode"] = "throw"
    if timeout_s is not None:
        settings["max_execution_time"] = float(timeout_s)
    if readonly:
        settings["readonly"] = 1
    return settings


def with_settings(sql: str, settings: dict[str, int | str | float]) -> str:
    """`sql` plus a trailing SETTINGS clause.

    A trailing `;` is dropped (it would make the clause a second statement) and the clause starts
    on its own line so a trailing `-- comment` cannot swallow it.
    """
    body = sql.strip()
    while body.endswith(";"):
        body = body[:-1].rstrip()
    if not settings:
        return body
    parts = []
    for name, value in settings.items():
        literal = f"'{value}'" if isinstance(value, str) else repr(value)
        parts.append(f"{name} = {literal}")
    return f"{body}\nSETTINGS {', '.join(parts)}"


def sql_string(text: str) -> str:
    """A ClickHouse string literal holding `text` exactly (backslash escapes, one line)."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("\0", "\\0")
    )
    return f"'{escaped}'"


def datetime64_text(moment: datetime) -> str:
    """`YYYY-MM-DD hh:mm:ss.fff` in UTC: a row's value for a `DateTime64(3, 'UTC')` column."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def clean_error(text: str) -> QueryError:
    """ClickHouse's message without driver prefixes, nesting, version tags or stack traces."""
    code: int | None = None
    message = text
    match = _ERROR_HEAD.search(message)
    while match:  # chDB nests "Code: N. DB::Exception: Code: N. DB::Exception: …"
        code = code if code is not None else int(match.group(1))
        message = message[match.end() :]
        match = _ERROR_HEAD.match(message)
    message = message.split("Stack trace", 1)[0].strip()
    message = message.splitlines()[0] if message else "query failed"
    message = _VERSION_TAIL.sub("", message).strip()
    message = _REPEATED_NAME.sub(r"\1", message)
    message = _OWN_SETTINGS.sub("", message)
    return QueryError(message, code)


def parse_json_result(payload: bytes) -> QueryResult:
    """Decode ClickHouse's `JSON` output format into a `QueryResult`."""
    if not payload.strip():
        return QueryResult()
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        try:  # orjson stops at 64-bit integers; the stdlib parser has no such limit
            doc = json.loads(payload)
        except ValueError:
            raise QueryError(
                "the result is not JSON: FORMAT and INTO OUTFILE clauses are not supported"
            ) from None
    if not isinstance(doc, dict) or "meta" not in doc:
        raise QueryError("the result is not a ClickHouse JSON document")
    meta = doc.get("meta", [])
    return QueryResult(
        columns=[m["name"] for m in meta],
        types=[m["type"] for m in meta],
        rows=list(doc.get("data", [])),
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def json_each_row(rows: list[dict[str, Any]]) -> bytes:
    """Rows as JSONEachRow (one JSON object per line); Decimals become exact strings."""
    return b"".join(
        orjson.dumps(row, default=_json_default, option=orjson.OPT_APPEND_NEWLINE) for row in rows
    )
