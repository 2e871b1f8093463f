"""Entry point of the `tollway` command; each command group lives in its own module."""

from __future__ import annotations

import typer

from tollway.cli import config_cmd, keys_cmd, run_cmd, sql_cmd

app = typer.Typer(
    name="tollway",
    help="An LLM gateway with an event-sourced cost ledger and budget governance.",
    no_args_is_help=True,
    add_completion=False,
)
run_cmd.register(app)
sql_cmd.register(app)
app.add_typer(config_cmd.app, name="config", help="Validate tollway.yaml.")
app.add_typer(keys_cmd.app, name="keys", help="Create, list and revoke virtual keys.")


if __name__ == "__main__":
    app()
