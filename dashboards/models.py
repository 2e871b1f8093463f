"""Typed answers of the analytics API, as the dashboard uses them.

Money stays `Decimal` (the API sends exact strings) so a metric on a page equals the API's
number to the last digit; only charts convert to float. Unknown fields are ignored, so the API
can grow without breaking the dashboard.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Metrics(_Model):
    cost_usd: Decimal = Decimal(0)
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


class CostRow(Metrics):
    """One group of a breakdown; `dims` holds the group's dimension values."""

    dims: dict[str, str] = Field(default_factory=dict)


class CostReport(_Model):
    group_by: list[str]
    start: str
    end: str
    source: str = ""
    rows: list[CostRow]
    other: Metrics | None = None
    totals: Metrics

    @classmethod
    def parse(cls, body: dict[str, Any]) -> CostReport:
        dims = body.get("group_by") or []
        rows = [
            CostRow(
                **{k: v for k, v in r.items() if k not in dims}, dims={d: str(r[d]) for d in dims}
            )
            for r in body.get("rows") or []
        ]
        return cls.model_validate({**body, "rows": rows})


class Point(_Model):
    bucket: str
    cost_usd: Decimal
    calls: int
    errors: int
    p95_latency_ms: float | None = None
    dims: dict[str, str] = Field(default_factory=dict)


class Timeseries(_Model):
    granularity: str
    group_by: list[str]
    points: list[Point]

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Timeseries:
        dims = body.get("group_by") or []
        points = [
            Point(
                **{k: v for k, v in p.items() if k not in dims}, dims={d: str(p[d]) for d in dims}
            )
            for p in body.get("points") or []
        ]
        return cls.model_validate({**body, "points": points})


class Budget(_Model):
    id: str
    scope: dict[str, Any] = Field(default_factory=dict)
    period: str
    timezone: str = "UTC"
    limit_usd: Decimal
    spend_usd: Decimal
    ratio: float
    period_start: str
    period_end: str | None = None
    forecast_usd: Decimal
    action: str
    state: str
    source: str = "file"  # or "api": set through /v1/admin/budgets

    @property
    def alerting(self) -> bool:
        return self.state in ("warned", "exceeded")


#: the audit trail's actions, as tollway/audit_events.py's AuditAction names them (the dashboard
#: does not import tollway; tests/dashboards/test_pages.py keeps the two lists equal)
AUDIT_ACTIONS = [
    "key.create",
    "key.update",
    "key.rotate",
    "key.revoke",
    "budget.set",
    "budget.delete",
    "webhook.test",
    "admin.denied",
    "config.reload",
    "config.rejected",
]


class AuditEntry(_Model):
    id: str
    ts: str
    actor: str
    actor_role: str
    action: str
    target: str
    details: dict[str, Any] = Field(default_factory=dict)
    client: str = ""


class KeyEntry(_Model):
    """A virtual key and what it spent (GET /v1/analytics/keys); `unknown`: a key id the ledger
    names but tollway no longer knows."""

    id: str
    name: str = ""
    business_line: str = ""
    project: str = ""
    role: str = ""
    state: str
    limits: dict[str, int | None] | None = None
    log_content: bool | None = None  # None: as the logging policy says
    expires_at: datetime | None = None
    previous_valid_until: datetime | None = None
    spend_usd: Decimal = Decimal(0)
    calls: int = 0
    last_active: datetime | None = None


class Alert(_Model):
    """An alert raised (GET /v1/analytics/alerts): a budget's, a circuit opened, a spend
    anomaly."""

    alert_id: str
    type: str
    fired_at: str
    summary: str


class Anomaly(_Model):
    """A day of a project's spend far above its own baseline (GET /v1/analytics/anomalies)."""

    bucket: str
    project: str = ""
    cost_usd: Decimal
    baseline_usd: Decimal
    zscore: float


class Call(_Model):
    """One ledger row; content columns are deliberately not modelled (never shown)."""

    event_id: str = ""
    ts: str
    business_line: str = ""
    project: str = ""
    task_type: str = ""
    key_id: str = ""
    user: str = ""
    model: str = ""
    provider: str = ""
    route: str = ""
    status: str = ""
    budget_action: str = ""
    cost_usd: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    duration_ms: float = 0
    ttft_ms: float | None = None
    attempts: int = 0
    fallback_used: bool = False
    guardrails: list[str] = []
    session_id: str = ""


class Session(_Model):
    """What one session's calls cost together (GET /v1/analytics/sessions)."""

    session_id: str
    calls: int = 0
    cost_usd: Decimal = Decimal(0)
    errors: int = 0
    limited: int = 0  # calls refused at sessions.limit_usd
    first_ts: str = ""
    duration_s: float = 0
    models: list[str] = []
    business_line: str = ""
    project: str = ""
    task_type: str = ""


class SessionSummary(_Model):
    sessions: int = 0
    calls: int = 0
    cost_usd: Decimal = Decimal(0)
    median_cost_usd: Decimal = Decimal(0)
    p90_cost_usd: Decimal = Decimal(0)
    max_cost_usd: Decimal = Decimal(0)
    median_calls: float = 0


class RoutingStat(_Model):
    route: str
    task_type: str
    model: str
    calls: int
    success_rate: float | None = None
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    p50_ttft_ms: float | None = None
    mean_cost_usd: Decimal | None = None
    mean_score: float | None = None
    score_count: int = 0


class Recommendation(_Model):
    task_type: str
    current_model: str
    current_cost_usd: Decimal
    calls: int
    candidate_model: str
    candidate_quality: float | None = None
    candidate_p95_ms: float | None = None
    projected_monthly_savings_usd: Decimal
    yaml_snippet: str
