"""Numbered schema migrations, applied at every start-up.

Migrations are the files `analytics/migrations/NNNN_name.sql` (shipped as package data), applied
in name order. Each statement ends with `;` at the end of a line and names tables as `{db}.table`,
so one file serves any database name on chDB and on a server. Applied migrations are recorded in
`{db}.schema_migrations`; statements are written idempotently (IF NOT EXISTS), so two processes
starting together, or a crash between a statement and its record, leave a correct schema.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

from analytics.store.base import Store, quote_identifier, sql_string

log = logging.getLogger(__name__)

_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")
_MERGE_TREE = re.compile(
    r"\bENGINE\s*=\s*((?:Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing)?MergeTree)\b"
)
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self, database: str, *, replicated: bool = False) -> list[str]:
        sql = replicated_engines(self.sql) if replicated else self.sql
        return [s.replace("{db}", quote_identifier(database)) for s in split_statements(sql)]


def replicated_engines(sql: str) -> str:
    """Every MergeTree-family engine as its Replicated twin, arguments kept: what tables need
    in a Replicated database on a cluster, which supplies the Keeper path and replica name."""
    return _MERGE_TREE.sub(lambda m: f"ENGINE = Replicated{m.group(1)}", sql)


def split_statements(sql: str) -> list[str]:
    """Split on `;` at line ends; drop comment-only lines and empty pieces."""
    kept = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [piece.strip() for piece in _STATEMENT_END.split(kept) if piece.strip()]


def load_migrations() -> list[Migration]:
    """The packaged migrations, oldest first."""
    folder = resources.files("analytics").joinpath("migrations")
    found = [
        Migration(entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if _NAME.match(entry.name)
    ]
    return sorted(found, key=lambda m: m.name)


async def migrate(store: Store, migrations: list[Migration] | None = None) -> list[str]:
    """Create the database, apply pending migrations in order; return the names applied."""
    db = quote_identifier(store.database)
    await store.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    replicated = await _database_engine(store) == "Replicated"  # on a cluster: docs/scaling.md
    ledger_table = (
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations ("
        " name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)"
        ") ENGINE = ReplacingMergeTree ORDER BY name"
    )
    await store.command(replicated_engines(ledger_table) if replicated else ledger_table)
    result = await store.query(f"SELECT name, checksum FROM {db}.schema_migrations")
    applied = {row["name"]: row["checksum"] for row in result.rows}

    done: list[str] = []
    for migration in load_migrations() if migrations is None else migrations:
        if migration.name in applied:
            if applied[migration.name] != migration.checksum:
                log.warning("migration %s changed after it was applied", migration.name)
            continue
        log.info("applying migration %s to %s", migration.name, store.database)
        for statement in migration.statements(store.database, replicated=replicated):
            await store.command(statement)
        await store.insert_rows(
            "schema_migrations", [{"name": migration.name, "checksum": migration.checksum}]
        )
        done.append(migration.name)
    return done


async def _database_engine(store: Store) -> str:
    result = await store.query(
        f"SELECT engine FROM system.databases WHERE name = {sql_string(store.database)}"
    )
    return str(result.rows[0]["engine"]) if result.rows else ""
