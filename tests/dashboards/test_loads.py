"""What the pages ask the API for (`dashboards.loads`), the dashboard's one HTTP client, and the
HTML `dashboards.asgi` serves: requests sent together, the default views kept warm with exactly
the requests the pages make, and pages told where their server is."""

from __future__ import annotations

import ast
import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dashboards import asgi, client, loads
from tests.analytics.seed import ADMIN_KEY
from tests.dashboards.conftest import PAGES, Api, run_page

APP = Path(asgi.__file__).with_name("app.py")


def test_together_sends_its_loads_at_once_and_keeps_their_order() -> None:
    started: list[float] = []

    def slow(value: int) -> Any:
        def load() -> int:
            started.append(time.monotonic())
            time.sleep(0.2)
            return value

        return load

    began = time.monotonic()
    assert loads.together(slow(1), slow(2), slow(3)) == [1, 2, 3]
    assert time.monotonic() - began < 0.5  # not 0.6 s one after the other
    assert max(started) - min(started) < 0.15


def test_together_raises_a_loads_error() -> None:
    def down() -> None:
        raise client.ApiUnreachable("http://api", "down")

    with pytest.raises(client.ApiUnreachable):
        loads.together(lambda: 1, down)


def test_one_http_client_serves_every_request() -> None:
    assert client._client() is client._client()


async def _requests_of(page: str) -> set[client.Request]:
    client.clear_cache()
    at = await run_page(page)
    assert not at.exception
    return set(client.CACHE._entries)


async def test_the_default_views_are_what_the_pages_ask_for_first(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, ADMIN_KEY)
    asked: set[client.Request] = set()
    for page in set(PAGES) - loads.UNWARMED_PAGES:
        asked |= await _requests_of(page)
    client.clear_cache()
    reader = client.AnalyticsClient(api.url, ADMIN_KEY)
    await asyncio.to_thread(loads.default_views, reader, loads.utc_today())
    assert set(client.CACHE._entries) == asked
    client.clear_cache()


async def test_default_views_are_asked_for_again_until_stopped(api: Api) -> None:
    client.clear_cache()
    reader = client.AnalyticsClient(api.url, ADMIN_KEY)
    stop = threading.Event()
    thread = loads.keep_default_views_warm(reader, every_s=0.2, stop=stop)
    deadline = time.monotonic() + 20

    def routing_stats_asked() -> bool:
        return any(r[3] == "/v1/analytics/routing/stats" for r in client.CACHE._entries)

    while not routing_stats_asked() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert routing_stats_asked()
    client.clear_cache()
    while not routing_stats_asked() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert routing_stats_asked()  # and again
    stop.set()
    await asyncio.to_thread(thread.join, 20)
    assert not thread.is_alive()
    client.clear_cache()


def _url_paths() -> set[str]:
    """The `url_path` of every page in app.py ("" for the default page)."""
    paths = {""}
    for node in ast.walk(ast.parse(APP.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "url_path":
            assert isinstance(node.value, ast.Constant)
            paths.add(str(node.value.value))
    return paths


def test_every_page_gets_the_html_that_names_its_server() -> None:
    assert set(asgi.PAGE_PATHS) == _url_paths()
    assert {r.path for r in asgi.routes("")} == {f"/{p}" for p in asgi.PAGE_PATHS}
    assert "/app/explorer" in {r.path for r in asgi.routes("/app")}
    html = asgi.page_html("")
    script = '<script>window.__streamlit = {BACKEND_BASE_URL: window.location.origin + "/"};'
    assert script in html
    assert html.index(script) < html.index('<script type="module"')  # before Streamlit's code
    assert 'origin + "/app/"' in asgi.page_html("/app")


async def test_the_server_keeps_the_default_views_warm_when_the_cache_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[tuple[client.AnalyticsClient, float]] = []
    monkeypatch.setattr(loads, "keep_default_views_warm", lambda c, s: started.append((c, s)))
    monkeypatch.setenv("TOLLWAY_DASHBOARD_API", "http://api:8080/")
    monkeypatch.setenv("TOLLWAY_DASHBOARD_KEY", "k")
    monkeypatch.setattr(client.CACHE, "keep_warm_s", 0.0)
    async with asgi.lifespan(None):
        assert not started  # the warmer is off: so is this
    monkeypatch.setattr(client.CACHE, "keep_warm_s", 300.0)
    async with asgi.lifespan(None):
        assert started == [(client.AnalyticsClient("http://api:8080", "k"), 60.0)]
    monkeypatch.delenv("TOLLWAY_DASHBOARD_KEY")
    async with asgi.lifespan(None):
        assert len(started) == 1  # no key of its own: nothing to ask with
