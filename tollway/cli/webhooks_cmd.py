"""`tollway webhooks list|test`: the configured webhook endpoints, and a live signed test.

`list` reads tollway.yaml directly (no server needed) and shows each endpoint's id, URL and
event types, plus the *name* of its secret variable and whether it is set here — never the
secret. `test` asks the running server (the worker role holds the secrets) to deliver a signed
`webhook.test` event now, and exits 1 unless the endpoint accepted it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ingest.webhooks.delivery import redact_url
from tollway.cli.api_client import ApiClient
from tollway.cli.config_cmd import _resolve, load_or_exit

app = typer.Typer(no_args_is_help=True)
out = Console()
err = Console(stderr=True)

URL = typer.Option(None, "--url", help="Base URL of tollway (default: TOLLWAY_HOST:TOLLWAY_PORT).")
KEY = typer.Option(None, "--key", help="An admin key (default: TOLLWAY_ADMIN_KEY or the data dir).")


@app.command("list")
def list_webhooks(
    config: Path | None = typer.Option(
        None, "--config", help="tollway.yaml (default: $TOLLWAY_CONFIG, else the demo config)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the configured webhook endpoints (id, URL, events); secrets are never shown."""
    cfg = load_or_exit(_resolve(config))
    rows = [
        {
            "id": hook.id,
            "url": redact_url(hook.url),
            "events": list(hook.events),
            "secret_env": hook.secret_env,
            "secret_set": bool(os.environ.get(hook.secret_env)),
            "max_attempts": hook.max_attempts,
            "max_concurrency": hook.max_concurrency,
        }
        for hook in cfg.webhooks
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        err.print("no webhooks configured (tollway.yaml `webhooks:`)")
        return
    table = Table(header_style="bold")
    for column in ("id", "url", "events", "secret variable", "attempts"):
        table.add_column(column, overflow="fold")
    for hook in cfg.webhooks:
        state = "set" if os.environ.get(hook.secret_env) else "[red]not set[/]"
        table.add_row(
            escape(hook.id or ""), escape(redact_url(hook.url)), ", ".join(hook.events),
            f"{hook.secret_env} ({state})", str(hook.max_attempts),
        )  # fmt: skip
    out.print(table)


@app.command()
def test(
    webhook_id: str = typer.Argument(..., help="The webhook id, e.g. wh-1 (see `webhooks list`)."),
    attempts: int = typer.Option(1, "--attempts", min=1, max=50, help="Tries before giving up."),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answer."),
    url: str | None = URL,
    key: str | None = KEY,
) -> None:
    """Send a signed `webhook.test` event to one endpoint now; exit 1 unless it is accepted."""
    client = ApiClient(url, key)
    path = f"/v1/admin/webhooks/{webhook_id}/test?attempts={attempts}"
    result = client.request("POST", path).json()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif result["outcome"] == "delivered":
        out.print(
            f"[green]delivered[/] {escape(result['webhook_id'])} to {escape(result['webhook'])} "
            f"({escape(result['url'])}): HTTP {result['http_status']} "
            f"in {result['duration_ms']} ms",
            highlight=False,
        )
    else:
        err.print(
            f"[red]not delivered[/] to {escape(result['webhook'])} ({escape(result['url'])}) "
            f"after {result['attempts']} attempt(s): {escape(result['error'])}",
            highlight=False,
        )
    if result["outcome"] != "delivered":
        raise typer.Exit(code=1)
