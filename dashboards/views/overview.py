"""Overview: today's and this month's spend, budgets at a glance, what moved this week, and the
days a project spent far above its usual."""

from __future__ import annotations

from decimal import Decimal

import streamlit as st

from dashboards import charts, loads, theme
from dashboards.session import empty_state, fetch, require_client, today

st.title("Overview")
client = require_client()
view = fetch(lambda: loads.overview(client, today()))
if view.recent.calls == 0:
    empty_state(client)
    st.stop()

month, budgets = view.month, view.budgets
blocked = sum(r.calls for r in month.rows if r.dims.get("status") == "blocked")

cols = st.columns(4)
cols[0].metric("Spend today", theme.usd(view.today.cost_usd))
cols[1].metric("Month to date", theme.usd(month.totals.cost_usd))
cols[2].metric("Month forecast", theme.usd(view.forecast), help="Month to date, extended linearly.")
cols[3].metric("Active alerts", sum(b.alerting for b in budgets))
cols = st.columns(4)
cols[0].metric("Calls this month", f"{month.totals.calls:,}")
cols[1].metric("Error rate", theme.percent(month.totals.error_rate))
cols[2].metric("Blocked", f"{blocked:,}", help="Calls refused by a budget this month.")
cols[3].metric("Downgraded", view.downgraded)

alerts = [b for b in budgets if b.alerting]
for budget in alerts:
    message = (
        f"{theme.STATE_ICONS[budget.state]} Budget **{budget.id}** is {budget.state}: "
        f"{theme.usd(budget.spend_usd)} of {theme.usd(budget.limit_usd)} "
        f"({theme.percent(budget.ratio)}), forecast {theme.usd(budget.forecast_usd)}."
    )
    (st.error if budget.state == "exceeded" else st.warning)(message)

if view.alerts:
    with st.expander(f"Alerts of the last 7 days ({len(view.alerts)})", expanded=False):
        st.markdown(
            theme.markdown_table(
                ["when (UTC)", "alert", "what happened"],
                [[a.fired_at[:16].replace("T", " "), a.type, a.summary] for a in view.alerts],
            )
        )

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
    charts.show(charts.stacked_daily(view.series, "business_line", "Daily spend, last 30 days"))

st.subheader("Top movers vs last week")
before = {r.dims["project"]: r.cost_usd for r in view.last_week.rows}
now = {r.dims["project"]: r.cost_usd for r in view.this_week.rows}
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

st.subheader("Unusual days")
if view.anomalies:
    st.markdown(
        theme.markdown_table(
            ["day", "project", "spent", "usual", "how unusual"],
            [
                [
                    a.bucket[:10],
                    a.project,
                    theme.usd(a.cost_usd),
                    theme.usd(a.baseline_usd),
                    f"{a.zscore:.1f} std. dev.",
                ]
                for a in view.anomalies[:5]
            ],
        )
    )
else:
    st.caption(
        "No project spent far above its usual in the last 7 days (3 standard deviations over "
        "its 14 days before)."
    )
