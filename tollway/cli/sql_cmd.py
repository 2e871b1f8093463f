"""`tollway sql "SELECT …"`: read-only SQL through the running server's analytics API.

The command never opens the store itself (a chDB directory belongs to the one `tollway up`
process); it posts to `/v1/analytics/sql` with an admin or finops key: `--key`, else
`TOLLWAY_ADMIN_KEY`, else the admin key `tollway up` keeps in the data dir.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from tollway import keystore
from tollway.settings import Settings

out = Console()
err = Console(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def resolve_key(explicit: str | None, settings: Settings) -> str | None:
    if explicit:
        return explicit
    if settings.admin_key:
        return settings.admin_key.get_secret_value()
    return keystore.read_admin_key(settings.data_dir)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _print_table(body: dict[str, Any]) -> None:
    table = Table(show_lines=False, header_style="bold")
    for column in body["columns"]:
        table.add_column(column, overflow="fold")
    for row in body["data"]:
        table.add_row(*(_cell(row.get(column)) for column in body["columns"]))
    out.print(table)
    count = len(body["data"])
    err.print(f"[dim]{count} row{'s' if count != 1 else ''}[/dim]")


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]{message}[/red]", highlight=False)
    return typer.Exit(code=1)


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or response.text)
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}: {response.text.strip()[:500]}"


def sql(
    query: str = typer.Argument(..., help='One read-only statement, e.g. "SELECT … FROM calls".'),
    output: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", help="table (default), csv or json."
    ),
    url: str | None = typer.Option(
        None,
        "--url",
        help="Base URL of the tollway server (default: http://TOLLWAY_HOST:TOLLWAY_PORT).",
    ),
    key: str | None = typer.Option(
        None,
        "--key",
        help="A finops or admin key (default: TOLLWAY_ADMIN_KEY, else DATA_DIR/admin-key).",
    ),
    max_rows: int | None = typer.Option(None, "--max-rows", min=1, help="Fail above this."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for the answer."),
) -> None:
    """Run a read-only SQL query on the cost ledger (tables: calls, calls_hourly, …)."""
    settings = Settings()
    base = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
    secret = resolve_key(key, settings)
    if not secret:
        raise _fail(
            "no key: pass --key, set TOLLWAY_ADMIN_KEY, or run `tollway up` (it writes "
            f"{settings.data_dir / keystore.ADMIN_KEY_FILE})"
        )
    payload: dict[str, Any] = {"query": query}
    if max_rows is not None:
        payload["max_rows"] = max_rows
    headers = {
        "Authorization": f"Bearer {secret}",
        "Accept": "text/csv" if output is OutputFormat.csv else "application/json",
    }
    try:
        response = httpx.post(
            f"{base}/v1/analytics/sql", json=payload, headers=headers, timeout=timeout
        )
    except httpx.ConnectError:
        raise _fail(f"cannot reach tollway at {base}: is `tollway up` running?") from None
    except httpx.HTTPError as exc:
        raise _fail(f"request to {base} failed: {exc}") from None

    if response.status_code != 200:
        raise _fail(_error_message(response))
    if output is OutputFormat.csv:
        typer.echo(response.text, nl=False)
    elif output is OutputFormat.json:
        typer.echo(json.dumps(response.json(), indent=2, ensure_ascii=False))
    else:
        _print_table(response.json())


def register(app: typer.Typer) -> None:
    app.command("sql")(sql)
