"""Explorer: drill business line → project → task type → model → key.

The whole view lives in `st.query_params` (`?business_line=marketing&project=seo&days=30`), so
the URL in the address bar is a shareable link to exactly this view.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashboards import charts, loads, theme
from dashboards.session import empty_state, fetch, require_client, today, tomorrow

LEVELS = loads.LEVELS
LABELS = {
    "business_line": "business line",
    "project": "project",
    "task_type": "task type",
    "model": "model",
    "key_id": "key",
}
RANGES = {"Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90}


def _path() -> dict[str, str]:
    """The drill path from the URL, cut at the first missing level."""
    path: dict[str, str] = {}
    for level in LEVELS:
        value = st.query_params.get(level)
        if not value:
            break
        path[level] = value
    return path


def _go_to(path: dict[str, str]) -> None:
    for level in LEVELS:
        if level in path:
            st.query_params[level] = path[level]
        elif level in st.query_params:
            del st.query_params[level]
    st.rerun()


st.title("Cost explorer")
client = require_client()
path = _path()
level = next((lv for lv in LEVELS if lv not in path), None)

# --- filters: time range and environment ---------------------------------------------------
top = st.columns([1, 1, 2])
range_names = list(RANGES)
days_param = st.query_params.get("days") or str(loads.EXPLORER_DAYS)
current_days = int(days_param) if days_param.isdigit() else loads.EXPLORER_DAYS
range_index = next((i for i, n in enumerate(range_names) if RANGES[n] == current_days), 1)
chosen = top[0].selectbox("Time range", range_names, index=range_index, key="range")
if RANGES[chosen] != current_days:
    st.query_params["days"] = str(RANGES[chosen])
    st.rerun()
days = RANGES[chosen]
start, end = today() - timedelta(days=days - 1), tomorrow()

current_env = st.query_params.get("environment") or "all"
filters: dict[str, list[str]] = {k: [v] for k, v in path.items()}
if current_env != "all":
    filters["environment"] = [current_env]
# the environments, this level's breakdown and its daily series, asked for together
view = fetch(lambda: loads.explorer(client, today(), days, filters, level))
environments, report, series = view.environments, view.report, view.series
env_options = ["all", *sorted(r.dims["environment"] for r in environments.rows)]
env_index = env_options.index(current_env) if current_env in env_options else 0
env = top[1].selectbox("Environment", env_options, index=env_index, key="environment")
if env != current_env:
    if env == "all":
        del st.query_params["environment"]
    else:
        st.query_params["environment"] = env
    st.rerun()

# --- breadcrumb ------------------------------------------------------------------------------
crumbs = st.columns(len(path) + 2)
if crumbs[0].button("All spend", key="crumb_root", disabled=not path):
    _go_to({})
for i, (name, value) in enumerate(path.items(), start=1):
    keep = dict(list(path.items())[:i])
    if crumbs[i].button(
        f"→ {value}", key=f"crumb_{name}", help=LABELS[name], disabled=i == len(path)
    ):
        _go_to(keep)

group = [level] if level else list(LEVELS)
query = urlencode(
    [
        ("group_by", ",".join(group)),
        ("start", str(start)),
        ("end", str(end)),
        *[(k, v[0]) for k, v in sorted(filters.items())],
    ]
)
st.caption(f"API: `GET /v1/analytics/cost?{query}`")

if report.totals.calls == 0:
    empty_state(client, "No calls in this view" if path or env != "all" else "No calls yet")
    st.stop()

cols = st.columns(3)
cols[0].metric("Spend", theme.usd(report.totals.cost_usd))
cols[1].metric("Calls", f"{report.totals.calls:,}")
cols[2].metric("Error rate", theme.percent(report.totals.error_rate))

# --- drill: a selectbox, and the breakdown table, whose rows drill when clicked --------------
if level is not None:
    values = [r.dims[level] for r in report.rows]
    picked = st.selectbox(
        f"Drill into a {LABELS[level]}", ["—", *values], index=0, key=f"drill_{level}"
    )
    if picked != "—":
        _go_to({**path, level: picked})

st.subheader(f"By {LABELS[level]}" if level else "Calls in this view")
table = pd.DataFrame(
    [
        {
            **r.dims,
            "cost_usd": float(r.cost_usd),
            "calls": r.calls,
            "errors": r.errors,
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
        }
        for r in report.rows
    ]
)
# spend as an in-cell bar, biggest first (the API's order): the ranked bar chart this replaced
# cost the page a Plotly figure; a click on a row drills into it as a click on a bar did
columns = {
    **{level: st.column_config.TextColumn(LABELS[level]) for level in LEVELS},
    "cost_usd": st.column_config.ProgressColumn(
        "cost (USD)",
        format=theme.usd_column_format(table["cost_usd"]),
        min_value=0.0,
        max_value=max(1e-9, table["cost_usd"].max()),
    ),
    **{
        name: st.column_config.NumberColumn(name.replace("_", " "), format="localized")
        for name in ("calls", "errors", "input_tokens", "output_tokens")
    },
}
if level is None:
    st.dataframe(table, hide_index=True, width="stretch", column_config=columns)
else:
    st.caption(f"Click a row to drill into that {LABELS[level]}.")
    event = st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config=columns,
        on_select="rerun",
        selection_mode="single-row",
        key=f"table_{level}",
    )
    rows: list[int] = list(event.selection.rows) if event else []
    if rows and 0 <= rows[0] < len(values):
        _go_to({**path, level: values[rows[0]]})

daily = charts.stacked_daily(
    series, level, f"Daily spend by {LABELS[level]}" if level else "Daily spend"
)
charts.show(daily)
nxt = None
if level is not None and LEVELS.index(level) + 1 < len(LEVELS):
    nxt = LEVELS[LEVELS.index(level) + 1]
# the treemap is drawn on request: a second Plotly figure costs the page about as much as the
# first, and the table above already ranks this level (and drills into the next)
if level is not None and st.toggle(
    f"Where the money goes: {LABELS[level]} → {LABELS[nxt]}" if nxt else "Where the money goes",
    key="treemap",
):
    nested = report
    if nxt is not None:
        below: list[str] = [level, nxt]
        nested = fetch(lambda: client.cost(start, end, group_by=below, filters=filters))
    charts.show(
        charts.spend_treemap(nested, [level, *([nxt] if nxt else [])], "Where the money goes")
    )

# --- CSV -------------------------------------------------------------------------------------
buffer = io.StringIO()
writer = csv.writer(buffer, lineterminator="\n")
writer.writerow([*group, "cost_usd", "calls", "errors", "input_tokens", "output_tokens"])
for r in report.rows:
    writer.writerow(
        [
            *(r.dims[d] for d in group),
            str(r.cost_usd),
            r.calls,
            r.errors,
            r.input_tokens,
            r.output_tokens,
        ]
    )
st.download_button("Download CSV", buffer.getvalue(), file_name="tollway-cost.csv", mime="text/csv")
