"""`provider.circuit_opened`: a proxy's circuit breaker opened for a provider x model, told to
the webhooks that subscribe to it.

When a closed circuit opens (router/breaker.py), the proxy publishes an alert on the alerts
topic, which the worker's webhook dispatcher delivers like a budget's. Every replica keeps its
own breakers, so several may open the same circuit within moments: the alert id names the
provider, the model and the minute it opened, so the dispatcher (which skips an id it has
already delivered to an endpoint) sends the replicas' alerts of one minute once. A probe that
fails reopens the circuit without a new alert; one that succeeds closes it, and the next
opening alerts again. Best effort, as the other records the proxies send (router/best_effort.py):
an alert raised while the broker is away is logged, not delivered.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from router.best_effort import BestEffortProducer
from router.breaker import Circuit
from tollway.budget_events import BudgetAlert

log = logging.getLogger(__name__)


class CircuitAlerts:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.sender = BestEffortProducer(bootstrap, "circuit alerts")
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.sender.start()

    def opened(self, circuit: Circuit) -> None:
        """The breaker's `on_open`: called on the event loop, sends in the background."""
        alert = circuit_alert(circuit, datetime.now(UTC))
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
