"""Audit: who changed keys, budgets and webhooks through the admin API, who tried to without
the role, and what each reload of tollway.yaml changed — newest first (admin keys only)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.models import AUDIT_ACTIONS, AuditEntry
from dashboards.session import fetch, require_client
from dashboards.theme import content_log_text, limits_text


def _pruned(value: Any) -> Any:
    """The details without their empty fields (a budget's unset scope fields, say)."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v not in (None, [], {})}
    return value


def _budget(budget: dict[str, Any] | None) -> str:
    if not budget:
        return "none"
    scope = ", ".join(f"{k}={v}" for k, v in _pruned(budget.get("scope") or {}).items())
    limit = Decimal(str(budget.get("limit_usd", 0)))
    text = f"${limit:,} {budget.get('period', 'monthly')}, {budget.get('action', 'alert_only')}"
    return f"{text}, {scope or 'everything'}"


def _limits(limits: dict[str, Any] | None) -> str:
    return limits_text(limits) or "none"


def _key_update(details: dict[str, Any]) -> str:
    """`limits 60 requests/min (was none); content logging off (was policy)`."""
    parts = []
    if "limits" in details:
        parts.append(f"limits {_limits(details['limits'])} (was {_limits(details.get('before'))})")
    if "log_content" in details:
        now, was = details["log_content"], details.get("log_content_before")
        parts.append(f"content logging {content_log_text(now)} (was {content_log_text(was)})")
    return "; ".join(parts)


def summary(entry: AuditEntry) -> str:
    """What changed, in a few words."""
    details = entry.details
    match entry.action:
        case "budget.set" if details.get("before"):
            now, was = _budget(details["budget"]), _budget(details["before"])
            changed = [part for part in was.split(", ") if part not in now.split(", ")]
            return f"{now} (was {', '.join(changed) or 'the same'})"
        case "budget.set":
            return f"new: {_budget(details.get('budget'))}"
        case "budget.delete":
            return f"deleted: {_budget(details.get('before'))}"
        case "key.create":
            where = "/".join(p for p in (details.get("business_line"), details.get("project")) if p)
            return f"new {details.get('role', '')} key for {where or 'no business line'}"
        case "key.update":
            return _key_update(details)
        case "key.rotate" if details.get("grace_seconds"):
            return f"new secret; the old one works until {details.get('previous_valid_until')}"
        case "key.rotate":
            return "new secret; the old one stopped at once"
        case "key.revoke":
            return "revoked"
        case "webhook.test":
            return f"test delivery: {details.get('outcome')}"
        case "admin.denied":
            return f"refused: role {entry.actor_role}"
        case "config.reload":
            return f"reloaded: {_changes(details.get('changes') or {})}"
        case "config.rejected":
            return f"invalid, not applied: {str(details.get('error', '')).splitlines()[0]}"
    return ""


def _changes(changes: dict[str, Any]) -> str:
    """`models ~gpt-4o; routes -smart; budgets +seo-cap; settings: logging`."""
    marks = {"added": "+", "removed": "-", "changed": "~"}
    parts = [
        f"{what} " + " ".join(f"{marks[kind]}{name}" for kind, names in diff.items()
                              for name in names)
        for what, diff in changes.items()
        if what != "sections"
    ]  # fmt: skip
    if changes.get("sections"):
        parts.append(f"settings: {', '.join(changes['sections'])}")
    return "; ".join(parts) or "no named change"


st.title("Audit trail")
client = require_client()
top = st.columns([3, 1])
chosen = top[0].multiselect("Actions", AUDIT_ACTIONS, placeholder="every action")
limit = top[1].selectbox("Show", [50, 200, 1000], index=1, format_func=lambda n: f"last {n}")
entries = fetch(lambda: client.audit(tuple(chosen), limit))
if not entries:
    st.info(
        "**Nothing in the audit trail yet.** Changes made through the admin API show up here "
        "(`tollway keys create`, `tollway keys rotate`, `tollway budgets set`, …), and so do "
        "reloads of tollway.yaml.",
        icon=":material/inbox:",
    )
    st.stop()

denied = sum(e.action == "admin.denied" for e in entries)
cols = st.columns(3)
cols[0].metric("Entries shown", f"{len(entries):,}")
cols[1].metric("Changes", f"{len(entries) - denied:,}")
cols[2].metric("Refused attempts", f"{denied:,}")
frame = pd.DataFrame(
    [
        {
            "time": e.ts,
            "actor": f"{e.actor} ({e.actor_role})",
            "action": e.action,
            "target": e.target,
            "change": summary(e),
            "details": json.dumps(_pruned(e.details), separators=(", ", ": ")),
            "from": e.client,
        }
        for e in entries
    ]
)
frame["time"] = pd.to_datetime(frame["time"], format="ISO8601")
st.caption("Details say what changed; never a key's secret or hash.")
st.dataframe(frame, hide_index=True, width="stretch")
