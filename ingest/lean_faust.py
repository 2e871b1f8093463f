"""Faust with less per-message overhead: the worker's app, consumer, producer and monitor.

Faust's fetcher hands each fetched message to the conductor through
`Service.wait_first(callback(message), suspend_flow.wait())`: four asyncio tasks (the callback,
the suspend-flow wait and the service's stopped and crashed waits), an `asyncio.wait` and three
cancellations for every message — most of a worker's per-message time. Delivering a message
normally never waits (its stream's buffer has room, flow is not suspended), so `LeanConsumer`
runs the callback's first step inline and only falls back to `wait_first`, with the callback
resumed where it stopped, when it does wait. Ordering, flow control, rebalance suspension and
offset tracking are Faust's own; only the scheduling of the non-waiting case changes.

Faust's streams give the event loop a turn before every event; `YieldSometimes` makes that
every hundredth, as the consumer does.

`LeanMonitor` keeps what Faust itself reads of its Monitor (the time each partition last
reached a stream, for the slow-processing watchdog; end and committed offsets) and drops the
per-message statistics nothing here reads (counters, per-stream and per-task tallies, event
runtimes): the worker's metrics are its own Prometheus counters. `LeanProducer`'s buffer
answers the conductor's per-message "is the producer backed up?" without a settings lookup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Generator
from time import monotonic
from typing import Any, cast

import aiokafka
import faust
import faust._cython.streams as faust_c_streams  # type: ignore[import-not-found]
from faust.sensors.monitor import Monitor
from faust.serializers.schemas import (
    DecodeFunction,
    OnKeyDecodeErrorFun,
    OnValueDecodeErrorFun,
    _noop_decode_error,
)
from faust.transport.consumer import CONSUMER_FETCHING, RecordMap
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Producer, Transport
from faust.transport.producer import ProducerBuffer
from faust.types import TP, AppT, EventT, Message, StreamT, TransportT
from mode import Service, ServiceT

from ingest.faust_recovery import LosslessConsumer, SeekFirstTableManager, SnapshotConsumerThread
from tollway.eager import Resumed

#: what the conductor's callback returns for a message
_Delivery = Coroutine[Any, Any, None]


class LeanConsumerThread(SnapshotConsumerThread):
    """Faust's aiokafka consumer thread with a short fetch long-poll.

    The consumer has one fetch in flight per broker, covering every assigned partition that
    has no fetched records waiting. On a backlog the calls partitions always have records
    waiting, so the next fetch covers only the idle topics (budget status, feedback) — and
    the broker holds it for the whole `fetch_max_wait_ms`, which Faust fixes at 1.5 s, while
    the agent runs out of records. A short long-poll bounds that gap; an idle worker polls the
    broker a few times a second instead of once every 1.5 s."""

    fetch_max_wait_ms = 50

    def _create_worker_consumer(self, transport: Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms  # read by start(): not started yet
        return consumer


class LeanConsumer(LosslessConsumer):
    """Faust's aiokafka consumer, delivering messages without tasks when nothing waits, and
    fetching again as soon as a full stream buffer has drained."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffer_drained = asyncio.Event()

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return LeanConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def on_buffer_drop(self, tp: TP) -> None:
        super().on_buffer_drop(tp)
        self._buffer_drained.set()

    async def _wait_next_records(self, timeout: float) -> tuple[RecordMap | None, set[TP] | None]:
        # Faust's, but when every partition is paused because its stream's buffer is full, it
        # slept a whole second before looking again — on a backlog, a second lost each time
        # the agent fell behind. This waits for a buffer to drain instead (at most a second).
        if not self.flow_active:
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]
        try:
            self.not_waiting_next_records.set()
            if self.app.client_only:
                active_partitions: set[TP] | None = None
            else:
                active_partitions = self._get_active_partitions()
            records: RecordMap = {}
            if self.app.client_only or active_partitions:
                records = await self._getmany(active_partitions=active_partitions, timeout=timeout)
            else:
                self._buffer_drained.clear()
                await self.wait(self._buffer_drained, timeout=1.0)  # type: ignore[arg-type]
            return records, active_partitions
        finally:
            self.not_waiting_next_records.set()

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover
        # Faust's `Consumer._drain_messages` (faust-streaming 0.15), but for the delivery step.
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        suspend_flow = self.suspend_flow
        yield_every, num_since_yield = 100, 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                # Faust waits up to 1 s for records of the partitions it is fetching; while a
                # full stream buffer holds some back, the wait does not end when that buffer
                # drains, so it is kept short then.
                ait = getmany(timeout=0.01 if self._buffered_partitions else 1.0)
                await self.sleep(0)  # getmany may return at once, many times in a row
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            await self._deliver(cast(_Delivery, callback(message)), suspend_flow)
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev("DROPPED MESSAGE ROFF %r", offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    async def _deliver(self, delivery: _Delivery, suspend: asyncio.Event) -> None:
        """Run the conductor's callback; if it has to wait (a full stream buffer, suspended
        flow), wait as Faust does: until it is done, the flow is suspended (a rebalance) or
        the consumer stops — whichever comes first."""
        try:
            waiting_on = delivery.send(None)
        except StopIteration:
            return  # delivered without waiting: the usual case
        except BaseException:
            delivery.close()
            raise
        await self.wait_first(Resumed(delivery, waiting_on), suspend.wait())


class LeanMonitor(Monitor):
    """The Monitor minus the per-message statistics (see the module docstring)."""

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        self.tp_read_offsets[tp] = offset

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT, event: EventT
    ) -> dict[str, Any] | None:
        self.stream_inbound_time[tp] = monotonic()
        return None

    def on_stream_event_out(
        self,
        tp: TP,
        offset: int,
        stream: StreamT,
        event: EventT,
        state: dict[str, Any] | None = None,
    ) -> None:
        return None

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        return None


