"""`tollway keys create|list|limit|content|rotate|revoke`: virtual keys, through the running
server's admin API."""

from __future__ import annotations

import json
from enum import StrEnum

import typer
from rich.console import Console
from rich.table import Table

from tollway.cli.api_client import ApiClient

app = typer.Typer(no_args_is_help=True)
out = Console()

URL = typer.Option(None, "--url", help="Base URL of tollway (default: TOLLWAY_HOST:TOLLWAY_PORT).")
KEY = typer.Option(None, "--key", help="An admin key (default: TOLLWAY_ADMIN_KEY or the data dir).")


@app.command()
def create(
    business_line: str = typer.Option(..., "--business-line", "-b", help="Who pays."),
    project: str = typer.Option("", "--project", "-p"),
    task_type: str = typer.Option("", "--task-type", "-t", help="Default task type."),
    role: str = typer.Option("developer", "--role", help="viewer, developer, finops or admin."),
    name: str = typer.Option("", "--name", help="What the key is for."),
    key_id: str | None = typer.Option(None, "--id", help="Key id (default: generated)."),
    allowed_model: list[str] = typer.Option([], "--allowed-model", help="Repeat to allow several."),
    expires_in_days: float | None = typer.Option(None, "--expires-in-days"),
    rpm: int | None = typer.Option(None, "--rpm", help="Requests a minute, across replicas."),
    tpm: int | None = typer.Option(None, "--tpm", help="Tokens a minute, across replicas."),
    parallel: int | None = typer.Option(
        None, "--max-parallel", help="Calls in flight at once, across replicas."
    ),
    log_content: bool | None = typer.Option(
        None,
        "--log-content/--no-log-content",
        help="Log this key's prompts and answers, or never (default: as logging.content says).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answer."),
    url: str | None = URL,
    key: str | None = KEY,
) -> None:
    """Create a virtual key; its secret is printed once and never stored."""
    body: dict[str, object] = {
        "business_line": business_line,
        "project": project,
        "task_type": task_type,
        "role": role,
        "name": name,
        "allowed_models": allowed_model,
    }
    if key_id:
        body["id"] = key_id
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    if limits := _limits(rpm, tpm, parallel):
        body["limits"] = limits
    if log_content is not None:
        body["log_content"] = log_content
    created = ApiClient(url, key).request("POST", "/v1/admin/keys", json=body).json()
    if as_json:
        typer.echo(json.dumps(created, indent=2))
        return
    record = created["record"]
    out.print(f"[green]created[/] {record['id']} ({record['business_line']}/{record['project']})")
    out.print(f"key: [bold]{created['key']}[/]   (shown once — store it now)", highlight=False)


@app.command("list")
def list_keys(
    as_json: bool = typer.Option(False, "--json"), url: str | None = URL, key: str | None = KEY
) -> None:
    """List virtual keys with their attribution and state (never their secrets)."""
    keys = ApiClient(url, key).request("GET", "/v1/admin/keys").json()["keys"]
    if as_json:
        typer.echo(json.dumps(keys, indent=2))
        return
    table = Table(header_style="bold")
    for column in (
        "id",
        "name",
        "business line",
        "project",
        "task type",
        "role",
        "limits",
        "content log",
        "state",
        "expires",
    ):
        table.add_column(column)
    for k in keys:
        state = k["state"]
        if k.get("previous_valid_until") and state == "active":
            state += f" (the replaced secret until {k['previous_valid_until']})"
        table.add_row(
            k["id"], k["name"], k["business_line"], k["project"], k["task_type"], k["role"],
            _limits_text(k.get("limits")), CONTENT_LOG_TEXT[k.get("log_content")], state,
            k["expires_at"] or "",
        )  # fmt: skip
    out.print(table)


@app.command()
def revoke(key_id: str = typer.Argument(..., help="The key id, e.g. k_1a2b3c."),
           url: str | None = URL, key: str | None = KEY) -> None:  # fmt: skip
    """Revoke a key: every replica refuses it from now on."""
    record = ApiClient(url, key).request("DELETE", f"/v1/admin/keys/{key_id}").json()
    out.print(f"[yellow]revoked[/] {record['id']} at {record['revoked_at']}")


