"""Cost-explorer pages in a real browser (headless chromium) against N synthetic calls.

benchmarks/dashboard_pages.py times each page's script in Streamlit's AppTest; a person waits
for more than that: the page's HTML and JavaScript, the websocket handshake that opens a
Streamlit session, the script run (with its API calls), the elements crossing the websocket
and Plotly drawing the charts. This benchmark measures all of it. The store, the analytics
role's app and its server are dashboard_pages' (`TOLLWAY_BENCH_DIR` reuses a kept store, brought
to the current migrations and merged); the dashboard runs as `tollway dashboard` runs it
(`dashboards.launch`: `streamlit run`, headless, its own process) with the admin key, and
chromium is driven over DevTools (benchmarks/cdp.py, the browser test's client).

Each visit is a fresh navigation, so a fresh Streamlit session, and is timed from
`Page.navigate` until the page is ready (benchmarks/cdp.py: script finished, no skeleton,
every chart drawn, at least the charts the page has at 100M; an exception fails the run), the
DOM polled every 20 ms. The dashboard caches API answers for 15 s in its process
(`st.cache_data`, shared by every session), so each page is visited *cold* — after the cache
has expired, every API call included — and right after *warm*, from the cache, as on a click
back or a second viewer. Before measuring, every page is opened once so the browser has the
chart code and Streamlit its imports, as on any dashboard that has been opened before.
Reported: medians of 3 visits, when Streamlit's websocket was up and when its last message
of the page reached the browser (from the network stack's clock: the rest is drawing), and the
seconds the API spent on the cold visit's calls (server side, summed). The API shares
this process with the DevTools client; Streamlit and chromium have their own.

Not part of the test suite: `python -m benchmarks dashboard_browser [ROWS]` (chromium from
/usr/bin/chromium). One screenshot per page lands in test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.analytics_queries import DEFAULT_ROWS, bench_store
from benchmarks.cdp import FLAGS, Browser, Visit
from benchmarks.dashboard_pages import ADMIN_KEY, analytics_app, prepare_store
from dashboards import launch
from dashboards.client import CACHE_TTL_S
from tollway.broker import free_port
from tollway.server import serving

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parents[1] / "test-artifacts" / "screenshots"
REPEAT = 3
#: screenshots are this tall (the timed visits see 1400 by 1000), to show whole pages
SHOT_HEIGHT = 2000
#: page name → (screenshot name, URL path and query, Plotly charts the page draws)
PAGES: dict[str, tuple[str, str, int]] = {
    "overview": ("overview", "", 2),
    "explorer (all spend, 30 d)": ("explorer-30d", "explorer", 3),
    "explorer (marketing-p1, 90 d)": (
        "explorer-project-90d",
        "explorer?business_line=marketing&project=marketing-p1&days=90",
        3,
    ),
    "budgets": ("budgets", "budgets", 0),
    "routing": ("routing", "routing", 1),
    "calls": ("calls", "calls", 0),
}


def _started(dashboard: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{dashboard}/_stcore/health").text == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the dashboard did not start:\n" + log.read_text()[-3000:])


def _visit(browser: Browser, url: str, charts: int, what: str, shot: Path) -> Visit:
    visit = browser.visit(url, min_charts=charts)
    if visit.ready_s is None or visit.exception:
        browser.screenshot(shot.with_name(f"{shot.stem}-FAILED.png"))
        raise RuntimeError(f"{what}: not ready ({visit}); screenshot next to {shot}")
    return visit


def _median(values: list[float | None]) -> float:
    return statistics.median(v for v in values if v is not None)


def _measure(api: str, api_seconds: list[float], label: str) -> list[str]:
    """Start the dashboard and chromium, visit every page; report lines (runs in a thread, so
    the event loop keeps answering the dashboard's API calls)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        port, log = free_port(), Path(tmp) / "streamlit.log"
        dashboard = f"http://127.0.0.1:{port}"
        with log.open("w") as out:
            process = launch.start(port, api, ADMIN_KEY, log=out)
        browser = None
        try:
            _started(dashboard, log)
            browser = Browser(CHROMIUM, FLAGS, Path(tmp) / "profile", free_port())
            first = {}
            for name, (slug, path, charts) in PAGES.items():  # chart code, imports, store
                shot = SHOTS / f"bench-{label}-{slug}.png"
                first[name] = _visit(browser, f"{dashboard}/{path}", charts, name, shot).ready_s
            cold: dict[str, list[Visit]] = {name: [] for name in PAGES}
            warm: dict[str, list[Visit]] = {name: [] for name in PAGES}
            api_cold: dict[str, list[tuple[float, int]]] = {name: [] for name in PAGES}
            warm_calls = 0
            filled = time.monotonic()
            for rep in range(REPEAT):
                for name, (slug, path, charts) in PAGES.items():
                    time.sleep(max(0.0, filled + CACHE_TTL_S + 1 - time.monotonic()))
                    shot = SHOTS / f"bench-{label}-{slug}.png"
                    api_seconds.clear()
                    cold[name].append(_visit(browser, f"{dashboard}/{path}", charts, name, shot))
                    api_cold[name].append((sum(api_seconds), len(api_seconds)))
                    filled = time.monotonic()
                    if rep == 0:
                        browser.screenshot(shot, height=SHOT_HEIGHT)
                    api_seconds.clear()
                    warm[name].append(_visit(browser, f"{dashboard}/{path}", charts, name, shot))
                    warm_calls += len(api_seconds)
        finally:
            if browser is not None:
                browser.close()
            launch.stop(process)
    lines = [
        "  first visit after start (s): "
        + ", ".join(f"{name.split(' ')[0]} {s:.2f}" for name, s in first.items() if s),
        f"  {'page':<31} {'cold s':>7} {'max':>5} {'warm s':>7} {'max':>5}"
        f" {'ws up':>6} {'sent':>5} {'API s':>6} {'calls':>5} {'w sent':>6}  target ≤ 1 s",
    ]
    for name in PAGES:
        cold_s = [v.ready_s for v in cold[name]]
        warm_s = [v.ready_s for v in warm[name]]
        api_s, calls = sorted(api_cold[name])[len(api_cold[name]) // 2]
        lines.append(
            f"  {name:<31} {_median(cold_s):>7.2f} {max(s or 0 for s in cold_s):>5.2f}"
            f" {_median(warm_s):>7.2f} {max(s or 0 for s in warm_s):>5.2f}"
            f" {_median([v.connected_s for v in cold[name]]):>6.2f}"
            f" {_median([v.last_frame_s for v in cold[name]]):>5.2f} {api_s:>6.2f} {calls:>5}"
            f" {_median([v.last_frame_s for v in warm[name]]):>6.2f}"
            f"  {'met' if max(_median(cold_s), _median(warm_s)) <= 1 else 'MISSED'}"
        )
    lines.append(
        "  (medians; ws up: Streamlit's websocket connected; sent: its last message of the page"
        f" reached the browser, cold and warm (w); API calls on warm visits: {warm_calls};"
        f" screenshots: {SHOTS}/bench-{label}-*.png)"
    )
    return lines


async def _run(rows: int) -> list[str]:
    if not CHROMIUM.exists():
        raise RuntimeError(f"no {CHROMIUM} (`apt-get install -y chromium`)")
    label = f"{rows // 1_000_000}m" if rows >= 1_000_000 else str(rows)
    async with bench_store(rows) as (store, lines):
        lines += await prepare_store(store)
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
        api_seconds: list[float] = []
        async with serving(analytics_app(store, api_seconds), lifespan=False) as url:
            lines += await asyncio.to_thread(_measure, url, api_seconds, label)
        lines.append(f"  {load} before, " + "{:.2f} {:.2f} {:.2f} after".format(*os.getloadavg()))
    return lines


def run(rows: int = DEFAULT_ROWS) -> list[str]:
    """Open every dashboard page in headless chromium against `rows` synthetic calls."""
    return asyncio.run(_run(rows))


if __name__ == "__main__":
    print("\n".join(run(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ROWS)))
