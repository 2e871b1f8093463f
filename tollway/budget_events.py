"""Budget messages between the roles: spend status and alerts (topic contracts, version 1).

`BudgetStatus` (compacted topic `tollway.budget-status.v1`, key `budget|period_start|partition`):
the spend of one budget's period window counted from one partition of the calls topic. A
budget's spend is the sum over partitions; each worker publishes the partitions it owns, so
several workers never overwrite each other. `counted_through_offset` is the calls-topic offset
of that partition up to which the spend has counted every event (the last offset of the batch
that produced the record; None when unknown, as after a reconciliation from the ledger): a
proxy holding a call it published itself knows from it when the call is in the spend. Optional,
so records without it — from an older worker — still parse, and older proxies ignore it.

`BudgetHold` (compacted topic `tollway.budget-holds.v1`, key `instance|budget|period_start`):
what one proxy process (an *instance*: a random id per gateway process) holds against one
budget window — its reservations for calls in flight plus the settled costs the worker's status
has not counted yet. Every proxy follows the topic and counts the other instances' latest holds,
so a burst spread over several replicas is gated on (nearly) all of its spend, not only on what
the worker has already counted. `sent_at` is the publisher's clock: a record older than the
followers' TTL no longer counts (a crashed instance's last holds expire).

`BudgetAlert` (topic `tollway.budget-alerts.v1`, key `alert_id`): a threshold crossed, the
budget exceeded, or a forecast breach. `alert_id` is deterministic (budget, window, kind,
threshold), so it fires once per budget and period and doubles as the Standard Webhooks
`webhook-id` on every delivery attempt. The same topic carries the alerts that are not about a
budget, with the fields of their own: `provider.circuit_opened` (a proxy's circuit breaker
opened for a provider x model: `provider`, `model`, `failures`, `error`; router/proxy_alerts.py),
`spend.anomaly` (a scope's hour of spend far above its baseline: `scope`, the hour as the
period, `spend_usd`, `baseline_usd`, `zscore`; analytics/anomaly_alerts.py),
`guardrail.triggered` (a guardrail matched a key's prompt: `guardrail`, `action`, `found`,
`key_id`, `scope`, `model`; router/proxy_alerts.py) and `session.expensive` (a session's calls
cost `sessions.alert_usd`: `scope` with the `session_id`, `key_id`, its first and last call as
the period, `spend_usd`, the threshold as `limit_usd`; analytics/session_alerts.py) and
`session.limit_reached` (a proxy refused a session's call at `sessions.limit_usd`: `scope`
with the `session_id`, `key_id`, `spend_usd`, `limit_usd`, `action` `block`;
router/proxy_alerts.py), each with an id as deterministic, so replicas raising the same alert
deliver it once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_serializer

AlertType = Literal[
    "budget.threshold_reached",
    "budget.exceeded",
    "budget.forecast_breach",
    "spend.anomaly",
    "provider.circuit_opened",
    "guardrail.triggered",
    "session.expensive",
    "session.limit_reached",
    "webhook.test",
]


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1

    @field_serializer("*", when_used="json")
    def _exact(self, value: object) -> object:
        if isinstance(value, Decimal):
            return format(value, "f")
        return value

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class BudgetStatus(_Message):
    budget_id: str
    period_start: datetime
    period_end: datetime | None
    partition: int
    spend_usd: Decimal = Decimal(0)
    calls: int = 0
    counted_through_offset: int | None = None
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def key(self) -> str:
        return f"{self.budget_id}|{self.period_start.isoformat()}|{self.partition}"


class BudgetHold(_Message):
    instance_id: str
    budget_id: str
    period_start: datetime
    held_usd: Decimal = Decimal(0)
    sent_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def key(self) -> str:
        return f"{self.instance_id}|{self.budget_id}|{self.period_start.isoformat()}"


class SpendDriver(BaseModel):
    """A project or model behind a budget's spend."""

    name: str
    cost_usd: Decimal

    @field_serializer("cost_usd")
    def _exact(self, value: Decimal) -> str:
        return format(value, "f")


class BudgetAlert(_Message):
    alert_id: str
    type: AlertType
    budget_id: str = ""
    scope: dict[str, str] = Field(default_factory=dict)
    period: str = ""
    timezone: str = "UTC"
    period_start: datetime | None = None
    period_end: datetime | None = None
    threshold: float = 0.0
    spend_usd: Decimal = Decimal(0)
    limit_usd: Decimal = Decimal(0)
    percent: float = 0.0
    forecast_usd: Decimal | None = None
    action: str = ""
    top_projects: list[SpendDriver] = Field(default_factory=list)
    top_models: list[SpendDriver] = Field(default_factory=list)
    explorer_url: str | None = None
    fired_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # provider.circuit_opened
    provider: str = ""
    model: str = ""
    failures: int = 0
    error: str = ""
    # spend.anomaly
    baseline_usd: Decimal | None = None
    zscore: float | None = None
    # guardrail.triggered (also `action`, `model`, `scope`)
    guardrail: str = ""
    found: str = ""
    key_id: str = ""

    @staticmethod
    def make_id(budget_id: str, period_start: datetime, kind: str, threshold: float) -> str:
        return f"{budget_id}:{period_start.strftime('%Y%m%dT%H%M%S')}:{kind}:{threshold:g}"
