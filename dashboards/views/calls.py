"""Calls: the most recent calls, attribution and cost only — prompts and completions never."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import loads
from dashboards.session import empty_state, fetch, require_client, today

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
]

st.title("Recent calls")
client = require_client()
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
