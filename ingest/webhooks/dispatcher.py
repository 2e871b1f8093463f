"""Budget alerts to the webhooks subscribed to their type, once per endpoint and `webhook-id`.

`WebhookDispatcher.dispatch(alert)` delivers one alert to every subscribed endpoint in
parallel. The alert's `alert_id` is the Standard Webhooks `webhook-id`, and it is deterministic
(budget, period, kind, threshold), so idempotency is a lookup: an endpoint whose
`webhook_deliveries` already hold a `delivered` row for that id is skipped. That makes a
redelivered Kafka message (a crash before the offset commit, a rebalance, the embedded broker's
replay) harmless. Two copies of one alert arriving while the first is still being retried share
the first one's delivery instead of racing it. Endpoints are identified by URL in that lookup
(the table has no endpoint-id column): two webhooks with the same URL count as one receiver.

`register_dispatcher` adds the Faust agent that feeds it from `tollway.budget-alerts.v1`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import faust
from pydantic import ValidationError

from analytics.store.base import QueryError, Store, StoreError, sql_string
from ingest.alert_log import write_alerts
from ingest.webhooks.delivery import TABLE, Deliverer, DeliveryResult, Endpoint, RetryPolicy
from ingest.webhooks.payload import envelope
from tollway.budget_events import BudgetAlert
from tollway.config.schema import WebhookConfig

log = logging.getLogger(__name__)

Ack = Callable[[], Awaitable[Any]]


class UnknownWebhook(LookupError):
    """No configured webhook has this id."""


class WebhookDispatcher:
    """Owns the endpoints (secrets loaded at construction) and the `Deliverer`.

    Construction fails with `WebhookSecretError` when a webhook's secret variable is unset, so a
    misconfigured worker refuses to start instead of sending unsigned or never-sent alerts.
    `replace_endpoints` follows a reloaded tollway.yaml the same way: all or nothing.
    """

    def __init__(
        self,
        webhooks: Sequence[WebhookConfig],
        store: Store,
        *,
        retry: RetryPolicy | None = None,
        environ: Mapping[str, str] | None = None,
        deliverer: Deliverer | None = None,
        max_in_flight: int = 64,
        close_grace_s: float = 5.0,
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.endpoints: dict[str, Endpoint] = self._endpoints(webhooks)
        self.store = store
        self.deliverer = deliverer or Deliverer(store, retry)
        self.close_grace_s = close_grace_s
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[tuple[str, str], asyncio.Task[DeliveryResult]] = {}
        self._closed = False

    def _endpoints(self, webhooks: Sequence[WebhookConfig]) -> dict[str, Endpoint]:
        endpoints = [Endpoint.from_config(hook, self.environ) for hook in webhooks]
        return {e.id: e for e in endpoints}

    def replace_endpoints(self, webhooks: Sequence[WebhookConfig]) -> None:
        """The webhooks of a reloaded tollway.yaml, for the alerts dispatched from now on: a new
        endpoint gets them, a removed one does not (deliveries already being retried finish),
        a changed one (URL, secret, events, limits) gets them as it now is. Raises
        `WebhookSecretError`, changing nothing, when a secret variable is unset."""
        self.endpoints = self._endpoints(webhooks)

    def subscribers(self, event_type: str) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if event_type in e.events]

    async def dispatch(self, alert: BudgetAlert) -> list[DeliveryResult]:
        """Deliver to every subscribed endpoint at once; one slow endpoint delays no other."""
        endpoints = self.subscribers(alert.type)
        if not endpoints:
            return []
        body = envelope(alert)
        return list(await asyncio.gather(*(self._deliver_once(e, alert, body) for e in endpoints)))

    async def _deliver_once(
        self, endpoint: Endpoint, alert: BudgetAlert, body: bytes
    ) -> DeliveryResult:
        key = (endpoint.id, alert.alert_id)
        running = self._running.get(key)
        if running is not None:  # a second copy of an alert still being retried
            return await asyncio.shield(running)
        task = asyncio.ensure_future(self._deliver_unless_done(endpoint, alert, body))
        self._running[key] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._running.pop(key, None)
            else:  # our caller was cancelled: let the delivery finish, then forget it
                task.add_done_callback(lambda _: self._running.pop(key, None))

    async def _deliver_unless_done(
        self, endpoint: Endpoint, alert: BudgetAlert, body: bytes
    ) -> DeliveryResult:
        if await self.already_delivered(endpoint, alert.alert_id):
            log.info("webhook %s: %s was already delivered; skipped", endpoint.id, alert.alert_id)
            return DeliveryResult(
                endpoint.id, endpoint.public_url, alert.alert_id, alert.type, "skipped", 0
            )
        return await self.deliverer.deliver(endpoint, alert.alert_id, alert.type, body)

    async def already_delivered(self, endpoint: Endpoint, webhook_id: str) -> bool:
        """True when `webhook_deliveries` holds a success for this id and endpoint.

        If the store cannot answer, the alert is sent anyway: a duplicate (which receivers drop
        by `webhook-id`) is better than a lost alert.
        """
        try:
            result = await self.store.query(
                f"SELECT count() AS n FROM {TABLE}"
                f" WHERE webhook_id = {sql_string(webhook_id)}"
                f" AND url = {sql_string(endpoint.public_url)} AND outcome = 'delivered'"
            )
        except (StoreError, QueryError) as exc:
            log.warning("webhook %s: idempotency check failed (%s); sending", endpoint.id, exc)
            return False
        return bool(result.rows) and int(result.rows[0]["n"]) > 0

    async def send_test(self, endpoint_id: str, *, attempts: int = 1) -> DeliveryResult:
        """A signed `webhook.test` alert through the same Deliverer, recorded like any other.

        One attempt by default, so whoever runs `tollway webhooks test` gets an answer now
        rather than after the whole backoff schedule.
        """
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise UnknownWebhook(endpoint_id)
        now = datetime.now(UTC)
        alert = BudgetAlert(
            alert_id=f"test:{endpoint_id}:{uuid4().hex}",
            type="webhook.test",
            budget_id="webhook-test",
            fired_at=now,
        )
        return await self.deliverer.deliver(
            endpoint,
            alert.alert_id,
            alert.type,
            envelope(alert),
            max_attempts=min(max(attempts, 1), endpoint.max_attempts),
        )

    async def submit(self, alert: BudgetAlert, ack: Ack) -> None:
        """Dispatch in the background and `ack` when every endpoint's sequence has ended.

        Waits only for a free in-flight slot (backpressure when `max_in_flight` alerts are
        being retried). An alert still in flight at `close` is not acknowledged, so Kafka
        redelivers it after a restart and the idempotency check skips what already arrived.
        """
        if self._closed:
            return
        await self._slots.acquire()
        task = asyncio.create_task(self._run(alert, ack), name=f"webhooks:{alert.alert_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, alert: BudgetAlert, ack: Ack) -> None:
        try:
            await self.dispatch(alert)
        except asyncio.CancelledError:
            raise  # shutting down: leave it unacknowledged
        except Exception:
            # A bug, not an HTTP failure (those end as `dead` records). Acknowledge anyway:
            # an offset never acked would hold back every later commit of the partition.
            log.exception("dispatching alert %s failed", alert.alert_id)
        finally:
            self._slots.release()
        await ack()

    async def close(self) -> None:
        """Let in-flight deliveries finish for `close_grace_s`, cancel the rest, close HTTP."""
        self._closed = True
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.close_grace_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("webhooks: %d alert(s) still in flight at stop; replayed on restart",
                            len(pending))  # fmt: skip
                await asyncio.gather(*pending, return_exceptions=True)
        await self.deliverer.close()


def decode_alert(value: bytes | None) -> BudgetAlert:
    """A BudgetAlert from a topic message; raises ValueError for anything else."""
    if not value:
        raise ValueError("empty message")
    try:
        return BudgetAlert.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "message"
        raise ValueError(f"{where}: {first.get('msg', 'invalid')}") from None


def register_dispatcher(
    worker_app: faust.App,
    topic_name: str,
    dispatcher: WebhookDispatcher,
    *,
    batch_size: int = 100,
    within_s: float = 0.1,
) -> None:
    """Add the `webhook-dispatcher` agent, consuming `topic_name` (raw values) on `worker_app`.

    Acknowledgement: an alert is acked after its delivery sequence has ended — delivered to,
    skipped by, or dead-lettered for every subscribed endpoint — not when it is handed over.
    The sequence runs in a background task (`WebhookDispatcher.submit`), so the agent keeps
    reading while one endpoint is being retried, and Faust commits an offset only once every
    earlier offset of the partition is acked (it commits the contiguous acked prefix), so acks
    arriving out of order never skip an alert. The price of at-least-once across crashes: a
    consumer-group rebalance waits for in-flight sequences (Faust's `stream_wait_empty`), which
    is bounded by the endpoints' retry budget. Acking at hand-over would avoid that but lose an
    alert whose retries were cut short by a crash, since nothing would replay it.

    Messages that are not BudgetAlerts are logged and acked (skipped): they can never succeed.
    """
    topic = worker_app.topic(topic_name, value_serializer="raw", key_serializer="raw")

    async def dispatch_alerts(stream: Any) -> None:
        async for events in stream.noack_take(batch_size, within=within_s):
            decoded = []
            for event in events:
                message = event.message
                try:
                    decoded.append((event, decode_alert(message.value)))
                except ValueError as exc:
                    log.warning(
                        "skipping a message that is not a BudgetAlert at %s[%d]@%d: %s",
                        message.topic, message.partition, message.offset, exc,
                    )  # fmt: skip
                    await stream.ack(event)
            await _logged(dispatcher.store, [alert for _, alert in decoded])
            for event, alert in decoded:
                await dispatcher.submit(alert, _acker(stream, event))

    worker_app.agent(topic, name="webhook-dispatcher")(dispatch_alerts)


async def _logged(store: Store, alerts: list[BudgetAlert]) -> None:
    """Into the `alerts` table (ingest/alert_log.py); a store away for now loses the rows, not
    the deliveries, which go on."""
    if not alerts:
        return
    try:
        await write_alerts(store, alerts)
    except (StoreError, QueryError) as exc:
        log.warning("%d alert(s) not written to the alerts table: %s", len(alerts), exc)


def _acker(stream: Any, event: Any) -> Ack:
    async def ack() -> None:
        await stream.ack(event)

    return ack
