"""Child processes of a benchmark: started with one shared log, awaited until they answer,
stopped on the way out — and, when the benchmark fails, the log's tail printed, since that is
where a tollway that would not start says why."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

LOG_TAIL_CHARS = 5000


class Processes:
    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """`python -m …` (or any argv after the interpreter), output into the shared log."""
        process = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.running.append(process)
        return process

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is not None:
            self._log.flush()
            print(self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:])
        self._log.close()
        for process in self.running:
            process.terminate()
        for process in self.running:
            process.wait(60)


async def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    """Until `url` answers without a server error; fails early if the process exits."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited during start-up")
            try:
                if (await client.get(url)).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")
