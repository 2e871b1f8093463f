"""Overview: today's and this month's spend, budgets at a glance, and what moved this week."""

from __future__ import annotations

import calendar
from datetime import timedelta
from decimal import Decimal

import streamlit as st

from dashboards import charts, theme
from dashboards.client import AccessDenied, AnalyticsClient, ApiError
from dashboards.session import empty_state, fetch, require_client, today, tomorrow


def _downgraded(client: AnalyticsClient, since: str) -> str:
    """Downgrades are a budget action, not a dimension of the summaries: only the SQL endpoint
    (finops/admin) can count them, so a viewer sees a dash. Counted from the smallest daily
    rollup (every rollup keeps `downgraded` per UTC day, this one about a hundred rows a day): the range
    starts at a UTC midnight and runs to now, so whole days of the rollup are exactly the raw
    rows, while a raw count reads a month of the ledger (0.2 to 0.5 s at 100M calls)."""
    try:
        rows = client.sql(
            f"SELECT sum(downgraded) AS n FROM calls_daily_by_line WHERE day >= toDate('{since}')"
        )
    except (AccessDenied, ApiError):
        return "—"
    return f"{int(rows[0]['n']) if rows else 0:,}"


st.title("Overview")
client = require_client()
day, end = today(), tomorrow()
month_start = day.replace(day=1)

recent = fetch(lambda: client.cost(day - timedelta(days=89), end))
if recent.totals.calls == 0:
    empty_state(client)
    st.stop()

spend_today = fetch(lambda: client.cost(day, end)).totals
month = fetch(lambda: client.cost(month_start, end, group_by=["status"]))
budgets = fetch(client.budgets)

days_in_month = calendar.monthrange(day.year, day.month)[1]
forecast = month.totals.cost_usd * Decimal(days_in_month) / Decimal(day.day)
blocked = sum(r.calls for r in month.rows if r.dims.get("status") == "blocked")

cols = st.columns(4)
cols[0].metric("Spend today", theme.usd(spend_today.cost_usd))
cols[1].metric("Month to date", theme.usd(month.totals.cost_usd))
cols[2].metric("Month forecast", theme.usd(forecast), help="Month to date, extended linearly.")
cols[3].metric("Active alerts", sum(b.alerting for b in budgets))
cols = st.columns(4)
cols[0].metric("Calls this month", f"{month.totals.calls:,}")
cols[1].metric("Error rate", theme.percent(month.totals.error_rate))
cols[2].metric("Blocked", f"{blocked:,}", help="Calls refused by a budget this month.")
cols[3].metric("Downgraded", _downgraded(client, month_start.isoformat()))

alerts = [b for b in budgets if b.alerting]
for budget in alerts:
    message = (
        f"{theme.STATE_ICONS[budget.state]} Budget **{budget.id}** is {budget.state}: "
        f"{theme.usd(budget.spend_usd)} of {theme.usd(budget.limit_usd)} "
        f"({theme.percent(budget.ratio)}), forecast {theme.usd(budget.forecast_usd)}."
    )
    (st.error if budget.state == "exceeded" else st.warning)(message)

left, right = st.columns([1, 2])
with left:
    # a bar per budget as plain progress bars: the Budgets page has the details, and a chart
    # here would cost this page a second Plotly figure to draw
    st.markdown("**Budgets: spend of limit**")
    for budget in budgets:
        st.progress(
            min(budget.ratio, 1.0),
            text=f"{theme.STATE_ICONS.get(budget.state, '')} {budget.id}: "
            f"{theme.usd(budget.spend_usd)} of {theme.usd(budget.limit_usd)} "
            f"({theme.percent(budget.ratio)}), forecast {theme.usd(budget.forecast_usd)}",
        )
    if not budgets:
        st.info("No budgets configured — add one under `budgets:` in tollway.yaml.")
with right:
    series = fetch(
        lambda: client.timeseries(day - timedelta(days=29), end, group_by=["business_line"])
    )
    charts.show(charts.stacked_daily(series, "business_line", "Daily spend, last 30 days"))

st.subheader("Top movers vs last week")
this_week = fetch(lambda: client.cost(day - timedelta(days=6), end, group_by=["project"]))
last_week = fetch(
    lambda: client.cost(day - timedelta(days=13), day - timedelta(days=6), group_by=["project"])
)
before = {r.dims["project"]: r.cost_usd for r in last_week.rows}
now = {r.dims["project"]: r.cost_usd for r in this_week.rows}
# (project, last 7 days, the 7 days before), biggest change first
movers: list[tuple[str, Decimal, Decimal]] = sorted(
    ((p, now.get(p, Decimal(0)), before.get(p, Decimal(0))) for p in set(now) | set(before)),
    key=lambda m: -abs(m[1] - m[2]),
)[:10]
if movers:
    st.markdown(
        theme.markdown_table(
            ["project", "last 7 days", "7 days before", "change"],
            [
                [project, theme.usd(this), theme.usd(last), theme.change(this, last)]
                for project, this, last in movers
            ],
        )
    )
else:
    st.caption("No spend in the last two weeks.")
