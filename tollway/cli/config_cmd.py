"""`tollway config …`: validate a tollway.yaml before it is deployed, and show what it means.

`check` is meant for CI and pre-commit: it exits 1 and prints every problem, one per line, so
a bad config is caught before it reaches a running proxy.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from tollway.config.loader import DEMO_CONFIG, ConfigError, dump_config, load_config
from tollway.config.schema import TollwayConfig

app = typer.Typer(no_args_is_help=True)

FileArg = typer.Argument(
    None,
    help="Config file; default: $TOLLWAY_CONFIG, else the built-in demo config.",
    show_default=False,
)


def _resolve(file: Path | None) -> Path:
    if file is not None:
        return file
    env = os.environ.get("TOLLWAY_CONFIG")
    return Path(env) if env else DEMO_CONFIG


def load_or_exit(path: Path) -> TollwayConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        count = len(exc.issues)
        err.print(f"[bold red]✗ {escape(str(path))}: {count} problem{'s' * (count != 1)}[/]")
        for line in exc.lines():
            err.print(f"[red]{escape(line)}[/]")
        raise typer.Exit(code=1) from None


@app.command()
def check(file: Path | None = FileArg) -> None:
    """Validate a config file: schema, cross-references, prices and budgets."""
    path = _resolve(file)
    cfg = load_or_exit(path)
    Console(highlight=False, soft_wrap=True).print(
        f"[green]✓[/] {escape(str(path))}: {len(cfg.providers)} providers, "
        f"{len(cfg.models)} models, {len(cfg.routes)} routes, {len(cfg.keys)} keys, "
        f"{len(cfg.budgets)} budgets, {len(cfg.guardrails)} guardrails"
    )


@app.command()
def show(
    file: Path | None = FileArg,
    defaults: bool = typer.Option(
        True, "--defaults/--no-defaults", help="Fill in every default value."
    ),
) -> None:
    """Print the effective config as YAML, after validation."""
    cfg = load_or_exit(_resolve(file))
    console = Console(soft_wrap=True)
    text = dump_config(cfg, defaults=defaults)
    if console.is_terminal:
        console.print(Syntax(text, "yaml"))
    else:
        typer.echo(text, nl=False)
