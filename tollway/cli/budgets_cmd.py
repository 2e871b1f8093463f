"""`tollway budgets status`: every budget's spend, limit, forecast and state, from the ledger;
`tollway budgets list|set|delete`: the budgets themselves, set without editing tollway.yaml
through the running server's admin API (/v1/admin/budgets)."""

from __future__ import annotations

import json
from decimal import Decimal

import typer
from rich.console import Console
from rich.table import Table

from tollway.cli.api_client import ApiClient

app = typer.Typer(no_args_is_help=True)
out = Console()

URL = typer.Option(None, "--url", help="Base URL of tollway (default: TOLLWAY_HOST:TOLLWAY_PORT).")
ADMIN_KEY = typer.Option(
    None, "--key", help="An admin key (default: TOLLWAY_ADMIN_KEY or the data dir)."
)

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
        out.print("no budgets (add them to tollway.yaml, or with `tollway budgets set`)")
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


@app.command("list")
def list_budgets(
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answer."),
    url: str | None = URL,
    key: str | None = ADMIN_KEY,
) -> None:
    """Every budget in force, the file's and those set through the API."""
    budgets = ApiClient(url, key).request("GET", "/v1/admin/budgets").json()["budgets"]
    if as_json:
        typer.echo(json.dumps(budgets, indent=2))
        return
    table = Table(header_style="bold")
    for column in ("budget", "scope", "period", "limit", "alerts", "action", "source"):
        table.add_column(column, justify="right" if column == "limit" else "left")
    for b in budgets:
        scope = ", ".join(f"{k}={v}" for k, v in b["scope"].items() if v) or "everything"
        source = b["source"] if b["enforced"] else f"{b['source']} [red](not enforced)[/]"
        alerts = " ".join(f"{a:.0%}" for a in b["alerts"])
        table.add_row(
            b["id"], scope, b["period"], _money(b["limit_usd"]), alerts, b["action"], source
        )
    out.print(table)


@app.command("set")
def set_budget(
    budget_id: str = typer.Argument(..., help="The budget's id."),
    limit_usd: Decimal = typer.Option(..., "--limit", help="USD a period."),
    period: str = typer.Option(
        "monthly", "--period", help="daily, weekly, monthly, quarterly or total."
    ),
    timezone: str = typer.Option("UTC", "--timezone", help="Where periods start (IANA name)."),
    business_line: str | None = typer.Option(None, "--business-line", "-b"),
    project: str | None = typer.Option(None, "--project", "-p"),
    task_type: str | None = typer.Option(None, "--task-type", "-t"),
    key_id: str | None = typer.Option(None, "--key-id", help="One virtual key's spend."),
    user: str | None = typer.Option(None, "--user"),
    model: str | None = typer.Option(None, "--model"),
    alert: list[float] = typer.Option([], "--alert", help="Share of the limit; repeat."),
    action: str = typer.Option("alert_only", "--action", help="alert_only, block or downgrade."),
    downgrade_to: str | None = typer.Option(None, "--downgrade-to"),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answer."),
    url: str | None = URL,
    key: str | None = ADMIN_KEY,
) -> None:
    """Create or replace a budget (not one declared in tollway.yaml)."""
    scope = {
        "business_line": business_line, "project": project, "task_type": task_type,
        "key_id": key_id, "user": user, "model": model,
    }  # fmt: skip
    body: dict[str, object] = {
        "scope": {k: v for k, v in scope.items() if v is not None},
        "limit_usd": str(limit_usd),
        "period": period,
        "timezone": timezone,
        "action": action,
    }
    if alert:
        body["alerts"] = alert
    if downgrade_to:
        body["downgrade_to"] = downgrade_to
    answer = ApiClient(url, key).request("PUT", f"/v1/admin/budgets/{budget_id}", json=body)
    if as_json:
        typer.echo(json.dumps(answer.json(), indent=2))
        return
    verb = "created" if answer.status_code == 201 else "replaced"
    out.print(f"[green]{verb}[/] {budget_id}: {_money(str(limit_usd))} {period}, {action}")


@app.command("delete")
def delete_budget(
    budget_id: str = typer.Argument(..., help="The budget's id."),
    url: str | None = URL,
    key: str | None = ADMIN_KEY,
) -> None:
    """Delete a budget set through the API."""
    ApiClient(url, key).request("DELETE", f"/v1/admin/budgets/{budget_id}")
    out.print(f"[green]deleted[/] {budget_id}")
