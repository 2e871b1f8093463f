"""Screenshots of a client-rendered page through the Chrome DevTools protocol.

`chromium --screenshot` (even with `--virtual-time-budget`) shoots Streamlit's loading
skeleton: virtual time runs out before the websocket delivers the page. Driving chromium over
DevTools lets the test wait for the real page (a title drawn, no skeleton, no running script)
and then capture it.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

READY = """(() => {
  const doc = document;
  return !!doc.querySelector('h1') && !doc.querySelector('[data-testid="stSkeleton"]')
    && !doc.querySelector('[data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"]')
    && doc.querySelectorAll('[data-testid="stSpinner"]').length === 0;
})()"""


class Browser:
    """One headless chromium, driven page by page."""

    def __init__(self, binary: Path, flags: list[str], profile: Path, port: int) -> None:
        self.process = subprocess.Popen(
            [
                str(binary),
                *flags,
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json").json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except (httpx.HTTPError, StopIteration, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == ident:
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def shoot(self, url: str, file: Path, settle_s: float = 1.5, timeout_s: float = 45) -> float:
        """Open `url`, wait for the page to be drawn, save a PNG; returns seconds to done."""
        started = time.perf_counter()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout_s
        while not self.evaluate(READY) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(settle_s)  # plotly draws after the elements arrive
        while not self.evaluate(READY) and time.monotonic() < deadline:
            time.sleep(0.2)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        file.write_bytes(base64.b64decode(data))
        return time.perf_counter() - started

    def html(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML"))

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
