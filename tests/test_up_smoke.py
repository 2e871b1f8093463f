"""`tollway up` as a user runs it: a subprocess, the printed key, the SDK, `tollway sql`, SIGTERM.

The last call is made just before SIGTERM, so finding it in the ledger after a restart proves
the graceful stop drained the pipeline, and that the chDB ledger persists in the data dir.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tollway.broker import free_port

pytestmark = pytest.mark.integration

TOLLWAY = [sys.executable, "-m", "tollway.cli.main"]


class Up:
    """A running `tollway up` whose output is collected on a thread."""

    def __init__(self, data_dir: Path, port: int) -> None:
        env = {
            **os.environ,
            "TOLLWAY_DATA_DIR": str(data_dir),
            "TOLLWAY_PORT": str(port),
            "TOLLWAY_KAFKA_BROKER_PORT": str(free_port()),
            "COLUMNS": "200",
        }
        env.pop("TOLLWAY_CONFIG", None)
        self.process = subprocess.Popen(
            [*TOLLWAY, "up", "--no-dashboard"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, pattern: str, timeout_s: float = 90) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"no {pattern!r} in the output of tollway up:\n" + "\n".join(self.lines)
        )

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=90)


@pytest.fixture
def up_factory(tmp_path: Path) -> Iterator[object]:
    started: list[Up] = []

    def start() -> Up:
        up = Up(tmp_path / "data", port)
        started.append(up)
        return up

    port = free_port()
    yield start
    for up in started:
        if up.process.poll() is None:
            up.process.kill()


def _sql(data_dir: Path, port: int, query: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [*TOLLWAY, "sql", query, "--format", "json", "--url", f"http://127.0.0.1:{port}"],
        env={**os.environ, "TOLLWAY_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    return data["data"] if isinstance(data, dict) else data


def _count(data_dir: Path, port: int) -> int:
    return int(_sql(data_dir, port, "SELECT count() AS n FROM calls")[0]["n"])


def test_up_serves_records_and_stops_gracefully(up_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    up = up_factory()
    key = up.wait_for(r"Demo key\s+(\S+)").group(1)
    port = int(up.wait_for(r"OpenAI base URL\s+http://127\.0\.0\.1:(\d+)/v1").group(1))
    data_dir = tmp_path / "data"

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
    first = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello tollway"}]
    )
    assert first.usage is not None and first.usage.total_tokens > 0

    deadline = time.monotonic() + 60
    while _count(data_dir, port) < 1 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _count(data_dir, port) == 1

    last = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "the call right before SIGTERM"}]
    )
    last_id = last.headers["x-tollway-event-id"]
    assert up.stop() == 0, "\n".join(up.lines)
    assert any("stopped cleanly" in line for line in up.lines)

    again = up_factory()
    again.wait_for(r"Demo key\s+" + re.escape(key))  # the same key after a restart
    rows = _sql(data_dir, port, "SELECT toString(event_id) AS id, model FROM calls ORDER BY ts")
    assert len(rows) == 2
    assert rows[1]["id"] == last_id
    assert again.stop() == 0
