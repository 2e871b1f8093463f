"""A small Chrome DevTools protocol client: headless chromium opening Streamlit pages.

`chromium --screenshot` (even with `--virtual-time-budget`) shoots Streamlit's loading
skeleton: virtual time runs out before the websocket delivers the page. Driving chromium over
DevTools lets a caller wait for the real page and then capture it. Shared by the browser test
(tests/dashboards/test_browser.py) and the page-time benchmark (benchmarks/dashboard_browser.py),
so both agree on what "the page is ready" means.

Readiness comes from the DOM, polled with `Runtime.evaluate`. Streamlit's running-man status
widget is no signal: it appears only after a script has run for 500 ms, so a fast page looks
"finished" from its first element on. The app root carries the truth instead:
`[data-testid="stApp"]` has `data-test-script-state` (`initial`, `running`, `notRunning`) and
`data-test-connection-state` (`CONNECTED` once the websocket is up) — the attributes Streamlit's
own end-to-end tests wait on. A page is ready when its script has run and stopped, nothing is a
loading skeleton (lazy elements such as charts show one until their code arrives), and every
chart has drawn: a Plotly chart its traces, a Vega-Lite chart its marks.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

#: headless chromium as the browser test and the benchmark run it
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]

#: what the page looks like now; `fresh` is false until the navigated-to document replaced the
#: previous one (whose window carries the `__twOld` mark set before navigating)
PROBE = """(() => {
  const doc = document, app = doc.querySelector('[data-testid="stApp"]');
  const charts = [...doc.querySelectorAll('[data-testid="stPlotlyChart"]')];
  const vega = [...doc.querySelectorAll('[data-testid="stVegaLiteChart"]')];
  return {
    fresh: !window.__twOld,
    script: app ? app.getAttribute('data-test-script-state') : null,
    connection: app ? app.getAttribute('data-test-connection-state') : null,
    title: !!doc.querySelector('h1'),
    skeletons: doc.querySelectorAll(
      '[data-testid="stSkeleton"], [data-testid="stAppSkeleton"], [data-testid="stSkeletonElement"]'
    ).length,
    charts: charts.length + vega.length,
    drawn: charts.filter(c => c.querySelector('.js-plotly-plot .main-svg')
      && c.querySelectorAll('.trace, .slice').length > 0).length
      + vega.filter(c => c.querySelector('svg.marks .role-mark, canvas.marks')).length,
    exception: !!doc.querySelector('[data-testid="stException"]'),
    heading: (doc.querySelector('h1') || {}).textContent || null,
    stale: doc.querySelectorAll('[data-stale="true"]').length,
    query: window.location.search,
    headings: [...doc.querySelectorAll('h1, h2, h3')].map(h => h.textContent.trim()),
  };
})()"""

#: the centre of the first element `selector` matches whose text is `text` (any text when
#: null), scrolled into view, or null when there is none
CENTRE = """((selector, text) => {
  const el = [...document.querySelectorAll(selector)]
    .find(e => text === null || e.textContent.trim() === text);
  if (!el) return null;
  el.scrollIntoView({block: 'center'});
  const r = el.getBoundingClientRect();
  return [r.x + r.width / 2, r.y + r.height / 2];
})"""

#: click the sidebar's link to the page at a URL path ("" for the default page); true if found
CLICK_NAV = """((path) => {
  const links = [...document.querySelectorAll('[data-testid="stSidebarNav"] a')];
  const link = links.find(a => new URL(a.href).pathname.replace(/^\\/+|\\/+$/g, '') === path);
  if (!link) return false;
  link.click();
  return true;
})"""


_EVENTS = frozenset({"Network.requestWillBeSent", "Network.webSocketFrameReceived"})


@dataclass
class Visit:
    """One navigation: seconds from `Page.navigate` to each milestone (None: never reached)."""

    connected_s: float | None = None  # the websocket to Streamlit is up
    first_frame_s: float | None = None  # Streamlit's first message reached the browser
    last_frame_s: float | None = None  # … and its last before the page was ready
    finished_s: float | None = None  # the page script ran and stopped
    ready_s: float | None = None  # … and no skeleton is left and every chart is drawn
    charts: int = 0
    exception: bool = False
    polls: int = 0
    last: dict[str, Any] = field(default_factory=dict)


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
        self.events: list[dict[str, Any]] = []
        self.call("Network.enable")  # websocket frames, stamped by the network stack

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == ident:
                return dict(message.get("result", {}))
            if message.get("method") in _EVENTS:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def visit(
        self, url: str, min_charts: int = 0, timeout_s: float = 60, poll_s: float = 0.02
    ) -> Visit:
        """Open `url` and poll the DOM every `poll_s` until the page is ready (or shows an
        exception, or `timeout_s` passes); at least `min_charts` Plotly charts must be drawn."""
        self.evaluate("window.__twOld = true")
        self.events.clear()
        started = time.perf_counter()
        self.call("Page.navigate", url=url)
        visit = self._until_ready(started, lambda state: True, min_charts, timeout_s, poll_s)
        if visit.ready_s is not None:
            self._frames(visit)
        return visit

    def switch(
        self,
        path: str,
        heading: str,
        min_charts: int = 0,
        timeout_s: float = 60,
        poll_s: float = 0.02,
    ) -> Visit:
        """Go to another page of the open app as a viewer does, with a click on its sidebar
        link: no new document, bundle or websocket — Streamlit reruns the session on the
        chosen page. Ready as for `visit`, once the page's own title (`heading`) is shown and no
        element of the page before is left (Streamlit marks them stale until the run ends)."""
        started = time.perf_counter()
        if not self.evaluate(f"{CLICK_NAV}({json.dumps(path)})"):
            raise RuntimeError(f"no sidebar link to /{path}")

        def arrived(state: dict[str, Any]) -> bool:
            return state.get("heading") == heading and not state.get("stale")

        return self._until_ready(started, arrived, min_charts, timeout_s, poll_s)

    def choose(
        self,
        label: str,
        option: str,
        arrived: Callable[[dict[str, Any]], bool],
        min_charts: int = 0,
        timeout_s: float = 60,
        poll_s: float = 0.02,
    ) -> Visit:
        """Pick `option` in the selectbox labelled `label` as a viewer does (open it, click the
        option), timed from the option's click until the page has `arrived` and is ready."""
        self._click(f'[data-testid="stSelectbox"]:has(input[aria-label="{label}"]) button', None)
        deadline = time.perf_counter() + timeout_s
        while not self._click('[role="listbox"] [role="option"]', option):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no option {option!r} in the selectbox {label!r}")
            time.sleep(poll_s)
        return self._until_ready(time.perf_counter(), arrived, min_charts, timeout_s, poll_s)

    def _click(self, selector: str, text: str | None) -> bool:
        """A real mouse click (moved there, pressed, released) on the element, as React Aria's
        press handlers need (a DOM `click()` opens no selectbox); false when there is none."""
        centre = self.evaluate(f"{CENTRE}({json.dumps(selector)}, {json.dumps(text)})")
        if not centre:
            return False
        x, y = centre
        mouse = {"x": x, "y": y, "button": "left", "clickCount": 1}
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        self.call("Input.dispatchMouseEvent", type="mousePressed", buttons=1, **mouse)
        self.call("Input.dispatchMouseEvent", type="mouseReleased", buttons=0, **mouse)
        return True

    def _until_ready(
        self,
        started: float,
        arrived: Callable[[dict[str, Any]], bool],
        min_charts: int,
        timeout_s: float,
        poll_s: float,
    ) -> Visit:
        """Poll the page until it is ready: the document is the new one, the page has
        `arrived`, its script ran and stopped, it has a title, no skeleton is left and every
        chart (at least `min_charts`) is drawn."""
        visit = Visit()
        while time.perf_counter() - started < timeout_s:
            state = self.evaluate(PROBE) or {}
            now = time.perf_counter() - started
            visit.polls += 1
            visit.last = state
            if state.get("fresh"):
                if visit.connected_s is None and state.get("connection") == "CONNECTED":
                    visit.connected_s = now
                if state.get("exception"):
                    visit.exception = True
                    return visit
            if state.get("fresh") and arrived(state):
                stopped = state.get("script") == "notRunning"
                if visit.finished_s is None and stopped:
                    visit.finished_s = now
                drawn = state.get("drawn", 0)
                if (
                    stopped
                    and state.get("title")
                    and not state.get("skeletons")
                    and drawn == state.get("charts")
                    and drawn >= min_charts
                ):
                    visit.ready_s, visit.charts = now, drawn
                    return visit
            time.sleep(poll_s)
        return visit

    def _frames(self, visit: Visit) -> None:
        """When Streamlit's messages arrived, as DevTools stamps them, relative to the document
        request. Not the wire's clock: messages that come while the page's main thread is busy
        (loading a chart library, drawing) are stamped together once it is free."""
        documents = [
            e["params"]["timestamp"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent" and e["params"].get("type") == "Document"
        ]
        frames = [
            e["params"]["timestamp"]
            for e in self.events
            if e["method"] == "Network.webSocketFrameReceived"
        ]
        if documents and frames:
            visit.first_frame_s = frames[0] - documents[0]
            visit.last_frame_s = frames[-1] - documents[0]

    def screenshot(self, file: Path, height: int | None = None) -> None:
        """Save the viewport as a PNG; with `height`, the viewport grows to it first (Streamlit
        scrolls inside the page, so only a taller window shows what is below the fold), the
        charts redraw at the new size, and the window goes back afterwards."""
        if height:
            size = self.evaluate("[window.innerWidth, window.innerHeight]")
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=size[0],
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            time.sleep(0.5)  # plotly redraws on resize
        data = self.call("Page.captureScreenshot", format="png")["data"]
        file.write_bytes(base64.b64decode(data))
        if height:
            self.call("Emulation.clearDeviceMetricsOverride")

    def shoot(self, url: str, file: Path, timeout_s: float = 45) -> float:
        """Open `url`, wait until the page is ready, save a PNG; returns seconds to done."""
        started = time.perf_counter()
        self.visit(url, timeout_s=timeout_s)
        self.screenshot(file)
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
