"""The chDB store against a real embedded ClickHouse: round trips, formats, read-only limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.store import ChdbStore, QueryError, ServerStore, StoreError, open_store
from analytics.store.base import clean_error, with_settings
from tollway.settings import Settings


async def _table(store: ChdbStore) -> None:
    await store.command(f"CREATE DATABASE IF NOT EXISTS {store.database}")
    await store.command(
        f"CREATE TABLE {store.database}.t (id UInt64, cost Decimal(18, 9), note String,"
        " tags Map(String, String), at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY id"
    )


async def test_round_trip_keeps_exact_types(store: ChdbStore) -> None:
    await _table(store)
    rows = [
        {
            "id": 2**64 - 1,
            "cost": "0.000000001",
            "note": "a; DROP TABLE t",
            "tags": {"k": "v"},
            "at": "2025-03-14 09:26:53.589",
        },
        {"id": 1, "cost": "12.5", "note": "", "tags": {}, "at": "2025-03-14 09:26:54.000"},
    ]
    await store.insert_rows("t", rows)
    result = await store.query("SELECT * FROM t ORDER BY id")
    assert result.columns == ["id", "cost", "note", "tags", "at"]
    assert result.types[:2] == ["UInt64", "Decimal(18, 9)"]
    assert result.rows[0] == {
        "id": 1,
        "cost": "12.5",
        "note": "",
        "tags": {},
        "at": "2025-03-14 09:26:54.000",
    }
    assert result.rows[1]["id"] == 2**64 - 1  # an int, not a quoted string
    assert result.rows[1]["cost"] == "0.000000001"  # exact decimal text
    assert result.rows[1]["note"] == "a; DROP TABLE t"  # row data is never parsed as SQL


async def test_databases_share_one_directory(store: ChdbStore, chdb_dir: Path) -> None:
    other = ChdbStore(chdb_dir, store.database + "_b")
    try:
        await _table(store)
        await _table(other)
        await store.insert_rows("t", [{"id": 1, "cost": "1", "note": "mine", "tags": {}, "at": 0}])
        # unqualified names resolve in each store's own database, whichever ran last
        assert (await other.query("SELECT count() AS n FROM t")).rows == [{"n": 0}]
        assert (await store.query("SELECT count() AS n FROM t")).rows == [{"n": 1}]
        assert (await store.query("SELECT currentDatabase() AS d")).rows == [{"d": store.database}]
    finally:
        await other.command(f"DROP DATABASE IF EXISTS {other.database}")
        await other.close()


async def test_errors_are_clean_and_do_not_leak_into_the_next_result(store: ChdbStore) -> None:
    with pytest.raises(QueryError) as info:
        await store.query("SELECT * FROM numbers(10)", max_rows=3)
    assert info.value.code == 396
    assert "\n" not in info.value.message and "Stack trace" not in info.value.message
    assert "version" not in info.value.message
    # chDB used to prepend the failed query's partial output to the next result
    result = await store.query("SELECT 42 AS answer")
    assert result.rows == [{"answer": 42}]

    with pytest.raises(QueryError) as info:
        await store.query("SELEC 1")
    assert "Syntax error" in info.value.message


async def test_readonly_refuses_writes_ddl_and_file_access(store: ChdbStore) -> None:
    await _table(store)
    refused = [
        "INSERT INTO t SELECT 1, 1, 'x', map(), now64(3)",
        "CREATE TABLE t2 (x UInt8) ENGINE = Memory",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
    ]
    for sql in refused:
        with pytest.raises(QueryError) as info:
            await store.query(sql, readonly=True)
        assert info.value.code == 164, sql  # READONLY
    # the same statements run when not read-only (so readonly=1 is what refused them)
    await store.query("SELECT * FROM file('/etc/hostname', 'LineAsString')")
    # a statement cannot lift the limit with its own SETTINGS
    with pytest.raises(QueryError):
        await store.query("SELECT 1 SETTINGS readonly = 0", readonly=True)


async def test_time_limit(store: ChdbStore) -> None:
    with pytest.raises(QueryError) as info:
        await store.query(
            "SELECT sleepEachRow(0.5) FROM numbers(4) SETTINGS max_block_size = 1",
            timeout_s=0.6,
        )
    assert info.value.code == 159  # TIMEOUT_EXCEEDED


async def test_ping_and_closed_store(chdb_dir: Path) -> None:
    store = ChdbStore(chdb_dir, "default")
    assert await store.ping()
    await store.close()
    with pytest.raises(StoreError):
        await store.query("SELECT 1")


async def test_second_directory_in_one_process_is_refused(chdb_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="one chDB directory"):
        ChdbStore(tmp_path / "elsewhere", "tollway")


def test_open_store_picks_the_implementation(tmp_path: Path) -> None:
    server = open_store(Settings(clickhouse_url="http://u:secret@ch.example:8123"))
    assert isinstance(server, ServerStore)
    assert server.database == "tollway" and "secret" not in repr(server)


def test_invalid_database_name_is_refused(chdb_dir: Path) -> None:
    with pytest.raises(ValueError):
        ChdbStore(chdb_dir, "x; DROP")


def test_settings_clause_survives_comments_and_semicolons() -> None:
    sql = with_settings("SELECT 1 -- note\n;", {"readonly": 1, "result_overflow_mode": "throw"})
    assert sql == "SELECT 1 -- note\nSETTINGS readonly = 1, result_overflow_mode = 'throw'"


def test_clean_error_strips_driver_noise() -> None:
    error = clean_error(
        "HTTPDriver for http://h:8123 received ClickHouse error code 62\n"
        " Code: 62. DB::Exception: Syntax error: failed at position 1. (SYNTAX_ERROR)"
        " (version 24.8.4.13 (official build))\nStack trace:\n0. x"
    )
    assert error.code == 62
    assert error.message == "Syntax error: failed at position 1. (SYNTAX_ERROR)"
