"""Who the dashboard is signed in as, and the friendly pages shown when data cannot be had.

The API URL and key come from `TOLLWAY_DASHBOARD_API` / `TOLLWAY_DASHBOARD_KEY` (what
`tollway up` and `tollway dashboard` pass), else from a sign-in form in the sidebar kept in
`st.session_state` — so a shared dashboard can be opened by a viewer with its own key.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, timedelta
from typing import TypeVar

import streamlit as st

from dashboards.client import (
    AccessDenied,
    AnalyticsClient,
    ApiError,
    ApiUnreachable,
    clear_cache,
)
from dashboards.loads import utc_today

DEFAULT_API = "http://127.0.0.1:8080"
API_ENV = "TOLLWAY_DASHBOARD_API"
KEY_ENV = "TOLLWAY_DASHBOARD_KEY"

T = TypeVar("T")


#: the API's days are UTC days; so are the dashboard's
today = utc_today


def tomorrow() -> date:
    return today() + timedelta(days=1)


def current_client() -> AnalyticsClient | None:
    """The signed-in client: the sidebar form wins over the environment once used."""
    base = st.session_state.get("api_url") or os.environ.get(API_ENV) or DEFAULT_API
    key = st.session_state.get("api_key") or os.environ.get(KEY_ENV)
    return AnalyticsClient(base.rstrip("/"), key) if key else None


def sidebar() -> AnalyticsClient | None:
    """Sign-in form (or who we are) and a refresh button, in the sidebar of every page."""
    client = current_client()
    with st.sidebar:
        if client is None:
            st.subheader("Sign in")
            with st.form("sign_in"):
                url = st.text_input(
                    "API URL", value=os.environ.get(API_ENV) or DEFAULT_API, key="form_api_url"
                )
                key = st.text_input("API key", type="password", key="form_api_key")
                if st.form_submit_button("Sign in") and key:
                    st.session_state["api_url"] = url.strip()
                    st.session_state["api_key"] = key.strip()
                    clear_cache()
                    st.rerun()
        else:
            st.caption(f"API {client.base_url}")
            cols = st.columns(2)
            if cols[0].button(
                "Refresh", help="Fetch fresh numbers (answers are cached 15 s, routing's 60 s)."
            ):
                clear_cache()
                st.rerun()
            if "api_key" in st.session_state and cols[1].button("Sign out"):
                st.session_state.pop("api_key", None)
                st.session_state.pop("api_url", None)
                clear_cache()
                st.rerun()
    return client


def require_client() -> AnalyticsClient:
    """The client, or stop the page with a pointer to the sign-in form."""
    client = current_client()
    if client is None:
        st.info(
            "Sign in with an analytics key in the sidebar, or start the dashboard with "
            f"`{KEY_ENV}` set (`tollway up` does this for you)."
        )
        st.stop()
    return client


def unreachable(exc: ApiUnreachable) -> None:
    st.error(
        f"**The tollway API is unreachable** at `{exc.base_url}`.\n\n"
        "Is `tollway up` (or `tollway serve --role analytics`) running? Start it, or point the "
        f"dashboard elsewhere with `{API_ENV}` / `tollway dashboard --api URL`.",
        icon=":material/cloud_off:",
    )
    st.caption(f"Details: {exc.reason}")


def fetch(load: Callable[[], T]) -> T:
    """Run `load`; on failure show a friendly message and stop this page's run."""
    try:
        return load()
    except ApiUnreachable as exc:
        unreachable(exc)
    except AccessDenied as exc:
        if exc.status == 401:
            st.error(f"**This key was refused** ({exc.message}). Sign in again in the sidebar.")
        else:
            st.warning(f"**Not available for this key:** {exc.message}", icon=":material/lock:")
    except ApiError as exc:
        st.error(f"**The analytics API answered with an error:** {exc.message}")
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


def curl_hint(client: AnalyticsClient) -> str:
    return (
        f"curl {client.base_url}/v1/chat/completions \\\n"
        '  -H "Authorization: Bearer $TOLLWAY_KEY" -H "Content-Type: application/json" \\\n'
        '  -d \'{"model": "auto", "messages": [{"role": "user", "content": "hello"}]}\''
    )


def empty_state(client: AnalyticsClient, what: str = "No calls yet") -> None:
    st.info(
        f"**{what}** — send one through tollway and it shows up here within seconds "
        "(use the demo key `tollway up` printed):",
        icon=":material/inbox:",
    )
    st.code(curl_hint(client), language="bash")
