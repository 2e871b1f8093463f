"""Entry point of the `tollway` command; each command group lives in its own module."""

from __future__ import annotations

import typer

from tollway.cli import (
    audit_cmd,
    budgets_cmd,
    config_cmd,
    dashboard_cmd,
    demo_cmd,
    guardrails_cmd,
    keys_cmd,
    routes_cmd,
    run_cmd,
    sessions_cmd,
    sql_cmd,
    webhooks_cmd,
)

app = typer.Typer(
    name="tollway",
    help="An LLM gateway with an event-sourced cost ledger and budget governance.",
    no_args_is_help=True,
    add_completion=False,
)
run_cmd.register(app)
sql_cmd.register(app)
dashboard_cmd.register(app)
audit_cmd.register(app)
app.add_typer(config_cmd.app, name="config", help="Validate tollway.yaml.")
app.add_typer(keys_cmd.app, name="keys", help="Create, list, limit and revoke virtual keys.")
app.add_typer(
    budgets_cmd.app, name="budgets", help="Budgets: their spend and state; set and delete them."
)
app.add_typer(guardrails_cmd.app, name="guardrails", help="List guardrails; screen a text offline.")
app.add_typer(routes_cmd.app, name="routes", help="List routes; explain a routing decision.")
app.add_typer(
    sessions_cmd.app, name="sessions", help="What sessions (agent runs, conversations) cost."
)
app.add_typer(demo_cmd.app, name="demo", help="Synthetic workload for the demo stack.")
app.add_typer(
    webhooks_cmd.app, name="webhooks", help="List webhook endpoints and send a signed test."
)


if __name__ == "__main__":
    app()
