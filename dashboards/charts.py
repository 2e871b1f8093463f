"""Plotly figures shared by the pages, coloured by `dashboards.theme`, and `show` to draw one.

Charts take float copies of the exact Decimal money; tables and metrics keep the exact values.
Each Plotly chart costs a page in the browser (the first one loads Plotly's 4.7 MB bundle, every
one is drawn on the page's only thread), so pages draw charts only where a table will not do:
a time series, a treemap, a scatter of quality against latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import theme
from dashboards.models import CostReport, Timeseries

HEIGHT = 380
LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    "legend_title_text": "",
    "height": HEIGHT,
}


#: Plotly's own toolbar is left out (zoom by dragging, reset by double-click and hover still
#: work; Streamlit's element toolbar keeps full screen): one less thing to build per chart
CONFIG = {"displayModeBar": False, "displaylogo": False}


#: a Vega expression for USD axis labels
USD_AXIS_LABEL = (
    "abs(datum.value) >= 1000 ? format(datum.value, '$,.3~s') : format(datum.value, '$,.3~r')"
)


def show(figure: go.Figure | VegaChart, **kwargs: Any) -> Any:
    """Draw `figure` across its container (a Plotly one without Plotly's toolbar)."""
    if isinstance(figure, VegaChart):
        return st.vega_lite_chart(figure.data, figure.spec, width="stretch", **kwargs)
    return st.plotly_chart(figure, width="stretch", config=CONFIG, **kwargs)


@dataclass(frozen=True)
class VegaChart:
    """A Vega-Lite chart: its rows and its spec (`st.vega_lite_chart`)."""

    data: pd.DataFrame
    spec: dict[str, Any]


def stacked_daily(series: Timeseries, dimension: str | None, title: str) -> VegaChart:
    """Daily spend as stacked bars, one colour per value of `dimension` (stacked and listed in
    order of first appearance), a hover per bar segment.

    Vega-Lite rather than Plotly: the page's only chart then needs no Plotly in the browser,
    whose bundle (4.7 MB against Vega's 0.8) costs a page more to load than the chart to draw."""
    days, groups, costs = [], [], []
    for point in series.points:
        days.append(point.bucket[:10])
        groups.append(point.dims.get(dimension, "all") if dimension else "all")
        costs.append(float(point.cost_usd))
    order = list(dict.fromkeys(groups))
    colours = theme.colour_map(dimension or "", order)
    label = dimension.replace("_", " ") if dimension else "spend"
    frame = pd.DataFrame({"day": days, "group": groups, "cost_usd": costs})
    frame["rank"] = frame["group"].map({group: i for i, group in enumerate(order)})
    spec = {
        "title": title,
        "height": HEIGHT - 80,
        "mark": {"type": "bar"},
        "encoding": {
            # one bar per UTC day, never clock-time ticks
            "x": {"field": "day", "type": "ordinal", "title": None},
            "y": {
                "field": "cost_usd",
                "type": "quantitative",
                "aggregate": "sum",
                "title": "USD",
                # SI prefixes from $1k up ($1.5M); below, plain decimals: d3's "m" and "µ"
                # would make a thousandth of a dollar read "$1.5m"
                "axis": {"labelExpr": USD_AXIS_LABEL},
            },
            "color": {
                "field": "group",
                "type": "nominal",
                "title": label,
                "scale": {"domain": order, "range": [colours[g] for g in order]},
                "legend": {"orient": "right"} if dimension else None,
            },
            "order": {"field": "rank", "type": "quantitative"},
            "tooltip": [
                {"field": "day", "type": "ordinal"},
                {"field": "group", "type": "nominal", "title": label},
                {"field": "cost_usd", "type": "quantitative", "title": "spend", "format": "$,.4f"},
            ],
        },
    }
    return VegaChart(frame, spec)


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


#: marker shapes for task types on the quality chart (Vega-Lite's)
SHAPES = ("circle", "diamond", "square", "cross", "triangle-up", "triangle-down", "wedge", "stroke")


def quality_vs_latency(frame: pd.DataFrame, title: str) -> VegaChart:
    """Mean feedback score against p95 latency, one point per route, task type and model, its
    area by calls: colour is the model, shape the task type, a hover per point with the route,
    calls, success rate and mean cost. Only rows with a score are drawn.

    Vega-Lite, like the daily series: this is the Routing page's only chart, so the page needs
    no Plotly in the browser (about 0.1-0.2 s of loading saved on every visit)."""
    rated = frame[frame["mean_score"].notna()]
    models = sorted(rated["model"].unique())
    tasks = sorted(rated["task_type"].unique())
    data = rated[
        [
            "route",
            "task_type",
            "model",
            "calls",
            "success_rate",
            "p95_latency_ms",
            "mean_score",
            "mean_cost_usd",
        ]
    ].astype({"mean_cost_usd": float})
    spec = {
        "title": title,
        "height": HEIGHT - 80,
        "mark": {"type": "point", "filled": True, "opacity": 0.8, "stroke": "white"},
        "encoding": {
            "x": {
                "field": "p95_latency_ms",
                "type": "quantitative",
                "title": "p95 latency (ms)",
                "scale": {"zero": False},
            },
            "y": {
                "field": "mean_score",
                "type": "quantitative",
                "title": "mean score",
                "scale": {"zero": False},
            },
            "color": {
                "field": "model",
                "type": "nominal",
                "scale": {"domain": models, "range": [theme.model_colour(m) for m in models]},
            },
            "shape": {
                "field": "task_type",
                "type": "nominal",
                "title": "task type",
                "scale": {
                    "domain": tasks,
                    "range": [SHAPES[i % len(SHAPES)] for i in range(len(tasks))],
                },
            },
            "size": {"field": "calls", "type": "quantitative", "scale": {"range": [20, 400]}},
            "tooltip": [
                {"field": "model", "type": "nominal"},
                {"field": "task_type", "type": "nominal", "title": "task type"},
                {"field": "route", "type": "nominal"},
                {"field": "mean_score", "type": "quantitative", "title": "score", "format": ".3f"},
                {
                    "field": "p95_latency_ms",
                    "type": "quantitative",
                    "title": "p95 ms",
                    "format": ",.0f",
                },
                {"field": "calls", "type": "quantitative", "format": ","},
                {
                    "field": "success_rate",
                    "type": "quantitative",
                    "title": "success",
                    "format": ".1%",
                },
                {
                    "field": "mean_cost_usd",
                    "type": "quantitative",
                    "title": "mean $",
                    "format": ".6f",
                },
            ],
        },
    }
    return VegaChart(data, spec)
