"""Budget alerts: a state machine per budget, period window and threshold.

The evaluator follows `tollway.budget-status.v1` (one partition, so exactly one worker of the
group evaluates), sums each budget window's per-partition spend, and fires an alert the first
time a threshold is crossed: `budget.threshold_reached` below 100 %, `budget.exceeded` at 100 %,
and `budget.forecast_breach` when the recent burn rate, projected to the window's end, would
cross the limit. A new window starts with no alerts fired: that is the reset.

Firing is once per alert id (budget, window, kind, threshold): the `budget_alerts` table is the
durable record of what fired, checked before firing, so restarts and lost changelogs do not
repeat an alert. The alert is produced before it is recorded; a crash in between can repeat it,
and the webhook dispatcher's idempotency on `webhook-id` (= alert id) absorbs that.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from pydantic import ValidationError

from analytics.store.base import Store, quote_identifier, sql_string
from ingest.budget_spend import scope_sql
from tollway.budget_events import BudgetAlert, BudgetStatus, SpendDriver
from tollway.config.schema import BudgetConfig, TollwayConfig

log = logging.getLogger(__name__)

ALERTS_FIRED = Counter("tollway_budget_alerts_fired_total", "Budget alerts fired", ["type"])

#: the burn rate is measured over this trailing span, once at least MIN_SPAN_S is observed
RATE_SPAN_S = 3600.0
MIN_SPAN_S = 300.0


class AlertEvaluator:
    def __init__(
        self,
        *,
        store: Store,
        config: Callable[[], TollwayConfig],
        alerts_topic: str,
        producer: AIOKafkaProducer,
        explorer_url: str | None = None,
        min_forecast_span_s: float = MIN_SPAN_S,
    ) -> None:
        self.store = store
        self.config = config
        self.alerts_topic = alerts_topic
        self.producer = producer
        self.explorer_url = explorer_url
        self.min_forecast_span_s = min_forecast_span_s
        #: (budget, window start) → partition → spend
        self._partials: dict[tuple[str, datetime], dict[int, Decimal]] = {}
        self._samples: dict[tuple[str, datetime], deque[tuple[float, Decimal]]] = {}
        self._fired: set[str] = set()

    async def on_status(self, raw: bytes | None) -> list[BudgetAlert]:
        """Take one status message; return the alerts it fired."""
        try:
            status = BudgetStatus.model_validate(orjson.loads(raw or b"null"))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("skipping an invalid budget status: %s", exc)
            return []
        budget = next((b for b in self.config().budgets if b.id == status.budget_id), None)
        if budget is None:
            return []
        window = (status.budget_id, status.period_start)
        partials = self._partials.setdefault(window, {})
        partials[status.partition] = status.spend_usd
        spend = sum(partials.values(), Decimal(0))
        samples = self._samples.setdefault(window, deque())
        now = time.monotonic()
        samples.append((now, spend))
        while samples and now - samples[0][0] > RATE_SPAN_S:
            samples.popleft()

        fired = []
        ratio = float(spend / budget.limit_usd)
        for threshold in sorted(budget.alerts):
            if ratio >= threshold:
                kind = "budget.exceeded" if threshold >= 1 else "budget.threshold_reached"
                alert = await self._fire(budget, status, spend, kind, threshold)
                if alert:
                    fired.append(alert)
        forecast = self._forecast(status, spend, samples)
        if forecast is not None and spend < budget.limit_usd <= forecast:
            alert = await self._fire(budget, status, spend, "budget.forecast_breach", 0.0, forecast)
            if alert:
                fired.append(alert)
        return fired

    def _forecast(
        self, status: BudgetStatus, spend: Decimal, samples: deque[tuple[float, Decimal]]
    ) -> Decimal | None:
        if status.period_end is None or len(samples) < 2:
            return None
        (t0, s0), (t1, s1) = samples[0], samples[-1]
        if t1 - t0 < self.min_forecast_span_s or s1 <= s0:
            return None
        rate = (s1 - s0) / Decimal(t1 - t0)  # USD per second, recently
        remaining = Decimal(max(0.0, (status.period_end - datetime.now(UTC)).total_seconds()))
        return spend + rate * remaining

    async def _fire(
        self,
        budget: BudgetConfig,
        status: BudgetStatus,
        spend: Decimal,
        kind: str,
        threshold: float,
        forecast: Decimal | None = None,
    ) -> BudgetAlert | None:
        alert_id = BudgetAlert.make_id(budget.id, status.period_start, kind, threshold)
        if alert_id in self._fired or await self._already_fired(alert_id):
            self._fired.add(alert_id)
            return None
        projects, models = await self._drivers(budget, status)
        alert = BudgetAlert(
            alert_id=alert_id,
            type=kind,  # type: ignore[arg-type]
            budget_id=budget.id,
            scope={k: str(v) for k, v in budget.scope.model_dump(exclude_none=True).items()},
            period=budget.period,
            timezone=budget.timezone,
            period_start=status.period_start,
            period_end=status.period_end,
            threshold=threshold,
            spend_usd=spend,
            limit_usd=budget.limit_usd,
            percent=round(float(spend / budget.limit_usd) * 100, 2),
            forecast_usd=forecast,
            action=budget.action,
            top_projects=projects,
            top_models=models,
            explorer_url=f"{self.explorer_url}/Budgets?budget={budget.id}"
            if self.explorer_url
            else None,
        )
        await self.producer.send_and_wait(self.alerts_topic, alert.encode(), key=alert_id.encode())
        await self._record(alert)
        self._fired.add(alert_id)
        ALERTS_FIRED.labels(kind).inc()
        log.info("budget alert %s: %s at %.1f%%", alert_id, kind, alert.percent)
        return alert

    async def _already_fired(self, alert_id: str) -> bool:
        db = quote_identifier(self.store.database)
        result = await self.store.query(
            f"SELECT count() AS n FROM {db}.budget_alerts WHERE alert_id = {sql_string(alert_id)}"
        )
        return int(result.rows[0]["n"]) > 0

    async def _record(self, alert: BudgetAlert) -> None:
        row: dict[str, Any] = {
            "alert_id": alert.alert_id,
            "budget_id": alert.budget_id,
            "period_start": _ch(alert.period_start),
            "period_end": _ch(alert.period_end) if alert.period_end else None,
            "threshold": alert.threshold,
            "kind": alert.type,
            "spend_usd": format(alert.spend_usd, "f"),
            "limit_usd": format(alert.limit_usd, "f"),
            "action": alert.action,
            "scope": alert.scope,
            "fired_at": _ch(alert.fired_at, millis=True),
        }
        await self.store.insert_rows("budget_alerts", [row])

    async def _drivers(
        self, budget: BudgetConfig, status: BudgetStatus
    ) -> tuple[list[SpendDriver], list[SpendDriver]]:
        """The top projects and models behind the spend, for a payload a human can act on."""
        db = quote_identifier(self.store.database)
        window = f"ts >= toDateTime64({sql_string(_ch(status.period_start))}, 3, 'UTC')"
        out = []
        for column in ("project", "model"):
            result = await self.store.query(
                f"SELECT {column} AS name, toString(sum(cost_usd)) AS cost FROM {db}.calls"
                f" WHERE {window} AND {scope_sql(budget.scope)}"
                f" GROUP BY name ORDER BY sum(cost_usd) DESC LIMIT 5"
            )
            out.append(
                [SpendDriver(name=r["name"], cost_usd=Decimal(r["cost"])) for r in result.rows]
            )
        return out[0], out[1]


def _ch(value: datetime | None, millis: bool = False) -> str:
    assert value is not None
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    return text + f".{value.microsecond // 1000:03d}" if millis else text
