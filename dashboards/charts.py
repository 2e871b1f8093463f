"""Plotly figures shared by the pages, coloured by `dashboards.theme`.

Charts take float copies of the exact Decimal money; tables and metrics keep the exact values.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboards import theme
from dashboards.models import Budget, CostReport, Timeseries

LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    "legend_title_text": "",
    "height": 380,
}


def stacked_daily(series: Timeseries, dimension: str | None, title: str) -> go.Figure:
    """Daily spend as stacked bars, one colour per value of `dimension`."""
    frame = pd.DataFrame(
        {
            "day": [p.bucket[:10] for p in series.points],
            "cost": [float(p.cost_usd) for p in series.points],
            "group": [p.dims.get(dimension, "all") if dimension else "all" for p in series.points],
        }
    )
    figure = px.bar(
        frame,
        x="day",
        y="cost",
        color="group",
        title=title,
        color_discrete_map=theme.colour_map(dimension or "", frame["group"].unique()),
        labels={"cost": "USD", "day": ""},
    )
    figure.update_layout(barmode="stack", yaxis_tickprefix="$", **LAYOUT)
    figure.update_xaxes(type="category")  # one bar per UTC day, never clock-time ticks
    return figure


def spend_treemap(report: CostReport, path: Sequence[str], title: str) -> go.Figure:
    """Spend as nested rectangles along `path` (e.g. business line → project)."""
    frame = pd.DataFrame(
        [
            {**{d: r.dims.get(d, "") or "(none)" for d in path}, "cost": float(r.cost_usd)}
            for r in report.rows
        ]
    )
    frame = frame[frame["cost"] > 0]
    figure = px.treemap(
        frame,
        path=[px.Constant("all"), *path],
        values="cost",
        title=title,
        color=path[0],
        color_discrete_map={"(?)": "#DDDDDD", **theme.colour_map(path[0], frame[path[0]].unique())},
    )
    figure.update_traces(texttemplate="%{label}<br>$%{value:,.4f}", root_color="#F3F4F6")
    figure.update_layout(**LAYOUT)
    return figure


def ranked_bars(report: CostReport, dimension: str, title: str) -> go.Figure:
    """Horizontal bars, biggest spender on top — the clickable drill-down chart."""
    frame = pd.DataFrame(
        {
            dimension: [r.dims.get(dimension, "") for r in report.rows],
            "cost": [float(r.cost_usd) for r in report.rows],
        }
    ).iloc[::-1]
    figure = px.bar(
        frame,
        x="cost",
        y=dimension,
        orientation="h",
        color=dimension,
        title=title,
        color_discrete_map=theme.colour_map(dimension, frame[dimension]),
        labels={"cost": "USD", dimension: ""},
    )
    figure.update_layout(showlegend=False, xaxis_tickprefix="$", **LAYOUT)
    return figure


def budget_bars(budgets: Sequence[Budget]) -> go.Figure:
    """Spend and forecast against each budget's limit."""
    names = [b.id for b in budgets]
    figure = go.Figure()
    figure.add_bar(
        name="spend",
        x=names,
        y=[float(b.spend_usd) for b in budgets],
        marker_color=[theme.STATE_COLOURS.get(b.state, "#4C78A8") for b in budgets],
    )
    figure.add_bar(
        name="forecast",
        x=names,
        y=[float(b.forecast_usd) for b in budgets],
        marker_color="rgba(120,120,120,0.35)",
    )
    figure.add_scatter(
        name="limit",
        x=names,
        y=[float(b.limit_usd) for b in budgets],
        mode="markers",
        marker={"symbol": "line-ew-open", "size": 40, "color": "#E45756"},
    )
    figure.update_layout(
        barmode="group", title="Spend and forecast vs limit", yaxis_tickprefix="$", **LAYOUT
    )
    return figure
