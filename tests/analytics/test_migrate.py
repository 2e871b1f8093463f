"""Migrations: packaged, ordered, idempotent."""

from __future__ import annotations

from analytics.migrate import Migration, load_migrations, migrate, split_statements
from analytics.store import ChdbStore


async def test_migrate_twice_applies_nothing_the_second_time(store: ChdbStore) -> None:
    first = await migrate(store)
    assert first == [m.name for m in load_migrations()]
    assert first[0] == "0001_calls_ledger.sql"
    assert await migrate(store) == []
    tables = await store.query(
        f"SELECT name FROM system.tables WHERE database = '{store.database}' ORDER BY name"
    )
    names = {row["name"] for row in tables.rows}
    assert {"calls", "calls_hourly", "calls_hourly_mv", "rejected_events"} <= names
    recorded = await store.query("SELECT count() AS n FROM schema_migrations")
    assert recorded.rows == [{"n": len(first)}]


async def test_a_new_migration_is_applied_after_the_old_ones(store: ChdbStore) -> None:
    await migrate(store)
    extra = Migration(
        "9999_probe.sql", "CREATE TABLE IF NOT EXISTS {db}.probe (x UInt8)\nENGINE = Memory;\n"
    )
    assert await migrate(store, [*load_migrations(), extra]) == ["9999_probe.sql"]
    assert await migrate(store, [*load_migrations(), extra]) == []


def test_calls_columns_match_the_call_event() -> None:
    """Every CallEvent field is a `calls` column: in the table's DDL, or added by a later
    migration (the ledger inserts each event's JSON as it is)."""
    from tollway.events import CallEvent

    migrations = load_migrations()
    calls = migrations[0].sql.split("CREATE TABLE IF NOT EXISTS {db}.calls_hourly")[0]
    added = " ".join(m.sql for m in migrations[1:])
    for field in CallEvent.model_fields:
        in_ddl = f"\n    {field} " in calls
        assert in_ddl or f"ALTER TABLE {{db}}.calls ADD COLUMN IF NOT EXISTS {field} " in added, (
            field
        )


def test_split_statements_ignores_comments_and_blank_pieces() -> None:
    sql = "-- header;\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\n-- c\nSELECT 1\n;\n"
    assert split_statements(sql) == ["CREATE TABLE a (x UInt8) ENGINE = Memory", "SELECT 1"]


def test_a_replicated_database_gets_replicated_engines() -> None:
    sql = (
        "CREATE TABLE IF NOT EXISTS {db}.a (x UInt8) ENGINE = ReplacingMergeTree(ts) ORDER BY x;\n"
        "CREATE TABLE IF NOT EXISTS {db}.b (x UInt8) ENGINE=SummingMergeTree ORDER BY x;\n"
        "CREATE TABLE IF NOT EXISTS {db}.c (x UInt8) ENGINE = MergeTree ORDER BY x;\n"
        "CREATE TABLE IF NOT EXISTS {db}.d (x UInt8) ENGINE = ReplicatedMergeTree ORDER BY x;\n"
    )
    statements = Migration("0001_x.sql", sql).statements("tollway", replicated=True)
    assert [s.split("ENGINE", 1)[-1].split(" ORDER")[0] for s in statements[:4]] == [
        " = ReplicatedReplacingMergeTree(ts)",
        " = ReplicatedSummingMergeTree",
        " = ReplicatedMergeTree",
        " = ReplicatedMergeTree",  # already replicated: left alone
    ]
    assert Migration("0001_x.sql", sql).statements("tollway") == [
        s.replace("{db}", "`tollway`") for s in split_statements(sql)
    ]


def test_every_packaged_engine_has_a_replicated_twin() -> None:
    for migration in load_migrations():
        for statement in migration.statements("tollway", replicated=True):
            engine = statement.partition("ENGINE")[2].lstrip(" =").split()[0:1]
            if engine and "MergeTree" in engine[0]:
                assert engine[0].startswith("Replicated"), (migration.name, statement[:80])
