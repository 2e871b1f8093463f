"""Budgets: each budget's spend against its limit, forecast, state, and what drives it."""

from __future__ import annotations

import streamlit as st

from dashboards import loads, theme
from dashboards.session import fetch, require_client, today

st.title("Budgets")
client = require_client()
budgets = fetch(client.budgets)
if not budgets:
    st.info(
        "**No budgets configured.** Add one under `budgets:` in tollway.yaml, e.g. "
        "`{id: marketing-monthly, scope: {business_line: marketing}, period: monthly, "
        "limit_usd: 500, action: block}` — then check it with `tollway config check`.",
        icon=":material/lightbulb:",
    )
    st.stop()

# every budget's driving projects at once (one request per budget, sent together)
drivers_of = fetch(lambda: loads.budget_drivers(client, budgets, today(), loads.BUDGET_FILTERABLE))
for budget, drivers in zip(budgets, drivers_of, strict=True):
    with st.container(border=True):
        head = st.columns([3, 1])
        scope = ", ".join(f"{k}={v}" for k, v in budget.scope.items()) or "everything"
        head[0].markdown(
            f"#### {theme.STATE_ICONS.get(budget.state, '')} {budget.id}\n"
            f"{budget.period} · {budget.timezone} · scope: `{scope}` · at 100 %: **{budget.action}**"
            + (" · set through the admin API" if budget.source == "api" else "")
        )
        head[1].markdown(f"**{budget.state.upper()}**")
        st.progress(
            min(budget.ratio, 1.0),
            text=f"{theme.usd(budget.spend_usd)} of {theme.usd(budget.limit_usd)} "
            f"({theme.percent(budget.ratio)})",
        )
        cols = st.columns(3)
        cols[0].metric("Spend", theme.usd(budget.spend_usd))
        cols[1].metric(
            "Forecast",
            theme.usd(budget.forecast_usd),
            delta=theme.percent(float(budget.forecast_usd / budget.limit_usd)) + " of limit",
            delta_color="inverse" if budget.forecast_usd > budget.limit_usd else "off",
        )
        cols[2].metric("Period ends", (budget.period_end or "never")[:10])

        if drivers.rows:
            total = drivers.totals.cost_usd
            st.caption("Driving projects this period")
            st.markdown(
                theme.markdown_table(
                    ["project", "spend", "share", "calls"],
                    [
                        [
                            r.dims["project"],
                            theme.usd(r.cost_usd),
                            theme.percent(float(r.cost_usd / total)) if total else "—",
                            f"{r.calls:,}",
                        ]
                        for r in drivers.rows
                    ],
                )
            )
        else:
            st.caption("No spend in this period yet.")
