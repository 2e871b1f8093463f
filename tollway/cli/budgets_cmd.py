"""`tollway budgets status`: every budget's spend, limit, forecast and state, from the ledger."""

from __future__ import annotations

import json
from decimal import Decimal

import typer
from rich.console import Console
from rich.table import Table

from tollway.cli.api_client import ApiClient

app = typer.Typer(no_args_is_help=True)
out = Console()

STATE_STYLE = {"ok": "green", "warned": "yellow", "exceeded": "bold red"}


def _money(value: str | None) -> str:
    return "" if value is None else f"${Decimal(value):,.2f}"


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answer."),
    url: str | None = typer.Option(None, "--url", help="Base URL of tollway."),
    key: str | None = typer.Option(None, "--key", help="A viewer, finops or admin key."),
) -> None:
    """Spend against each budget in its current period (GET /v1/analytics/budgets)."""
    budgets = ApiClient(url, key).request("GET", "/v1/analytics/budgets").json()["budgets"]
    if as_json:
        typer.echo(json.dumps(budgets, indent=2))
        return
    if not budgets:
        out.print("no budgets configured (add a `budgets:` section to tollway.yaml)")
        return
    table = Table(header_style="bold")
    for column in ("budget", "period", "spent", "limit", "used", "forecast", "action", "state"):
        table.add_column(
            column, justify="right" if column in ("spent", "limit", "used") else "left"
        )
    for b in budgets:
        style = STATE_STYLE.get(b["state"], "")
        table.add_row(
            b["id"], f"{b['period']} ({b['timezone']})", _money(b["spend_usd"]),
            _money(b["limit_usd"]), f"{b['ratio'] * 100:.1f}%", _money(b.get("forecast_usd")),
            b["action"], f"[{style}]{b['state']}[/]",
        )  # fmt: skip
    out.print(table)
