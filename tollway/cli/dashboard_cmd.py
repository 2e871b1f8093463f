"""`tollway dashboard`: the Streamlit cost explorer against a running tollway's analytics API."""

from __future__ import annotations

import subprocess

import typer
from rich.console import Console

from tollway.cli.api_client import resolve_key
from tollway.settings import Settings

console = Console()


def register(app: typer.Typer) -> None:
    @app.command()
    def dashboard(
        port: int = typer.Option(8501, "--port", help="Port of the dashboard."),
        api: str | None = typer.Option(
            None, "--api", help="Analytics API base URL (default http://127.0.0.1:8080)."
        ),
        key: str | None = typer.Option(
            None,
            "--key",
            help="Analytics key (default: TOLLWAY_DASHBOARD_KEY, TOLLWAY_ADMIN_KEY, or the "
            "admin key of the data dir); without one the dashboard shows a sign-in form.",
        ),
    ) -> None:
        """Run the Streamlit cost explorer (reads through the analytics HTTP API)."""
        import os

        from dashboards import launch

        settings = Settings()
        url = (
            api
            or os.environ.get("TOLLWAY_DASHBOARD_API")
            or f"http://{settings.host}:{settings.port}"
        )
        secret = key or os.environ.get("TOLLWAY_DASHBOARD_KEY") or resolve_key(None, settings)
        console.print(f"Dashboard on http://127.0.0.1:{port} (API {url}); Ctrl-C to stop.")
        try:
            result = subprocess.run(
                launch.command(port, settings.host), env=launch.environment(url, secret)
            )
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
        raise typer.Exit(result.returncode)
