"""The dashboard as `dashboards.launch` serves it: Streamlit's ASGI app (`st.App`) around app.py,
whose page HTML tells Streamlit's frontend where its server is.

Streamlit's frontend does not know the server's base path, so on a page other than the first
(`/explorer`, `/budgets`, …) it first probes `/<page>/_stcore/health`, gets a 404, waits 100 ms
and then probes `/_stcore/health`: about 0.15 s before the websocket opens, on every load of
those pages. Its documented way to be told (`window.__streamlit.BACKEND_BASE_URL`, the setting
hosts use to embed Streamlit) removes the guess: the pages' HTML here is Streamlit's own
index.html with that one line added. `streamlit run` finds `app` below and serves it with
uvicorn under the same options; AppTest and `streamlit run dashboards/app.py` keep working
without it.

Its start also starts `dashboards.loads.keep_default_views_warm` when the answer cache keeps
answers warm (`TOLLWAY_DASHBOARD_KEEP_WARM_S` > 0) and the dashboard has a key of its own: every
page's first view is then fresh in the cache before anyone opened it.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path

import streamlit as st
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

HERE = Path(__file__).parent
#: the pages' URL paths (`url_path` in app.py; "" is the default page)
PAGE_PATHS = ("", "explorer", "budgets", "routing", "calls", "keys", "audit")
INDEX = Path(st.__file__).parent / "static" / "index.html"


def _base_path() -> str:
    """`server.baseUrlPath` as "/path" (or "" at the root)."""
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}" if base else ""


@cache
def page_html(base_path: str) -> str:
    """Streamlit's index.html, its backend at `base_path` of the page's own origin."""
    html = INDEX.read_text()
    script = (
        "<script>window.__streamlit = {BACKEND_BASE_URL: window.location.origin + "
        f"{json.dumps(base_path + '/')}}};</script>"
    )
    head = html.index("<head>") + len("<head>")
    return html[:head] + script + html[head:]


async def _page(request: Request) -> HTMLResponse:
    return HTMLResponse(page_html(_base_path()), headers={"Cache-Control": "no-cache"})


def routes(base_path: str) -> list[Route]:
    """Each page's HTML (with and without a trailing slash at the root)."""
    paths = {f"{base_path}/{page}" for page in PAGE_PATHS} | {base_path or "/"}
    return [Route(path, _page, methods=["GET"]) for path in sorted(paths)]


@asynccontextmanager
async def lifespan(_app: object) -> AsyncIterator[None]:
    """Keep the default views warm while the server runs (see the module's docstring)."""
    from dashboards import client, loads, session

    key = os.environ.get(session.KEY_ENV)
    if client.CACHE.keep_warm_s > 0 and key:
        api = (os.environ.get(session.API_ENV) or session.DEFAULT_API).rstrip("/")
        every_s = min(loads.DEFAULT_VIEWS_EVERY_S, client.CACHE.keep_warm_s / 2)
        loads.keep_default_views_warm(client.AnalyticsClient(api, key), every_s)
    yield


app = st.App(HERE / "app.py", routes=routes(_base_path()), lifespan=lifespan)
