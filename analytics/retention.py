"""How long the ledger keeps what: the logging policy's TTLs, applied to `calls` at start-up.

Two clocks, both counted from a call's `ts`:

- `logging.content_retention_days`: prompts and completions (`request_content`,
  `response_content`, present only when `logging.content` is on) are cleared after this many
  days — a column TTL, so the call's row, its cost and attribution stay.
- `logging.ledger_retention_days`: whole rows are deleted after this many days; unset (the
  default) keeps the ledger for ever. The rollups (`calls_hourly`, `calls_daily`, the route
  rollups, …) and `rated_calls` have no TTL, so spend history by day and hour, and the routing
  statistics over it, outlive the per-call rows.

ClickHouse applies a TTL when it merges parts (and `OPTIMIZE TABLE … FINAL` forces it), so a row
may outlive its day by a merge interval. The policy lives in `tollway.yaml`, not in a migration,
so changing it needs no new migration: each start (and each hot reload) compares the table's
TTLs with the policy and alters only what differs, because a TTL change rewrites the table's parts.
"""

from __future__ import annotations

import logging
import re

from analytics.store.base import Store, quote_identifier, sql_string
from tollway.config.governance import LoggingPolicy

log = logging.getLogger(__name__)

CONTENT_COLUMNS = ("request_content", "response_content")
_TTL = re.compile(r"\bTTL (.+?)(?: SETTINGS |$)")


def ttl_expression(days: int | None) -> str | None:
    """The TTL clause for `days` after a call, as ClickHouse prints it back."""
    return None if days is None else f"toDateTime(ts) + toIntervalDay({days})"


def retention_statements(create_query: str, policy: LoggingPolicy) -> list[str]:
    """The ALTERs that bring `calls` (described by its `create_table_query`) to `policy`.

    Returns no statements when the table already matches, so applying is idempotent and cheap."""
    columns, _, engine = create_query.partition(") ENGINE = ")
    statements: list[str] = []

    want_content = ttl_expression(policy.content_retention_days)
    for column in CONTENT_COLUMNS:
        current = _column_ttl(columns, column)
        if current != want_content:
            statements.append(f"ALTER TABLE {{db}}.calls MODIFY COLUMN {column} TTL {want_content}")

    want_rows = ttl_expression(policy.ledger_retention_days)
    found = _TTL.search(engine)
    current_rows = found.group(1).strip() if found else None
    if current_rows != want_rows:
        statements.append(
            "ALTER TABLE {db}.calls REMOVE TTL"
            if want_rows is None
            else f"ALTER TABLE {{db}}.calls MODIFY TTL {want_rows}"
        )
    return statements


async def apply_retention(store: Store, policy: LoggingPolicy) -> list[str]:
    """Set the ledger's TTLs from the logging policy; return the statements run."""
    result = await store.query(
        "SELECT create_table_query FROM system.tables"
        f" WHERE database = {sql_string(store.database)} AND name = 'calls'"
    )
    if not result.rows:
        return []  # no ledger yet: migrations create it first
    statements = retention_statements(str(result.rows[0]["create_table_query"]), policy)
    db = quote_identifier(store.database)
    for statement in statements:
        log.info("ledger retention: %s", statement.replace("{db}.", ""))
        await store.command(statement.replace("{db}", db))
    return statements


def _column_ttl(columns: str, column: str) -> str | None:
    """The TTL expression of one column in a `create_table_query`, if it has one."""
    found = re.search(rf"`{column}` [^,]*?\bTTL ([^,]+?)(?:,|$)", columns)
    return found.group(1).strip() if found else None
