"""`tollway sessions list|show`: what sessions cost — the calls that named one
`x-tollway-session-id`, or a coding tool's own session header — from the running server's
analytics API (/v1/analytics/sessions and /calls; a finops or admin key)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import typer
from rich.console import Console
from rich.table import Table

from tollway.cli.api_client import ApiClient

app = typer.Typer(no_args_is_help=True)
out = Console()

URL = typer.Option(None, "--url", help="Base URL of tollway (default: TOLLWAY_HOST:TOLLWAY_PORT).")
KEY = typer.Option(None, "--key", help="A finops or admin key (default: TOLLWAY_ADMIN_KEY).")


def _since(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usd(value: str) -> str:
    return f"${Decimal(value):,.4f}"


@app.command("list")
def list_sessions(
    days: float = typer.Option(7, "--days", min=0.01, help="How far back (default 7 days)."),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="The costliest this many."),
    business_line: str | None = typer.Option(None, "--business-line", "-b"),
    project: str | None = typer.Option(None, "--project", "-p"),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answer."),
    url: str | None = URL,
    key: str | None = KEY,
) -> None:
    """The costliest sessions, and what a session typically costs."""
    params = {"start": _since(days), "limit": limit, "business_line": business_line,
              "project": project}  # fmt: skip
    query = urlencode({k: v for k, v in params.items() if v is not None})
    body = ApiClient(url, key).request("GET", f"/v1/analytics/sessions?{query}").json()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    summary = body["summary"]
    out.print(
        f"{summary['sessions']:,} sessions cost {_usd(summary['cost_usd'])}: median "
        f"{_usd(summary['median_cost_usd'])}, 90th percentile {_usd(summary['p90_cost_usd'])}, "
        f"most {_usd(summary['max_cost_usd'])}",
        highlight=False,
    )
    table = Table(header_style="bold")
    columns = ("session", "cost", "calls", "failed", "refused", "started", "minutes", "models")
    for column in (*columns, "who"):
        table.add_column(column, justify="right" if column in ("cost", "calls") else "left")
    for s in body["sessions"]:
        who = "/".join(p for p in (s["business_line"], s["project"], s["task_type"]) if p)
        refused = str(s["limited"]) if s["limited"] else ""  # at sessions.limit_usd
        table.add_row(
            s["session_id"], _usd(s["cost_usd"]), f"{s['calls']:,}", str(s["errors"]), refused,
            s["first_ts"], f"{(s['duration_s'] or 0) / 60:.1f}", ", ".join(s["models"]), who,
        )  # fmt: skip
    out.print(table)


@app.command()
def show(
    session_id: str = typer.Argument(..., help="The session id, e.g. claude-code:54c1eb09-…"),
    days: float = typer.Option(30, "--days", min=0.01, help="How far back (default 30 days)."),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answers."),
    url: str | None = URL,
    key: str | None = KEY,
) -> None:
    """One session: what it cost, and its calls (newest first)."""
    client = ApiClient(url, key)
    query = urlencode({"start": _since(days), "session_id": session_id})
    found = client.request("GET", f"/v1/analytics/sessions?{query}").json()["sessions"]
    calls = client.request("GET", f"/v1/analytics/calls?{query}&limit=1000").json()["calls"]
    if as_json:
        typer.echo(json.dumps({"session": found[0] if found else None, "calls": calls}, indent=2))
        return
    if not found:
        out.print(f"no calls named session {session_id!r} in the last {days:g} days")
        raise typer.Exit(1)
    s = found[0]
    out.print(
        f"session {s['session_id']}: {_usd(s['cost_usd'])} over {s['calls']:,} calls "
        f"({s['errors']} failed) in {(s['duration_s'] or 0) / 60:.1f} min, from {s['first_ts']}"
        + (f"; {s['limited']} refused at its limit (sessions.limit_usd)" if s["limited"] else ""),
        highlight=False,
    )
    table = Table(header_style="bold")
    for column in ("time", "model", "status", "cost", "in", "out", "ms"):
        table.add_column(
            column, justify="right" if column in ("cost", "in", "out", "ms") else "left"
        )
    for c in calls:
        table.add_row(
            c["ts"], c["model"], c["status"], _usd(c["cost_usd"]), f"{c['input_tokens']:,}",
            f"{c['output_tokens']:,}", f"{c['duration_ms']:,}",
        )  # fmt: skip
    out.print(table)
