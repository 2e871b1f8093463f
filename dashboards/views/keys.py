"""Keys: every virtual key with what it spent lately, for key hygiene (admin keys only).

Which keys spend the most, which nobody used in the period (candidates for revocation), which
expire within a week, which are in a rotation's grace period, and which key ids still spend
though tollway no longer knows them (deleted from tollway.yaml).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import streamlit as st

from dashboards.models import KeyEntry
from dashboards.session import fetch, require_client
from dashboards.theme import content_log_text, limits_text

SOON = timedelta(days=7)


def _state(entry: KeyEntry, now: datetime) -> str:
    if entry.state != "active":
        return entry.state
    if entry.previous_valid_until and entry.previous_valid_until > now:
        return "active, rotating"
    if entry.expires_at and entry.expires_at - now < SOON:
        return "active, expires soon"
    return "active" if entry.calls else "active, unused"


st.title("Keys")
client = require_client()
days = st.selectbox(
    "Spend over", [7, 30, 90], index=1, format_func=lambda d: f"the last {d} days", width=220
)
keys = fetch(lambda: client.keys(days))
if not keys:
    st.info(
        "**No keys yet.** Create one with `tollway keys create --business-line B --project P`.",
        icon=":material/key:",
    )
    st.stop()

now = datetime.now(UTC)
active = [k for k in keys if k.state == "active"]
unused = [k for k in active if not k.calls]
expiring = [k for k in active if k.expires_at and k.expires_at - now < SOON]
unknown = [k for k in keys if k.state == "unknown"]
cols = st.columns(4)
cols[0].metric("Active keys", f"{len(active):,}")
cols[1].metric(f"Spend, {days} days", f"${sum((k.spend_usd for k in keys), Decimal(0)):,.2f}")
cols[2].metric(f"Unused for {days} days", f"{len(unused):,}")
cols[3].metric("Expire within 7 days", f"{len(expiring):,}")
if unknown:
    spent = sum((k.spend_usd for k in unknown), Decimal(0))
    st.warning(
        f"**{len(unknown)} key id(s) spent ${spent:,.2f} but tollway no longer knows them** "
        f"({', '.join(k.id for k in unknown)}): deleted from tollway.yaml while still in use?",
        icon=":material/help:",
    )

frame = pd.DataFrame(
    [
        {
            "key": k.id,
            "name": k.name,
            "business line": k.business_line,
            "project": k.project,
            "role": k.role,
            "state": _state(k, now),
            "limits": limits_text(k.limits),
            "content log": content_log_text(k.log_content),
            "spend": float(k.spend_usd),
            "calls": k.calls,
            "last used": k.last_active,
            "expires": k.expires_at,
        }
        for k in keys
    ]
)
st.dataframe(
    frame,
    hide_index=True,
    width="stretch",
    column_config={
        "spend": st.column_config.NumberColumn(format="$%.4f"),
        "last used": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:00"),
        "expires": st.column_config.DatetimeColumn(format="YYYY-MM-DD"),
    },
)
st.caption(
    "Spend and last use come from the hourly rollup. Revoke an unused key with "
    "`tollway keys revoke ID`; give a key a new secret with `tollway keys rotate ID "
    "--grace-hours 24`."
)
