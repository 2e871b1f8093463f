"""Plotly figures shared by the pages, coloured by `dashboards.theme`.

Charts take float copies of the exact Decimal money; tables and metrics keep the exact values.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from dashboards import theme
from dashboards.models import Budget, CostReport, Timeseries

LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    "legend_title_text": "",
    "height": 380,
}


def stacked_daily(series: Timeseries, dimension: str | None, title: str) -> go.Figure:
    """Daily spend as stacked bars, one colour per value of `dimension`.

    Built from graph objects, a bar trace per value in order of first appearance (what plotly
    express would make): express costs about 55 ms a chart in its data frame machinery, this
    about 10 ms, on every run of the Overview and Explorer pages."""
    traces: dict[str, tuple[list[str], list[float]]] = {}
    for point in series.points:
        group = point.dims.get(dimension, "all") if dimension else "all"
        days, costs = traces.setdefault(group, ([], []))
        days.append(point.bucket[:10])
        costs.append(float(point.cost_usd))
    colours = theme.colour_map(dimension or "", traces)
    figure = go.Figure()
    for group, (days, costs) in traces.items():
        figure.add_bar(x=days, y=costs, name=group, marker_color=colours[group])
    figure.update_layout(title=title, barmode="stack", yaxis_tickprefix="$", **LAYOUT)
    figure.update_yaxes(title_text="USD")
    figure.update_xaxes(type="category")  # one bar per UTC day, never clock-time ticks
    return figure


def spend_treemap(report: CostReport, path: Sequence[str], title: str) -> go.Figure:
    """Spend as nested rectangles along `path` (e.g. business line → project), coloured by the
    first level. The nodes (ids "all/marketing/marketing-p1", as plotly express names them)
    are summed here: express's treemap takes about 75 ms of its data frame machinery on every
    Explorer run, this a few."""
    value: dict[str, float] = {}
    nodes: dict[str, tuple[str, str, str]] = {}  # id → (label, parent id, first-level value)
    for row in report.rows:
        cost = float(row.cost_usd)
        if cost <= 0:
            continue
        labels = [row.dims.get(d, "") or "(none)" for d in path]
        parent = "all"
        value["all"] = value.get("all", 0.0) + cost
        for label in labels:
            node = f"{parent}/{label}"
            nodes.setdefault(node, (label, parent, labels[0]))
            value[node] = value.get(node, 0.0) + cost
            parent = node
    colours = theme.colour_map(path[0], {first for _, _, first in nodes.values()})
    ids = ["all", *nodes]
    figure = go.Figure(
        go.Treemap(
            ids=ids,
            labels=["all", *(label for label, _, _ in nodes.values())],
            parents=["", *(parent for _, parent, _ in nodes.values())],
            values=[value[i] for i in ids],
            branchvalues="total",
            marker_colors=["#F3F4F6", *(colours[first] for _, _, first in nodes.values())],
            texttemplate="%{label}<br>$%{value:,.4f}",
        )
    )
    figure.update_layout(title=title, **LAYOUT)
    return figure


def ranked_bars(report: CostReport, dimension: str, title: str) -> go.Figure:
    """Horizontal bars, biggest spender on top — the clickable drill-down chart (a clicked
    point's `y` is the value to drill into). Graph objects rather than plotly express, for the
    reason given at `stacked_daily`: a trace per value, so each keeps its colour."""
    rows = list(reversed(report.rows))  # plotly draws the first category at the bottom
    colours = theme.colour_map(dimension, (r.dims.get(dimension, "") for r in rows))
    figure = go.Figure()
    for row in rows:
        value = row.dims.get(dimension, "")
        figure.add_bar(
            x=[float(row.cost_usd)],
            y=[value],
            orientation="h",
            name=value,
            marker_color=colours[value],
            hovertemplate=f"{value}: $%{{x:,.4f}}<extra></extra>",
        )
    figure.update_layout(
        title=title, barmode="relative", showlegend=False, xaxis_tickprefix="$", **LAYOUT
    )
    figure.update_xaxes(title_text="USD")
    figure.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=[r.dims.get(dimension, "") for r in rows],
    )
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


#: marker shapes for task types on the quality chart, in plotly express's order
SYMBOLS = ("circle", "diamond", "square", "x", "cross", "pentagon", "star", "hexagram")


def quality_vs_latency(frame: pd.DataFrame, title: str) -> go.Figure:
    """Mean feedback score against p95 latency, one marker per route, task type and model, sized
    by calls: colour is the model, shape the task type.

    One trace per model (shapes as per-point symbols) plus a legend-only trace per task type,
    instead of plotly express's trace for every model and task type pair: at 8 models and 6
    task types that is 14 traces instead of 48, and the figure builds in about 30 ms instead of
    0.2 to 0.5 s (and draws faster in the browser). The legend lists models and task types
    apart."""
    tasks = sorted(frame["task_type"].unique())
    symbol = {task: SYMBOLS[i % len(SYMBOLS)] for i, task in enumerate(tasks)}
    sizeref = 2.0 * max(float(frame["calls"].max()), 1.0) / 20**2  # px: area, 20 px at most
    figure = go.Figure()
    for model, part in frame.groupby("model", sort=True):
        figure.add_scatter(
            x=part["p95_latency_ms"],
            y=part["mean_score"],
            mode="markers",
            name=str(model),
            legendgroup="model",
            legendgrouptitle_text="model",
            marker={
                "color": theme.model_colour(str(model)),
                "size": part["calls"],
                "sizemode": "area",
                "sizeref": sizeref,
                "sizemin": 3,
                "symbol": [symbol[task] for task in part["task_type"]],
                "line": {"width": 0.5, "color": "white"},
            },
            customdata=part[["route", "task_type", "calls", "success_rate", "mean_cost_usd"]],
            hovertemplate=f"<b>{model}</b> · %{{customdata[1]}} · route %{{customdata[0]}}<br>"
            "score %{y:.3f}, p95 %{x:,.0f} ms<br>%{customdata[2]:,} calls, "
            "success %{customdata[3]:.1%}, mean $%{customdata[4]:.6f}<extra></extra>",
        )
    for task in tasks:
        figure.add_scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=task,
            legendgroup="task_type",
            legendgrouptitle_text="task type",
            marker={"symbol": symbol[task], "color": "#888888", "size": 9},
        )
    figure.update_layout(
        title=title,
        xaxis_title="p95 latency (ms)",
        yaxis_title="mean score",
        **LAYOUT,
    )
    return figure
