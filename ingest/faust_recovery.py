"""No message lost when a Faust worker recovers its tables: fixes to faust-streaming 0.15.

After a rebalance — on every worker start — Faust pauses every assigned partition, replays the
table changelogs (here, the budget-spend table) with its Fetcher already running, pauses the
changelog partitions again, and then (`Recovery.on_recovery_completed`) seeks the stream
partitions to their committed offsets and resumes them. Two races in that sequence skip stream
messages for good: the ledger never sees them, and as they are never acknowledged, the group's
committed offset stops at the first of them.

1. Faust hands aiokafka its *live* set of active partitions for each fetch, which the fetch
   reads in the consumer thread while it waits. Once the changelogs are paused that set is
   empty for a moment, and aiokafka reads an empty set as "every partition": it returns what it
   had prefetched from the (still paused) stream partitions, moves their positions on, and Faust
   throws the records away as not active. The seek that follows puts a partition back only if
   it has a committed offset — aiokafka skips one without — so a restarted worker whose
   predecessor died before its first commit starts each partition about a megabyte (one fetch)
   too far. `SnapshotConsumerThread` fetches with a copy of the set, and `LosslessConsumer`
   seeks a partition without a committed offset back to where `auto_offset_reset` starts it.
2. `on_recovery_completed` resumes the stream partitions *before* it awaits the seek. During
   that await the Fetcher puts stream messages on the agents' queues; `flow_control.resume()`
   after the seek clears those queues, while the Fetcher, still going through the batch it got
   before the seek, moves its read offset past them again, so their copies fetched after the
   seek are dropped as already read (https://github.com/faust-streaming/faust/issues/596).
   `SeekFirstRecovery` seeks while the stream partitions are still paused and then resumes
   them, the flow control and the consumer with no await in between.

3. Recovery replays a changelog up to its highwater, the end offset the broker reports.
   Tansu reports the base offset of the last record batch plus one, so a last batch of
   several records (two budgets' updates from one batch of calls) was restored without its
   last records. `SeekFirstRecovery` corrects the highwaters by reading each last batch.

The worker's app (`ingest.lean_faust.LeanApp`) uses them: its consumer derives from
`LosslessConsumer` and its `TableManager` is `SeekFirstTableManager`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

from tollway.kafka import end_offsets


class SnapshotConsumerThread(driver.AIOKafkaConsumerThread):
    async def getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        if active_partitions is not None:  # None: a client-only app, every partition
            active_partitions = set(active_partitions)  # what is active now, not later
            if not active_partitions:  # never "all" to aiokafka
                return {}
        return await super().getmany(active_partitions, timeout)


class LosslessConsumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return SnapshotConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        # aiokafka seeks only to a committed offset above 0: the others stay wherever records
        # fetched and dropped during recovery left them
        uncommitted = [
            tp for tp, offset in committed.items() if not offset and not self._is_changelog_tp(tp)
        ]
        if uncommitted and self.app.conf.consumer_auto_offset_reset == "earliest":
            await self._thread.seek_to_beginning(*uncommitted)
        return committed


class SeekFirstRecovery(Recovery):
    async def _build_highwaters(
        self, consumer: Any, tps: set[TP], destination: Counter[TP], title: str
    ) -> None:
        """Faust's highwaters (the last offset of each changelog partition, which recovery
        replays up to), corrected for Tansu: its ListOffsets reports the base offset of the
        last record batch plus one, so a changelog whose last batch held several records — a
        batch's spend counted for two budgets whose keys hash to one partition — was restored
        without the last of them (`tollway.kafka.end_offsets`)."""
        await super()._build_highwaters(consumer, tps, destination, title)
        known = [tp for tp in tps if destination.get(tp, -1) >= 0]
        if not known:
            return
        reader = AIOKafkaConsumer(bootstrap_servers=_bootstrap(self.app), enable_auto_commit=False)
        await reader.start()
        try:
            ends = await end_offsets(
                reader, [TopicPartition(tp.topic, tp.partition) for tp in known]
            )
        finally:
            await reader.stop()
        for tp in known:
            destination[tp] = max(destination[tp], ends[TopicPartition(tp.topic, tp.partition)] - 1)

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """`Recovery.on_recovery_completed` of faust-streaming 0.15.3, with the seek moved
        before `resume_partitions`."""
        app: Any = self.app
        consumer = app.consumer
        self.log.info("Restore complete!")
        await app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if callbacks:
            await asyncio.wait(callbacks)
        assignment = consumer.assignment()
        if app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again (generation %s)", generation_id)
            return
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
            if app.consumer_generation_id != generation_id:
                self.log.warning("Recovery rebalancing again (generation %s)", generation_id)
                return
        # from here to resume_flow nothing awaits: no message of a stream partition can be
        # fetched, queued and then cleared by flow_control.resume()
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        self.completed.set()
        app.flow_control.resume()
        consumer.resume_flow()
        await app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")


def _bootstrap(app: Any) -> str:
    """The app's brokers (`kafka://host:port` URLs) as aiokafka's bootstrap servers."""
    return ",".join(f"{url.host}:{url.port}" for url in app.conf.broker)


class SeekFirstTableManager(TableManager):
    """The table manager of the worker's Faust app (`TableManager=` setting): it recovers
    with `SeekFirstRecovery`."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
