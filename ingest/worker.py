"""The worker role: a faust-streaming app whose agents turn call events into the ledger.

`LedgerWorker` builds the Faust app for one broker and one set of topics, runs the ledger
sink agent, the budget-alerts evaluator, the sinks of the feedback and audit topics (and, when
tollway.yaml configures webhooks, the webhook dispatcher agent on the budget-alerts topic), and
knows how to `drain`: wait until everything on the calls topic up to
now is in the ledger — the step a graceful stop takes before the broker goes away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.contrib.asgi import faust_app_running

from analytics.ledger import Ledger
from analytics.store.base import Store, StoreError
from ingest.audit_sink import write_audit
from ingest.budget_alerts import AlertEvaluator
from ingest.budget_spend import BudgetSpend
from ingest.feedback_sink import write_feedback
from ingest.group_commit import GroupCommit
from ingest.lean_faust import LeanApp, RawSchema
from ingest.ledger_sink import DecodedBatch, KafkaMessage, LedgerSink
from ingest.webhooks.dispatcher import WebhookDispatcher, register_dispatcher
from ingest.webhooks.signing import WebhookSecretError
from tollway.config.schema import TollwayConfig
from tollway.kafka import end_offsets, new_producer
from tollway.settings import Settings
from tollway.topics import Topics

log = logging.getLogger(__name__)

#: writes one batch of a topic's messages to its table
RowWriter = Callable[[Store, Sequence[bytes | None]], Awaitable[int]]

#: a gathered batch: Faust's events (acknowledged after the write) and their decoded form
_Gathered = tuple[list[Any], DecodedBatch]


def faust_broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(","))


class LedgerWorker:
    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        ledger: Ledger,
        config: TollwayConfig | None = None,
    ) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.topics = Topics(settings.topic_namespace)
        self.group_id = f"{settings.topic_namespace}tollway-ledger"
        self.ledger = ledger
        # first, so a webhook whose secret variable is unset fails start-up before anything
        # opens; there even without webhooks, so a reload can add some
        self.config = config or TollwayConfig()
        self.dispatcher = WebhookDispatcher(self.config.webhooks, ledger.store)
        session = settings.kafka_session_timeout_s
        self.app = LeanApp(
            self.group_id,
            broker=faust_broker_url(bootstrap),
            store="memory://",
            web_enabled=False,
            datadir=str(settings.data_dir / "faust"),  # not the current directory
            autodiscover=False,
            topic_partitions=4,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            broker_session_timeout=session,
            broker_heartbeat_interval=max(session / 5, 0.3),
            broker_rebalance_timeout=max(session * 2, 10.0),
            broker_commit_interval=1.0,
        )
        self._producer = new_producer(bootstrap)
        self._lag_reader: AIOKafkaConsumer | None = None
        self._lag_lock = asyncio.Lock()  # concurrent probes would seek the one reader at once
        self.sink = LedgerSink(ledger=ledger, dead_letter=self._dead_letter)
        self.budgets = BudgetSpend(
            self.app,
            store=ledger.store,
            config=lambda: self.config,
            status_topic=self.topics.budget_status,
            producer=self._producer,
            lock=self.sink.lock,
            owned_partitions=self.owned_partitions,
            reconcile_every_s=settings.budget_reconcile_seconds,
        )
        self.sink.after_write = self.budgets.count
        calls = self.app.topic(self.topics.calls, schema=RawSchema())
        self.app.agent(calls, name="ledger-sink")(self._consume)
        self.alerts = AlertEvaluator(
            store=ledger.store,
            config=lambda: self.config,
            alerts_topic=self.topics.budget_alerts,
            producer=self._producer,
            explorer_url=settings.dashboard_url,
        )
        status = self.app.topic(
            self.topics.budget_status, value_serializer="raw", key_serializer="raw"
        )
        self.app.agent(status, name="budget-alerts")(self._evaluate_budgets)
        feedback = self.app.topic(
            self.topics.feedback, value_serializer="raw", key_serializer="raw"
        )
        self.app.agent(feedback, name="feedback-sink")(self._store_feedback)
        audit = self.app.topic(self.topics.audit, value_serializer="raw", key_serializer="raw")
        self.app.agent(audit, name="audit-sink")(self._store_audit)
        register_dispatcher(self.app, self.topics.budget_alerts, self.dispatcher)

    async def _store_feedback(self, stream: Any) -> None:
        await self._store(stream, write_feedback, "feedback")

    async def _store_audit(self, stream: Any) -> None:
        await self._store(stream, write_audit, "audit")

    async def _store(self, stream: Any, write: RowWriter, what: str) -> None:
        """Batches of a small topic into their table: wait out a store outage, as the ledger
        does, and acknowledge only after the write."""
        async for events in stream.noack_take(self.settings.sink_batch_size, within=1.0):
            delay = 0.2
            while True:
                try:
                    await write(self.ledger.store, [e.message.value for e in events])
                    break
                except StoreError as exc:
                    log.warning("%s write failed (%s); retrying in %.1fs", what, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
            for event in events:
                await stream.ack(event)

    async def _evaluate_budgets(self, stream: Any) -> None:
        async for value in stream:
            await self.alerts.on_status(value)

    async def reload(self, config: TollwayConfig) -> None:
        """Follow a changed tollway.yaml. New or changed budgets count the spend since their
        period start from the ledger at once, instead of at the next reconcile."""
        budgets_changed = config.budgets != self.config.budgets
        if config.webhooks != self.config.webhooks:
            try:
                self.dispatcher.replace_endpoints(config.webhooks)
            except WebhookSecretError as exc:
                log.error("the reloaded webhooks are not applied, the previous ones stay: %s", exc)
        self.config = config
        if budgets_changed and self.owned_partitions():
            await self.budgets.reconcile()

    def owned_partitions(self) -> set[int]:
        """The calls-topic partitions this worker is assigned right now."""
        return {
            tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.topics.calls
        }

    async def _consume(self, stream: Any) -> None:
        """Gather and decode the next batch while the store writes: the store works in its
        own thread (chDB and the ClickHouse client release the GIL), Faust's per-message work
        and the validation run on the loop, so the two overlap. Writes happen one at a time,
        in order; batches gathered during a write are written together next, up to
        `sink_max_batch` events (ingest/group_commit.py). A batch's messages are acknowledged
        only after the store accepted it."""
        batch_size, within = self.settings.sink_batch_size, self.settings.sink_batch_seconds
        writer: GroupCommit[_Gathered] = GroupCommit(
            lambda batches: self._write(stream, batches),
            size=lambda gathered: len(gathered[0]),
            max_events=max(self.settings.sink_max_batch, batch_size),
            linger_s=within,
        )
        try:
            async for events in stream.noack_take(batch_size, within=within):
                decoded = self.sink.decode([e.message for e in events])
                # a full batch means a backlog: the write may wait a moment to take more
                await writer.put((events, decoded), more_coming=len(events) >= batch_size)
            await writer.flush()
        finally:
            writer.cancel()  # what is unwritten is unacknowledged: Faust redelivers it

    async def _write(self, stream: Any, batches: Sequence[_Gathered]) -> None:
        await self.sink.write(DecodedBatch.joined([decoded for _, decoded in batches]))
        for events, _ in batches:  # only now may Faust commit these offsets
            for event in events:
                await stream.ack(event)

    async def _dead_letter(self, message: KafkaMessage, reason: str) -> None:
        value = message.value or b""
        await self._producer.send_and_wait(
            self.topics.calls_dlq,
            value,
            headers=[
                ("reason", reason.encode()[:1000]),
                ("source", f"{message.topic}/{message.partition}/{message.offset}".encode()),
            ],
        )
        await self.ledger.reject(value, reason, message.topic, message.partition, message.offset)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LedgerWorker]:
        await self._producer.start()
        try:
            async with faust_app_running(self.app, stop_timeout=30.0):
                self.budgets.start(self.wait_assigned)
                try:
                    yield self
                finally:
                    await self.dispatcher.close()  # before Faust stops, so its acks land
                    await self.budgets.stop()
        finally:
            await self.close_lag_reader()
            await self._producer.stop()

    async def wait_assigned(self, timeout_s: float = 60.0) -> None:
        """Until the consumer group has handed this worker its partitions."""
        deadline = time.monotonic() + timeout_s
        while not self.app.consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError("the worker got no partitions of the calls topic")
            await asyncio.sleep(0.05)

    async def _offset_reader(self) -> AIOKafkaConsumer:
        """A consumer that never subscribes (it joins no group, so asking it never triggers a
        rebalance of the real consumers): it reads the group's committed offsets and, assigned
        by hand, the topic's last batches."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, enable_auto_commit=False
        )
        await consumer.start()
        await consumer.topics()  # loads the cluster metadata partitions_for_topic reads
        return consumer

    async def _calls_end_offsets(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """The next offset of each calls-topic partition (`tollway.kafka.end_offsets`: right
        on Tansu too, or a drain would stop, and the lag read zero, with up to a whole batch
        per partition still missing from the ledger)."""
        partitions = consumer.partitions_for_topic(self.topics.calls) or set()
        return await end_offsets(
            consumer, [TopicPartition(self.topics.calls, p) for p in partitions]
        )

    async def _done_up_to(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
        """The offset below which a partition is in the ledger: what this process wrote, or
        what the group committed (another worker's, or a previous run's, progress)."""
        written = self.sink.written_offsets.get(tp.partition, -1) + 1
        return max(written, (await consumer.committed(tp)) or 0)

    async def lag(self) -> int:
        """Messages on the calls topic not yet in the ledger — what `/readyz` reports.

        The reader is kept between calls (a readiness probe every few seconds should not open a
        connection each time) and dropped on an error, so a broker restart heals on the next
        probe."""
        async with self._lag_lock:
            if self._lag_reader is None:
                self._lag_reader = await self._offset_reader()
            consumer = self._lag_reader
            try:
                await consumer.topics()  # partitions may have been added since the last probe
                ends = await self._calls_end_offsets(consumer)
                behind = 0
                for tp, end in ends.items():
                    behind += max(0, end - await self._done_up_to(consumer, tp))
                return behind
            except BaseException:  # also a probe's timeout: the reader may be mid-fetch
                self._lag_reader = None
                await consumer.stop()
                raise

    async def close_lag_reader(self) -> None:
        if self._lag_reader is not None:
            reader, self._lag_reader = self._lag_reader, None
            await reader.stop()

    async def drain(self, timeout_s: float = 60.0) -> bool:
        """Wait until every message now on the calls topic is in the ledger (or committed)."""
        consumer = await self._offset_reader()
        try:
            targets = await self._calls_end_offsets(consumer)
            deadline = time.monotonic() + timeout_s
            while True:
                behind = [
                    tp for tp, end in targets.items() if await self._done_up_to(consumer, tp) < end
                ]
                if not behind:
                    return True
                if time.monotonic() > deadline:
                    log.error(
                        "drain timed out; partitions behind: %s", [tp.partition for tp in behind]
                    )
                    return False
                await asyncio.sleep(0.1)
        finally:
            await consumer.stop()
