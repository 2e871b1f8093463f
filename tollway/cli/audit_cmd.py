"""`tollway audit`: the audit trail — who changed keys, budgets and webhooks, and who tried to
without the role — newest first, through the running server (GET /v1/analytics/audit)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import typer
from rich.console import Console
from rich.table import Table

from tollway.cli.api_client import ApiClient

out = Console()


def audit(
    since: str | None = typer.Option(None, "--since", help="ISO 8601 date or date-time."),
    action: list[str] = typer.Option(
        [], "--action", help="key.create, key.revoke, budget.set, ...; repeat for several."
    ),
    actor: str | None = typer.Option(None, "--actor", help="The id of the key that acted."),
    target: str | None = typer.Option(None, "--target", help="A key, budget or webhook id."),
    limit: int = typer.Option(50, "--limit", help="Rows, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answer."),
    url: str | None = typer.Option(None, "--url", help="Base URL of tollway."),
    key: str | None = typer.Option(None, "--key", help="An admin key."),
) -> None:
    """Changes made through the admin API, and refused attempts at it."""
    query: list[tuple[str, str]] = [("limit", str(limit))]
    query += [("action", a) for a in action]
    query += [(n, v) for n, v in (("since", since), ("actor", actor), ("target", target)) if v]
    path = f"/v1/analytics/audit?{urlencode(query)}"
    entries = ApiClient(url, key).request("GET", path).json()["entries"]
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        out.print("no audit entries")
        return
    table = Table(header_style="bold")
    for column in ("time", "actor", "action", "target", "details"):
        table.add_column(column)
    for e in entries:
        details = json.dumps(e["details"], separators=(",", ":"))
        table.add_row(
            e["ts"], f"{e['actor']} ({e['actor_role']})", e["action"], e["target"], details[:120]
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
