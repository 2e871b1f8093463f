"""Alerts a proxy raises itself, told to the webhooks that subscribe to them.

- `provider.circuit_opened`: a circuit breaker opened for a provider x model (router/breaker.py).
  Every replica keeps its own breakers, so several may open the same circuit within moments:
  the alert id names the provider, the model and the minute it opened, so the worker's webhook
  dispatcher (which skips an id it has already delivered to an endpoint) sends the replicas'
  alerts of one minute once. A probe that fails reopens the circuit without a new alert; one
  that succeeds closes it, and the next opening alerts again.
- `guardrail.triggered`: a guardrail matched a call's prompt (router/guardrails.py), whatever
  its action. The id names the guardrail, the key and the hour, so a key that keeps sending
  what a guardrail catches raises one alert an hour, not one a call; each process also skips
  an id it has already sent, so a burst costs no broker traffic.
- `session.limit_reached`: a call was refused because its session has cost `sessions.limit_usd`
  (router/session_spend.py). The id names the session, so its refusals on every replica raise
  one alert: the agent that was stopped, whoever has to look at why.

Alerts go on the alerts topic, where the worker logs and delivers them like a budget's. Best
effort, as the other records the proxies send (router/best_effort.py): an alert raised while
the broker is away is logged, not delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from datetime import UTC, datetime
from decimal import Decimal

from router.attribution import Attribution
from router.best_effort import BestEffortProducer
from router.breaker import Circuit
from router.guardrails import Finding
from router.session_spend import SessionBudgetExceeded
from tollway.budget_events import BudgetAlert

log = logging.getLogger(__name__)

#: alert ids this process remembers having sent (the oldest forgotten first)
REMEMBERED = 4096


class ProxyAlerts:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.sender = BestEffortProducer(bootstrap, "proxy alerts")
        self._sending: set[asyncio.Task[None]] = set()
        self._sent: OrderedDict[str, None] = OrderedDict()

    async def start(self) -> None:
        await self.sender.start()

    def circuit_opened(self, circuit: Circuit) -> None:
        """The breaker's `on_open`."""
        self.raise_alert(circuit_alert(circuit, datetime.now(UTC)))

    def guardrails_matched(self, findings: tuple[Finding, ...], who: Attribution) -> None:
        now = datetime.now(UTC)
        for finding in findings:
            self.raise_alert(guardrail_alert(finding, who, now))

    def session_limited(self, refusal: SessionBudgetExceeded, who: Attribution) -> None:
        self.raise_alert(session_limit_alert(refusal, who, datetime.now(UTC)))

    def raise_alert(self, alert: BudgetAlert) -> None:
        """Called on the event loop; sends in the background, once per id and process."""
        if alert.alert_id in self._sent:
            return
        self._sent[alert.alert_id] = None
        if len(self._sent) > REMEMBERED:
            self._sent.popitem(last=False)
        sent = self.sender.send(self.topic, alert.encode(), alert.alert_id.encode())
        task = asyncio.create_task(sent)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def stop(self) -> None:
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=5.0)
        await self.sender.stop()


def circuit_alert(circuit: Circuit, now: datetime) -> BudgetAlert:
    minute = now.strftime("%Y%m%dT%H%M")
    return BudgetAlert(
        alert_id=f"circuit:{circuit.provider}:{circuit.model}:{minute}",
        type="provider.circuit_opened",
        provider=circuit.provider,
        model=circuit.model,
        failures=circuit.failures,
        error=circuit.last_error,
        fired_at=now,
    )


def guardrail_alert(finding: Finding, who: Attribution, now: datetime) -> BudgetAlert:
    hour = now.strftime("%Y%m%dT%H")
    scope = {"business_line": who.business_line, "project": who.project}
    return BudgetAlert(
        alert_id=f"guardrail:{finding.guardrail}:{who.key_id}:{hour}",
        type="guardrail.triggered",
        guardrail=finding.guardrail,
        action=finding.action,
        found=finding.label,
        key_id=who.key_id,
        scope={name: value for name, value in scope.items() if value},
        model=finding.model,
        fired_at=now,
    )


def session_limit_alert(
    refusal: SessionBudgetExceeded, who: Attribution, now: datetime
) -> BudgetAlert:
    facts = refusal.details
    scope = {
        "business_line": who.business_line,
        "project": who.project,
        "task_type": who.task_type,
        "session_id": facts["session_id"],
    }
    return BudgetAlert(
        alert_id=f"session-limit:{facts['session_id']}",
        type="session.limit_reached",
        scope={name: value for name, value in scope.items() if value},
        period="session",
        spend_usd=Decimal(facts["spent_usd"]),
        limit_usd=Decimal(facts["limit_usd"]),
        action="block",
        key_id=who.key_id,
        fired_at=now,
    )
