"""`tollway sql "SELECT …"`: read-only SQL through the running server's analytics API.

The command never opens the store itself (a chDB directory belongs to the one `tollway up`
process); it posts to `/v1/analytics/sql` with an admin or finops key: `--key`, else
`TOLLWAY_ADMIN_KEY`, else the admin key `tollway up` keeps in the data dir.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from tollway.cli.api_client import ApiClient

out = Console()
err = Console(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


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
    client = ApiClient(url, key, timeout)
    payload: dict[str, Any] = {"query": query}
    if max_rows is not None:
        payload["max_rows"] = max_rows
    accept = "text/csv" if output is OutputFormat.csv else "application/json"
    response = client.request("POST", "/v1/analytics/sql", json=payload, headers={"Accept": accept})
    if output is OutputFormat.csv:
        typer.echo(response.text, nl=False)
    elif output is OutputFormat.json:
        typer.echo(json.dumps(response.json(), indent=2, ensure_ascii=False))
    else:
        _print_table(response.json())


def register(app: typer.Typer) -> None:
    app.command("sql")(sql)
