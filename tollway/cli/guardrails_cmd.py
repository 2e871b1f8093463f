"""`tollway guardrails …`: the guardrails of a tollway.yaml, and what they would do to a text.

`test` screens a prompt offline, as a proxy would for a call with the given attribution: which
guardrails match, what each found, and the prompt as the provider would see it — or the refusal
the caller would get. Nothing is sent anywhere, so a pattern can be tuned before it is deployed.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from router.attribution import Attribution
from router.guardrails import Guardrails
from router.schemas import ChatCompletionRequest
from tollway.cli.config_cmd import FileArg, _resolve, load_or_exit

app = typer.Typer(no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)


@app.command("list")
def list_(file: Path | None = FileArg) -> None:
    """The guardrails: what each looks for, what it does, and which calls it covers."""
    config = load_or_exit(_resolve(file))
    table = Table("id", "detect", "patterns", "action", "scope")
    for rail in config.guardrails:
        scope = rail.scope.model_dump(exclude_none=True)
        table.add_row(
            rail.id,
            ", ".join(rail.detect),
            str(len(rail.patterns)),
            rail.action,
            ", ".join(f"{k}={v}" for k, v in scope.items()) or "every call",
        )
    out.print(table if config.guardrails else "no guardrails")


@app.command()
def test(
    text: str = typer.Argument(..., help="The prompt to screen."),
    model: str = typer.Option("gpt-4o-mini", "--model", help="The model or route asked for."),
    business_line: str = typer.Option("", "--business-line", "-b"),
    project: str = typer.Option("", "--project", "-p"),
    task_type: str = typer.Option("", "--task-type", "-t"),
    key_id: str = typer.Option("", "--key", help="The key id the call would come with."),
    file: Path | None = typer.Option(
        None, "--config", help="Default: $TOLLWAY_CONFIG or the demo."
    ),
) -> None:
    """Screen TEXT with the guardrails, offline: what they find, and what would be sent."""
    config = load_or_exit(_resolve(file))
    who = Attribution(business_line, project, task_type, "", key_id, "")
    request = ChatCompletionRequest.model_validate(
        {"model": model, "messages": [{"role": "user", "content": text}]}
    )
    screening = Guardrails(lambda: config).screen(request, who)
    for finding in screening.findings:
        out.print(f"[yellow]{finding.guardrail}[/] ({finding.action}): {escape(finding.label)}")
    if screening.refusal is not None:
        out.print(
            f"[red]refused, 400 {screening.refusal.code}:[/] {escape(screening.refusal.message)}"
        )
        raise typer.Exit(code=2)
    if not screening.findings:
        out.print("[green]no guardrail matched[/]")
    out.print(f"sent: {escape(str(screening.request.messages[0].content))}")
