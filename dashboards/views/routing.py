"""Routing: cheaper models with comparable quality, and how each model performs per task."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards import charts, loads, theme
from dashboards.charts import LAYOUT
from dashboards.session import fetch, require_client


def _rounded(value: float | None, spec: str) -> str:
    """A figure as people read it (0.86, 3,051), or a dash when there is none."""
    return "—" if value is None else format(value, spec)


st.title("Routing")
client = require_client()
windows = [7, loads.ROUTING_DAYS, 90]
days = st.selectbox(
    "Window",
    windows,
    index=windows.index(loads.ROUTING_DAYS),
    format_func=lambda d: f"last {d} days",
)
# the recommendations and the per-model statistics, asked for together
recommendations, stats = fetch(lambda: loads.routing(client, days))

st.subheader("Recommendations")
if not recommendations:
    st.info(
        "**No recommendation yet.** tollway suggests a cheaper model for a task type once it has "
        "enough calls (20 by default) and enough quality feedback (10 scores) on both models. "
        "Send feedback with `POST /v1/feedback`, or route some traffic through `model: auto`.",
        icon=":material/alt_route:",
    )
else:
    # a table, and the YAML of each recommendation behind a button: a bordered box with its own
    # highlighted YAML per recommendation (dozens at 100M calls) took longer to draw than the
    # rest of the page, and a popover's content is only drawn once opened
    st.dataframe(
        pd.DataFrame(
            {
                "task type": [r.task_type for r in recommendations],
                "current → candidate": [
                    f"{r.current_model} → {r.candidate_model}" for r in recommendations
                ],
                "saves / month": [
                    theme.usd(r.projected_monthly_savings_usd) for r in recommendations
                ],
                "calls": [r.calls for r in recommendations],
                "spent": [theme.usd(r.current_cost_usd) for r in recommendations],
                "candidate quality": [
                    _rounded(r.candidate_quality, ".2f") for r in recommendations
                ],
                "candidate p95 ms": [_rounded(r.candidate_p95_ms, ",.0f") for r in recommendations],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={"calls": st.column_config.NumberColumn("calls", format="localized")},
    )
    with st.popover("Configuration to apply (tollway.yaml)", icon=":material/code:"):
        for rec in recommendations:
            st.caption(f"{rec.task_type}: {rec.current_model} → {rec.candidate_model}")
            st.code(rec.yaml_snippet, language="yaml")

st.subheader("Quality and latency per model")
if not stats:
    st.info("No routed calls in this window yet.", icon=":material/inbox:")
    st.stop()
frame = pd.DataFrame([s.model_dump() for s in stats])
frame["mean_cost_usd"] = frame["mean_cost_usd"].astype(float)
if frame["mean_score"].notna().any():
    charts.show(charts.quality_vs_latency(frame, "Quality (mean feedback score) vs p95 latency"))
else:
    latency = px.bar(
        frame,
        x="model",
        y="p95_latency_ms",
        color="model",
        barmode="group",
        facet_col="task_type",
        title="p95 latency per model (no quality feedback yet)",
        color_discrete_map=theme.colour_map("model", frame["model"].unique()),
    )
    latency.update_layout(**LAYOUT)
    charts.show(latency)
st.dataframe(
    frame,
    hide_index=True,
    width="stretch",
    column_config={
        "success_rate": st.column_config.NumberColumn("success", format="percent"),
        "mean_cost_usd": st.column_config.NumberColumn("mean cost", format="$%.6f"),
        "p50_latency_ms": st.column_config.NumberColumn("p50 ms", format="%.0f"),
        "p95_latency_ms": st.column_config.NumberColumn("p95 ms", format="%.0f"),
        "p50_ttft_ms": st.column_config.NumberColumn("p50 TTFT ms", format="%.0f"),
        "mean_score": st.column_config.NumberColumn("mean score", format="%.3f"),
        "task_type": st.column_config.TextColumn("task type"),
        "calls": st.column_config.NumberColumn("calls", format="localized"),
        "score_count": st.column_config.NumberColumn("scores", format="localized"),
    },
)
