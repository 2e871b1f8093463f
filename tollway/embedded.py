"""`tollway up`: the whole system on one machine, with nothing installed by hand.

Starts the embedded Tansu broker (unless `TOLLWAY_KAFKA_BOOTSTRAP` points at Kafka), opens
the chDB ledger in the data dir (unless `TOLLWAY_CLICKHOUSE_URL` is set), runs role `all` in
this process, prints the URLs and a first virtual key, and on Ctrl-C or SIGTERM stops in
the order that loses nothing: stop accepting calls, flush the producer, drain the worker into
the ledger, then stop the broker.
"""

from __future__ import annotations

import logging
import subprocess

from rich.console import Console

from tollway import keystore
from tollway.broker import EmbeddedBroker
from tollway.config import load_config
from tollway.server import serve
from tollway.service import ROLES, Runtime, build_app
from tollway.settings import Settings

log = logging.getLogger(__name__)

#: Tansu answers a consumer-group join after half the session timeout; keep it short locally.
EMBEDDED_SESSION_TIMEOUT_S = 3.0


async def run_up(
    settings: Settings,
    *,
    demo: bool = True,
    dashboard: bool = True,
    console: Console | None = None,
) -> None:
    console = console or Console()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = load_config(settings.config)
    admin = keystore.admin_key(
        settings.data_dir, settings.admin_key.get_secret_value() if settings.admin_key else None
    )
    extra_keys, demo_secret = [], None
    if demo and settings.config is None:
        demo_secret, demo_cfg = keystore.demo_key(settings.data_dir)
        extra_keys.append(demo_cfg)

    broker: EmbeddedBroker | None = None
    dashboard_process: subprocess.Popen[str] | None = None
    bootstrap = settings.kafka_bootstrap
    if bootstrap is None:
        broker = EmbeddedBroker(
            port=settings.kafka_broker_port, log_path=settings.data_dir / "broker.log"
        )
        await broker.start()
        bootstrap = broker.bootstrap
        if "TOLLWAY_KAFKA_SESSION_TIMEOUT_S" not in _environ():
            settings = settings.model_copy(
                update={"kafka_session_timeout_s": EMBEDDED_SESSION_TIMEOUT_S}
            )
    try:
        runtime = Runtime(
            settings=settings,
            config=config,
            bootstrap=bootstrap,
            roles=frozenset(ROLES),
            extra_keys=extra_keys,
            admin_key=admin,
            snapshot_dir=settings.data_dir,
        )

        def banner() -> None:
            nonlocal dashboard_process
            base = f"http://{settings.host}:{settings.port}"
            if dashboard:
                dashboard_process = _start_dashboard(settings, base, admin)
            console.print(f"[bold green]tollway is up[/] — proxy, worker and analytics on {base}")
            console.print(f"  OpenAI base URL   {base}/v1")
            console.print(
                f"  Kafka             {bootstrap}" + (" (embedded Tansu)" if broker else "")
            )
            store = settings.clickhouse_url or f"chDB at {settings.chdb_path}"
            console.print(f"  ClickHouse        {store}")
            if dashboard_process is not None:
                console.print(f"  Dashboard         {settings.dashboard_url}")
            if demo_secret:
                console.print(f"  Demo key          {demo_secret}")
            console.print(
                f"  Admin key         in {settings.data_dir / keystore.ADMIN_KEY_FILE}"
                if not settings.admin_key
                else "  Admin key         TOLLWAY_ADMIN_KEY"
            )
            console.print("Press Ctrl-C to stop (the pipeline is drained into the ledger first).")

        await serve(build_app(runtime), settings.host, settings.port, on_started=banner)
    finally:
        if dashboard_process is not None:
            from dashboards import launch

            launch.stop(dashboard_process)
        if broker is not None:
            await broker.stop()
    console.print("tollway stopped cleanly")


def _start_dashboard(settings: Settings, api_url: str, key: str) -> subprocess.Popen[str] | None:
    """The Streamlit app as a child process, signed in with the admin key; its output goes to
    dashboard.log in the data dir. A failure to start never stops the gateway."""
    from dashboards import launch

    try:
        with (settings.data_dir / "dashboard.log").open("a") as output:
            return launch.start(
                settings.dashboard_port, api_url, key, host=settings.host, log=output
            )
    except OSError as exc:
        log.warning("the dashboard could not start: %s", exc)
        return None


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)
