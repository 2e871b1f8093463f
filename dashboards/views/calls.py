"""Calls: what the costliest sessions (an agent's run, a conversation: the calls that named one
`x-tollway-session-id`) cost, and the most recent calls — attribution and cost only, prompts
and completions never."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import loads
from dashboards.models import Session, SessionSummary
from dashboards.session import empty_state, fetch, require_client, today
from dashboards.theme import usd, usd_column_format

COLUMNS = [
    "ts",
    "business_line",
    "project",
    "task_type",
    "key_id",
    "model",
    "route",
    "status",
    "budget_action",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "duration_ms",
    "fallback_used",
    "guardrails",
    "session_id",
]


def show_sessions(summary: SessionSummary, sessions: list[Session]) -> None:
    """How much a session costs, typically and at most, and the costliest ones."""
    st.subheader(f"Sessions, last {loads.SESSION_DAYS} days")
    cols = st.columns(4)
    cols[0].metric("Sessions", f"{summary.sessions:,}", help="Calls that named one session")
    cols[1].metric("Median session", usd(summary.median_cost_usd))
    cols[2].metric("90th percentile", usd(summary.p90_cost_usd))
    cols[3].metric("Costliest", usd(summary.max_cost_usd))
    frame = pd.DataFrame(
        [
            {
                "session": s.session_id,
                "cost_usd": float(s.cost_usd),
                "calls": s.calls,
                "failed": s.errors,
                "stopped": "at its limit" if s.limited else "",
                "started": s.first_ts,
                "minutes": s.duration_s / 60,
                "models": ", ".join(s.models),
                "business_line": s.business_line,
                "project": s.project,
                "task_type": s.task_type,
            }
            for s in sessions
        ]
    )
    frame["started"] = pd.to_datetime(frame["started"], format="ISO8601")
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "cost_usd": st.column_config.NumberColumn(
                "cost (USD)", format=usd_column_format(frame["cost_usd"])
            ),
            "minutes": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    st.caption(
        "A session is the calls sent with one `x-tollway-session-id` header: an agent's run, a "
        f"conversation. The {len(sessions)} costliest of the last {loads.SESSION_DAYS} days; "
        "*stopped* marks a session whose calls were refused at `sessions.limit_usd`."
    )


st.title("Calls")
client = require_client()
summary, sessions = fetch(lambda: loads.sessions(client, today()))
if sessions:
    show_sessions(summary, sessions)
    st.subheader("Recent calls")
top = st.columns(3)
limits = [50, loads.CALLS_LIMIT, 1000]
limit = top[0].selectbox(
    "Show", limits, index=limits.index(loads.CALLS_LIMIT), format_func=lambda n: f"last {n}"
)
status = top[1].selectbox("Status", ["all", "ok", "error", "blocked"])
calls = fetch(lambda: loads.calls(client, today(), status, limit))
if not calls:
    empty_state(client, "No calls yet" if status == "all" else f"No {status} calls")
    st.stop()
frame = pd.DataFrame([c.model_dump(include=set(COLUMNS)) for c in calls])[COLUMNS]
frame["cost_usd"] = frame["cost_usd"].astype(float)
frame["guardrails"] = frame["guardrails"].map(", ".join)  # the ones that matched its prompt
frame["ts"] = pd.to_datetime(frame["ts"], format="ISO8601")  # whole seconds: no fraction
st.caption(f"{len(calls)} most recent calls of the last 30 days; no prompt or completion text.")
st.dataframe(
    frame,
    hide_index=True,
    width="stretch",
    column_config={"cost_usd": st.column_config.NumberColumn("cost (USD)", format="$%.6f")},
)
