"""Start the Streamlit app as a child process (for `tollway dashboard` and `tollway up`).

A subprocess rather than in-process: Streamlit owns its own event loop, signals and script
runner threads, and the dashboard must never share the `all` process's chDB session. This
module does not import Streamlit, so the CLI stays fast to start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

#: what `streamlit run` serves: app.py inside `dashboards.asgi`'s `st.App` (its pages' HTML says
#: where the server is, so the frontend does not probe for it)
APP = Path(__file__).with_name("asgi.py")
#: `dashboards.client`'s keep-warm window, unless the environment sets one (0: off)
KEEP_WARM_S = 300
#: Streamlit options beyond server address and port, for a dashboard that is served, not
#: developed: no usage statistics, the viewer's toolbar, no file watcher (a changed file reloads
#: nothing), no "magic" (the pages call st.* for everything they show), and no full garbage
#: collection after every script run (Python's own collector still runs; a forced one holds the
#: GIL while the page's last messages wait to be sent)
OPTIONS = {
    "browser.gatherUsageStats": "false",
    "client.toolbarMode": "viewer",
    "server.fileWatcherType": "none",
    "runner.magicEnabled": "false",
    "runner.postScriptGC": "false",
}


def command(port: int, host: str = "127.0.0.1", app: Path = APP) -> list[str]:
    """`streamlit run` of `app` (the dashboard; the browser benchmark's baseline passes its own
    script, to measure it under the same options)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        host,
        *(arg for name, value in OPTIONS.items() for arg in (f"--{name}", value)),
    ]


def environment(api_url: str, key: str | None, keep_warm_s: float | None = None) -> dict[str, str]:
    """The dashboard's environment: API URL, key, and the keep-warm window (`keep_warm_s`, else
    the environment's `TOLLWAY_DASHBOARD_KEEP_WARM_S`, else `KEEP_WARM_S`)."""
    env = {**os.environ, "TOLLWAY_DASHBOARD_API": api_url}
    if keep_warm_s is not None:
        env["TOLLWAY_DASHBOARD_KEEP_WARM_S"] = str(keep_warm_s)
    env.setdefault("TOLLWAY_DASHBOARD_KEEP_WARM_S", str(KEEP_WARM_S))
    if key:
        env["TOLLWAY_DASHBOARD_KEY"] = key
    return env


def start(
    port: int,
    api_url: str,
    key: str | None,
    *,
    host: str = "127.0.0.1",
    log: IO[str] | None = None,
    app: Path = APP,
    keep_warm_s: float | None = None,
) -> subprocess.Popen[str]:
    """The running dashboard; its output goes to `log` (or is discarded)."""
    return subprocess.Popen(
        command(port, host, app),
        env=environment(api_url, key, keep_warm_s),
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def stop(process: subprocess.Popen[str], timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if Streamlit does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)
