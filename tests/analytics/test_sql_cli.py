"""`tollway sql` against a real server (uvicorn in a thread) on a chDB ledger."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from analytics.ledger import Ledger
from analytics.store import ChdbStore
from tests.analytics.conftest import make_events
from tests.analytics.test_sql_api import ADMIN_KEY, DEV_KEY, _app
from tollway.cli import sql_cmd


def _cli() -> typer.Typer:
    app = typer.Typer()
    sql_cmd.register(app)

    @app.callback()
    def _root() -> None:
        """Keeps `sql` a named sub-command, as in the real CLI."""

    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def server_url(ledger_store: ChdbStore) -> AsyncIterator[str]:
    await Ledger(ledger_store).write(make_events(6))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(_app(ledger_store), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.delenv("TOLLWAY_ADMIN_KEY", raising=False)
    monkeypatch.setenv("TOLLWAY_DATA_DIR", str(tmp_path))
    return CliRunner()


def _run(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(_cli(), ["sql", *args])
    return result.exit_code, result.stdout, result.stderr


async def test_table_csv_and_json(runner: CliRunner, server_url: str, tmp_path: Path) -> None:
    (tmp_path / "admin-key").write_text(ADMIN_KEY + "\n")  # as `tollway up` leaves it
    query = "SELECT model, count() AS n FROM calls GROUP BY model ORDER BY model"

    code, stdout, _ = _run(runner, query, "--url", server_url)
    assert code == 0
    assert "gpt-4o-mini" in stdout and "│" in stdout

    code, stdout, _ = _run(runner, query, "--url", server_url, "--format", "csv")
    assert (code, stdout) == (0, "model,n\ngpt-4o,3\ngpt-4o-mini,3\n")

    code, stdout, _ = _run(runner, query, "--url", server_url, "-f", "json")
    assert json.loads(stdout)["data"] == [
        {"model": "gpt-4o", "n": 3},
        {"model": "gpt-4o-mini", "n": 3},
    ]


async def test_errors_exit_1_with_the_message(
    runner: CliRunner, server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOLLWAY_ADMIN_KEY", ADMIN_KEY)
    code, _, stderr = _run(runner, "SELECT 1; SELECT 2", "--url", server_url)
    assert code == 1 and "one statement per request" in stderr

    code, _, stderr = _run(runner, "SELECT 1", "--url", server_url, "--key", DEV_KEY)
    assert code == 1 and "may not use this endpoint" in stderr


def test_no_server_and_no_key(runner: CliRunner) -> None:
    code, _, stderr = _run(
        runner, "SELECT 1", "--url", f"http://127.0.0.1:{_free_port()}", "--key", "k"
    )
    assert code == 1 and "is `tollway up` running?" in stderr

    code, _, stderr = _run(runner, "SELECT 1")
    assert code == 1 and "no key" in stderr
