"""`tollway serve` as a real subprocess, for tests of roles scaled out across processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tollway.broker import free_port

TOLLWAY = [sys.executable, "-m", "tollway.cli.main"]


class Role:
    """One `tollway serve` subprocess; its output goes to a log file (read on failure)."""

    def __init__(self, name: str, roles: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"{name}.log"
        self._out = self.log.open("w")
        self.process = subprocess.Popen(
            [*TOLLWAY, "serve", "--role", roles, "--log-level", "warning"],
            env={**env, "TOLLWAY_PORT": str(self.port)},
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    async def ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=5) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    response = await http.get(f"{self.url}/readyz")
                    checks = response.json().get("checks", {})
                    # broker and store reachable; the worker's consumer-lag check may still
                    # read "unknown" before its first assignment, which is not a failure here
                    if response.status_code == 200 or all(
                        v == "ok" for k, v in checks.items() if k != "lag"
                    ):
                        return
                except (httpx.HTTPError, ValueError):
                    pass
                await asyncio.sleep(0.3)
        raise AssertionError(f"{self.name} never became ready:\n{self.log.read_text()[-4000:]}")

    def usage(self) -> dict[str, float]:
        """RSS now and at its peak (MiB), and CPU seconds used so far, from /proc."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = {k: v.split() for k, _, v in (ln.partition(":") for ln in status.splitlines())}
        stat = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return {
            "rss_mib": int(fields["VmRSS"][0]) / 1024,
            "peak_rss_mib": int(fields["VmHWM"][0]) / 1024,
            "cpu_s": (int(stat[11]) + int(stat[12])) / ticks,
        }

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to commit or leave the consumer group."""
        self.process.kill()
        self.process.wait()
        self._out.close()
