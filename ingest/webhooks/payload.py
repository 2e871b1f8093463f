"""What a webhook receiver gets: an alert (a budget's, a circuit's, a spend anomaly's, a
guardrail's) in a Standard Webhooks envelope.

`{"type": <alert type>, "timestamp": <when the alert fired, ISO 8601 UTC>, "data": {...}}`,
where `data` is the alert as on the topic plus `summary`, one sentence a person can read in a
chat channel without knowing the fields ("Budget marketing-monthly reached 80% of $5,000.00
(spent $4,012.55) for 2026-11"). The body is built once per alert, so every attempt and every
endpoint gets the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from tollway.budget_events import BudgetAlert


def envelope(alert: BudgetAlert) -> bytes:
    data = alert.model_dump(mode="json")
    data["summary"] = summary(alert)
    return orjson.dumps({"type": alert.type, "timestamp": data["fired_at"], "data": data})


def summary(alert: BudgetAlert) -> str:
    if alert.type == "provider.circuit_opened":
        return (
            f"Circuit opened for {alert.model} on {alert.provider} after {alert.failures} "
            f"consecutive failures: calls go to their fallbacks until a probe succeeds"
            + (f" (last error: {alert.error})" if alert.error else "")
        )
    if alert.type == "guardrail.triggered":
        where = "/".join(
            alert.scope.get(k, "") for k in ("business_line", "project") if k in alert.scope
        )
        did = {"block": "blocked", "redact": "redacted", "flag": "flagged"}.get(
            alert.action, "matched"
        )
        return (
            f"Guardrail {alert.guardrail} {did} a call from key {alert.key_id}"
            + (f" ({where})" if where else "")
            + f" to {alert.model}: the request contained {alert.found}; this key's further"
            " matches this hour raise no new alert"
        )
    if alert.type == "session.expensive":
        where = _attribution(alert)
        minutes = ""
        if alert.period_start and alert.period_end:
            minutes = (
                f" over {(alert.period_end - alert.period_start).total_seconds() / 60:.0f} min"
            )
        return (
            f"Session {alert.scope.get('session_id', '')} of key {alert.key_id}"
            + (f" ({where})" if where else "")
            + f" has cost {usd(alert.spend_usd)}{minutes}, over the {usd(alert.limit_usd)}"
            " a session may cost before this alert (sessions.alert_usd)"
        )
    if alert.type == "session.limit_reached":
        where = _attribution(alert)
        return (
            f"Session {alert.scope.get('session_id', '')} of key {alert.key_id}"
            + (f" ({where})" if where else "")
            + f" reached its limit of {usd(alert.limit_usd)} (sessions.limit_usd) at "
            f"{usd(alert.spend_usd)}: its further calls are refused"
        )
    if alert.type == "spend.anomaly":
        scope = ", ".join(f"{k} {v}" for k, v in alert.scope.items()) or "all spend"
        hour = alert.period_start.strftime("%Y-%m-%d %H:00 UTC") if alert.period_start else ""
        baseline = usd(alert.baseline_usd) if alert.baseline_usd is not None else "its baseline"
        return (
            f"Spend anomaly: {scope} spent {usd(alert.spend_usd)} in the hour from {hour}, "
            f"{alert.zscore or 0:g} standard deviations above its usual {baseline}"
        )
    budget = f"Budget {alert.budget_id}"
    period = period_label(alert)
    when = f" for {period}" if period else ""
    limit, spent = usd(alert.limit_usd), usd(alert.spend_usd)
    if alert.type == "budget.threshold_reached":
        percent = alert.threshold * 100 if alert.threshold else _percent(alert)
        return f"{budget} reached {percent:g}% of {limit} (spent {spent}){when}"
    if alert.type == "budget.exceeded":
        action = f"; action: {alert.action}" if alert.action else ""
        return (
            f"{budget} exceeded its limit of {limit} (spent {spent}, {_percent(alert):.0f}%)"
            f"{when}{action}"
        )
    if alert.type == "budget.forecast_breach":
        forecast = usd(alert.forecast_usd) if alert.forecast_usd is not None else "more than that"
        return (
            f"{budget} is forecast to reach {forecast} of its {limit} limit{when} "
            f"(spent {spent} so far)"
        )
    return f"Test event from tollway ({alert.budget_id}): signed delivery works"


def _attribution(alert: BudgetAlert) -> str:
    """`business_line/project/task_type`, as far as the alert's scope names them."""
    return "/".join(
        alert.scope[k] for k in ("business_line", "project", "task_type") if k in alert.scope
    )


def usd(amount: Decimal) -> str:
    """Dollars and cents; a fraction of a cent to the micro-dollar, not as $0.00."""
    if 0 < abs(amount) < Decimal("0.01"):
        return f"${amount:.6f}"
    return f"${amount:,.2f}"


def _percent(alert: BudgetAlert) -> float:
    if alert.limit_usd:
        return float(alert.spend_usd / alert.limit_usd * 100)
    return alert.percent


def period_label(alert: BudgetAlert) -> str:
    """The budget period in the budget's own time zone: 2026-11, 2026-Q4, 2026-11-05, …"""
    if alert.period_start is None or alert.period in ("", "total"):
        return ""
    try:
        zone = ZoneInfo(alert.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    start: datetime = alert.period_start
    local = (start if start.tzinfo else start.replace(tzinfo=UTC)).astimezone(zone)
    if alert.period == "monthly":
        return local.strftime("%Y-%m")
    if alert.period == "quarterly":
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    if alert.period == "weekly":
        return f"the week of {local.strftime('%Y-%m-%d')}"
    return local.strftime("%Y-%m-%d")
