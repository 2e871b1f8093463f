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

APP = Path(__file__).with_name("app.py")


def command(port: int, host: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def environment(api_url: str, key: str | None) -> dict[str, str]:
    env = {**os.environ, "TOLLWAY_DASHBOARD_API": api_url}
    if key:
        env["TOLLWAY_DASHBOARD_KEY"] = key
    return env


def start(
    port: int, api_url: str, key: str | None, *, host: str = "127.0.0.1", log: IO[str] | None = None
) -> subprocess.Popen[str]:
    """The running dashboard; its output goes to `log` (or is discarded)."""
    return subprocess.Popen(
        command(port, host),
        env=environment(api_url, key),
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