@app.command()
def rotate(
    key_id: str = typer.Argument(..., help="The key id, e.g. k_1a2b3c."),
    grace_hours: float = typer.Option(
        0.0, "--grace-hours", min=0, max=720, help="How long the old secret keeps working."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answer."),
    url: str | None = URL,
    key: str | None = KEY,
) -> None:
    """Give a key a new secret (printed once); its id, attribution, budgets and limits stay."""
    path = f"/v1/admin/keys/{key_id}/rotate"
    body = {"grace_seconds": round(grace_hours * 3600)}
    rotated = ApiClient(url, key).request("POST", path, json=body).json()
    if as_json:
        typer.echo(json.dumps(rotated, indent=2))
        return
    until = rotated["record"]["previous_valid_until"]
    old = f"works until {until}" if grace_hours else "stopped working"
    out.print(f"[green]rotated[/] {key_id}: the old secret {old}")
    out.print(f"key: [bold]{rotated['key']}[/]   (shown once — store it now)", highlight=False)


@app.command()
def limit(
    key_id: str = typer.Argument(..., help="The key id, e.g. k_1a2b3c."),
    rpm: int | None = typer.Option(None, "--rpm", help="Requests a minute, across replicas."),
    tpm: int | None = typer.Option(None, "--tpm", help="Tokens a minute, across replicas."),
    parallel: int | None = typer.Option(
        None, "--max-parallel", help="Calls in flight at once, across replicas."
    ),
    url: str | None = URL,
    key: str | None = KEY,
) -> None:
    """Set a key's rate limits (none given: remove them); every replica applies them."""
    limits = _limits(rpm, tpm, parallel) or None
    path = f"/v1/admin/keys/{key_id}"
    record = ApiClient(url, key).request("PATCH", path, json={"limits": limits}).json()
    out.print(f"[green]limits[/] of {record['id']}: {_limits_text(record['limits']) or 'none'}")


class ContentLog(StrEnum):
    on = "on"
    off = "off"
    policy = "policy"


#: what each setting of `log_content` is sent as, and how `keys list` shows it
CONTENT_LOG_SETTINGS = {ContentLog.on: True, ContentLog.off: False, ContentLog.policy: None}
CONTENT_LOG_TEXT = {True: "on", False: "off", None: "policy"}


@app.command()
def content(
    key_id: str = typer.Argument(..., help="The key id, e.g. k_1a2b3c."),
    setting: ContentLog = typer.Argument(
        ..., help="on: log its prompts and answers; off: never; policy: as logging.content says."
    ),
    url: str | None = URL,
    key: str | None = KEY,
) -> None:
    """Turn content logging on or off for one key's calls; every replica applies it."""
    body = {"log_content": CONTENT_LOG_SETTINGS[setting]}
    record = ApiClient(url, key).request("PATCH", f"/v1/admin/keys/{key_id}", json=body).json()
    shown = CONTENT_LOG_TEXT[record["log_content"]]
    out.print(f"[green]content logging[/] of {record['id']}: {shown}")


#: how `keys list` and `keys limit` name each limit
LIMIT_UNITS = (
    ("requests_per_minute", "req/min"),
    ("tokens_per_minute", "tok/min"),
    ("max_parallel_requests", "in flight"),
)


def _limits(rpm: int | None, tpm: int | None, parallel: int | None) -> dict[str, int]:
    """The limits given, by their API names (empty when none is)."""
    limits = {
        "requests_per_minute": rpm,
        "tokens_per_minute": tpm,
        "max_parallel_requests": parallel,
    }
    return {name: value for name, value in limits.items() if value is not None}


def _limits_text(limits: dict[str, int | None] | None) -> str:
    if not limits:
        return ""
    parts = [f"{limits[name]:,} {unit}" for name, unit in LIMIT_UNITS if limits.get(name)]
    return ", ".join(parts)
