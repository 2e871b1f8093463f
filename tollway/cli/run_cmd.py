"""`tollway up` (the embedded default) and `tollway serve --role …` (one role, distributed)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from tollway import log_repeats
from tollway.config import ConfigError, load_config
from tollway.service import RoleError, Runtime, build_app, describe, parse_roles
from tollway.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

console = Console()


def _settings(config: Path | None, data_dir: Path | None, port: int | None) -> Settings:
    overrides: dict[str, object] = {}
    if config is not None:
        overrides["config"] = config
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if port is not None:
        overrides["port"] = port
    return Settings(**overrides)  # type: ignore[arg-type]


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    log_repeats.install()  # a broker outage would otherwise flood the log


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        config: Path | None = typer.Option(None, "--config", help="tollway.yaml (default: demo)"),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="Where the ledger lives."),
        port: int | None = typer.Option(None, "--port", help="HTTP port (default 8080)."),
        dashboard_port: int | None = typer.Option(
            None, "--dashboard-port", help="Port of the Streamlit dashboard (default 8501)."
        ),
        no_dashboard: bool = typer.Option(
            False, "--no-dashboard", help="Do not start the Streamlit dashboard."
        ),
        no_demo: bool = typer.Option(False, "--no-demo", help="No demo key."),
        log_level: str = typer.Option("warning", "--log-level"),
    ) -> None:
        """Run everything on this machine: broker, proxy, worker, analytics and the ledger."""
        from tollway.embedded import run_up

        _logging(log_level)
        settings = _settings(config, data_dir, port)
        if dashboard_port is not None:
            settings = settings.model_copy(update={"dashboard_port": dashboard_port})
        try:
            asyncio.run(
                run_up(settings, demo=not no_demo, dashboard=not no_dashboard, console=console)
            )
        except ConfigError as exc:
            console.print(f"[red]{escape(str(exc))}[/]")
            raise typer.Exit(2) from None
        except Exception as exc:  # a clear message, not a trace, for start-up failures
            console.print(f"[red]tollway could not start: {escape(str(exc))}[/]")
            raise typer.Exit(1) from None

    @app.command()
    def serve(
        role: str = typer.Option("all", "--role", help="all, proxy, worker, analytics, or a list."),
        config: Path | None = typer.Option(None, "--config"),
        port: int | None = typer.Option(None, "--port"),
        log_level: str = typer.Option("info", "--log-level"),
        workers: int = typer.Option(
            1,
            "--workers",
            min=1,
            envvar="TOLLWAY_WORKERS",
            help="Proxy processes sharing the port (role proxy only; about one per core).",
        ),
    ) -> None:
        """Run one role (or a comma list) against TOLLWAY_KAFKA_BOOTSTRAP and the store."""
        from tollway import keystore
        from tollway.server import run, serve_workers
        from tollway.server import serve as serve_app

        _logging(log_level)
        settings = _settings(config, None, port)
        try:
            roles = parse_roles(role)
            cfg = load_config(settings.config)
        except (RoleError, ConfigError) as exc:
            console.print(f"[red]{escape(str(exc))}[/]")
            raise typer.Exit(2) from None
        if settings.kafka_bootstrap is None:
            console.print("[red]set TOLLWAY_KAFKA_BOOTSTRAP (or use `tollway up`)[/]")
            raise typer.Exit(2)
        if workers > 1 and roles != {"proxy"}:
            console.print(
                "[red]--workers > 1 needs --role proxy: the worker and analytics roles open the "
                "store, which one process owns[/]"
            )
            raise typer.Exit(2)
        admin = settings.admin_key.get_secret_value() if settings.admin_key else None
        runtime = Runtime(
            settings=settings,
            config=cfg,
            bootstrap=settings.kafka_bootstrap,
            roles=roles,
            admin_key=admin or keystore.read_admin_key(settings.data_dir),
        )
        if "proxy" in roles:
            _adopt_spools(settings, workers)
        where = f"http://{settings.host}:{settings.port}"
        if workers == 1:
            console.print(f"tollway {describe(roles)} on {where}")
            run(serve_app(build_app(runtime), settings.host, settings.port))
            return
        console.print(f"tollway {describe(roles)} on {where} ({workers} worker processes)")

        def worker_app(index: int) -> FastAPI:
            # each worker spools the events Kafka cannot take yet in its own directory
            spool_home = settings.data_dir / f"proxy-worker-{index}"
            worker_settings = settings.model_copy(update={"data_dir": spool_home})
            return build_app(replace(runtime, settings=worker_settings))

        code = serve_workers(worker_app, settings.host, settings.port, workers)
        if code:
            raise typer.Exit(code)


def _adopt_spools(settings: Settings, workers: int) -> None:
    """Events spooled by proxy processes that will not run again go to those that will."""
    from router.spool_adoption import adopt
    from tollway.topics import Topics

    topic = Topics(settings.topic_namespace).calls
    if workers == 1:
        into = [settings.event_spool_path / topic]
    else:
        into = [settings.data_dir / f"proxy-worker-{i}" / "spool" / topic for i in range(workers)]
    adopt(into, settings.data_dir, topic)
