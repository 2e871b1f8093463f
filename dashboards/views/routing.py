"""Routing: cheaper models with comparable quality, and how each model performs per task."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards import charts, theme
from dashboards.charts import LAYOUT
from dashboards.session import fetch, require_client


def _rounded(value: float | None, spec: str) -> str:
    """A figure as people read it (0.86, 3,051), or a dash when there is none."""
    return "—" if value is None else format(value, spec)


st.title("Routing")
client = require_client()
days = st.selectbox("Window", [7, 30, 90], index=1, format_func=lambda d: f"last {d} days")

st.subheader("Recommendations")
recommendations = fetch(lambda: client.recommendations(days=days))
if not recommendations:
    st.info(
        "**No recommendation yet.** tollway suggests a cheaper model for a task type once it has "
        "enough calls (20 by default) and enough quality feedback (10 scores) on both models. "
        "Send feedback with `POST /v1/feedback`, or route some traffic through `model: auto`.",
        icon=":material/alt_route:",
    )
for rec in recommendations:
    with st.container(border=True):
        st.markdown(
            f"**{rec.task_type}**: `{rec.current_model}` → `{rec.candidate_model}` saves about "
            f"**{theme.usd(rec.projected_monthly_savings_usd)} / month** "
            f"({rec.calls:,} calls, {theme.usd(rec.current_cost_usd)} spent; candidate quality "
            f"{_rounded(rec.candidate_quality, '.2f')}, "
            f"p95 {_rounded(rec.candidate_p95_ms, ',.0f')} ms)"
        )
        st.code(rec.yaml_snippet, language="yaml")

st.subheader("Quality and latency per model")
stats = fetch(lambda: client.routing_stats(days=min(days, 366)))
if not stats:
    st.info("No routed calls in this window yet.", icon=":material/inbox:")
    st.stop()
frame = pd.DataFrame([s.model_dump() for s in stats])
frame["mean_cost_usd"] = frame["mean_cost_usd"].astype(float)
if frame["mean_score"].notna().any():
    figure = charts.quality_vs_latency(frame, "Quality (mean feedback score) vs p95 latency")
    st.plotly_chart(figure, width="stretch")
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
    st.plotly_chart(latency, width="stretch")
st.dataframe(
    frame,
    hide_index=True,
    width="stretch",
    column_config={
        "success_rate": st.column_config.NumberColumn("success", format="percent"),
        "mean_cost_usd": st.column_config.NumberColumn("mean cost", format="$%.6f"),
    },
)