class LeanProducerBuffer(ProducerBuffer):
    """Faust's producer buffer, whose size — which the conductor checks before every message
    it delivers — is read straight off its queue; Faust's looks a setting up through its
    settings registry each time, to tell the threaded producer's queue apart."""

    @property
    def size(self) -> int:
        return self.pending.qsize()


class LeanProducer(Producer):
    """Faust's aiokafka producer with `LeanProducerBuffer` (the threaded producer, which the
    worker does not use, keeps Faust's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.app.conf.producer_threaded:  # not started yet: safe to replace
            self.buffer = LeanProducerBuffer(loop=self.loop, beacon=self.beacon)
            self.buffer.app = self.app


class RawSchema(faust.Schema):
    """Key and value as the bytes on the wire, which is what Faust's "raw" serializer gives
    too, but without its codec-registry lookups per message: the event is built at once."""

    def __init__(self) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")

    def compile(
        self,
        app: AppT,
        *,
        on_key_decode_error: OnKeyDecodeErrorFun = _noop_decode_error,
        on_value_decode_error: OnValueDecodeErrorFun = _noop_decode_error,
        default_propagate: bool = False,
    ) -> DecodeFunction:
        event_class = cast(Callable[..., EventT], app.conf.Event)

        async def decode(message: Message, *, propagate: bool = default_propagate) -> Any:
            return event_class(app, message.key, message.value, message.headers, message)

        return decode


class _Ready:
    """An awaitable that is done at once: awaiting it does not go through the event loop."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # a generator that returns at once


class YieldSometimes:
    """The `sleep` of Faust's Cython stream iterator, which awaits `sleep(0)` before every
    event: a whole event-loop iteration (an epoll call) per event and, while a stream's
    buffer is full, a switch to the waiting deliverer for every message. This yields before
    every `every`-th event instead — as Faust's consumer loop does between the messages it
    delivers. Nothing spins: a stream whose channel is empty still waits on it."""

    def __init__(self, every: int) -> None:
        self.every = every
        self._since_yield = 0

    def __call__(self, delay: float, result: Any = None) -> Awaitable[Any]:
        self._since_yield += 1
        if delay or result is not None or self._since_yield >= self.every:
            self._since_yield = 0
            return asyncio.sleep(delay, result)
        return _Ready()


class LeanApp(faust.App):
    """The worker's Faust app: `LeanConsumer`, `LeanProducer` and `LeanMonitor`, and the table
    recovery of `ingest.faust_recovery` (no message lost when the budget-spend table is
    restored)."""

    def __init__(self, id: str, **options: Any) -> None:
        options.setdefault("monitor", LeanMonitor())
        options.setdefault("TableManager", SeekFirstTableManager)
        super().__init__(id, **options)
        # the iterator's module-level `sleep` (a process-wide setting: every Faust stream in
        # a tollway process belongs to a LeanApp)
        if not isinstance(faust_c_streams.sleep, YieldSometimes):
            faust_c_streams.sleep = YieldSometimes(every=100)

    def _new_transport(self) -> TransportT:
        transport = super()._new_transport()
        transport.Consumer = LeanConsumer  # type: ignore[misc]
        transport.Producer = LeanProducer  # type: ignore[misc]
        return transport
