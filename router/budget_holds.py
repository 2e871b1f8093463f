"""Proxy replicas share their budget holds, so a burst spread over several is gated as one.

A proxy's budget gate counts, against a limit, the spend the worker has counted (the status
topic) plus what it holds itself: reservations for its calls in flight and settled costs the
worker has not counted yet. Without this module a replica learns of another's calls only once
the worker has written and counted them — the sink's batch window plus a status round trip,
0.5 to 1 s in which every replica admits calls the others cannot see. Here each gateway process
(an *instance*, with a random id: each `--workers` process is one) publishes its held total per
budget window on the compacted `tollway.budget-holds.v1`, and counts the other instances'
latest records. The exposure a replica cannot see shrinks to one publish interval plus a
record's trip through the broker (tens of milliseconds).

`HoldsPublisher` coalesces: the gate only marks a window as changed (a set insert per call and
budget, at ~4,500 calls/s); one background task sends the changed windows' totals at most every
`interval_s` (50 ms) — a release because the worker's status counted costs goes at once, as the
peers have that status too and count those costs twice until they hear of it — re-sends every
non-zero total every `refresh_s` (the followers' TTL is counted from the last record), and sends
a zero record once a total drops to zero, then a tombstone of its key for compaction. It never slows or fails a
call: sends are not awaited for delivery, a broker outage only makes records late or lost (logged
once per outage), and nothing waits on it but its own task.

`PeerHolds` is the followers' side: the latest held total per other instance and window, and a
running sum per window, so `BudgetGate.admit` stays O(budgets). A record whose `sent_at` is older
than `ttl_s` (15 s) does not count, and a counted record stops counting `ttl_s` after it was
sent: a crashed or partitioned instance's last holds expire. 15 s is five refresh periods, so a
live instance never lapses through a lost or late record, and it leaves room for a few seconds
of clock skew between hosts (`sent_at` is the publisher's clock, the age the follower's); a
record from a clock running ahead counts as sent now. After the TTL a dead instance's holds are
dropped — its settled costs should be in the worker's status by then, its calls in flight died
with it.

Counting is conservative: between the worker counting a peer's call (in the status every replica
follows) and that peer releasing it and publishing its lower total, the call is counted twice —
for the difference between the two replicas' status deliveries plus one record's trip, tens of
milliseconds (both follow the status and holds topics with a 50 ms fetch wait: with the
consumer's default 500 ms, a record took 125 ms median, up to 250 ms, to reach a follower on
Tansu, against 7 ms median, 25 ms at most). An under-count needs this replica's status follower
to lag the peer's by more than that trip, or a record older than the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from router.best_effort import BestEffortProducer
from router.follower import CompactedFollower
from tollway.budget_events import BudgetHold

log = logging.getLogger(__name__)

Window = tuple[str, datetime]

#: a held total is published at most this often per window while it changes
PUBLISH_INTERVAL_S = 0.05
#: a non-zero total is re-sent this often, so followers can tell a live instance from a dead one
REFRESH_S = 3.0
#: a record older than this no longer counts (five refreshes; tolerates seconds of clock skew)
HOLD_TTL_S = 15.0


def new_instance_id() -> str:
    """A random id per gateway process: records of a previous run never pass for this one's."""
    return uuid4().hex[:16]


class PeerHolds:
    """The other instances' latest holds per window, summed; own and stale records ignored."""

    def __init__(
        self,
        instance_id: str,
        ttl_s: float = HOLD_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.instance_id = instance_id
        self.ttl_s = ttl_s
        self.clock = clock
        self.wall = wall
        #: per window: instance → (held, monotonic expiry)
        self._held: dict[Window, dict[str, tuple[Decimal, float]]] = {}
        self._sum: dict[Window, Decimal] = {}
        self._next_expiry: dict[Window, float] = {}

    def apply(self, hold: BudgetHold) -> None:
        """Take an instance's latest total for a window (a zero clears it)."""
        if hold.instance_id == self.instance_id:
            return  # our own total is counted exactly, from the gate's own books
        age = max(0.0, (self.wall() - hold.sent_at).total_seconds())
        window = (hold.budget_id, hold.period_start)
        peers = self._held.setdefault(window, {})
        previous = peers.pop(hold.instance_id, None)
        total = self._sum.get(window, Decimal(0))
        if previous is not None:
            total -= previous[0]
        if hold.held_usd > 0 and age < self.ttl_s:
            expires = self.clock() + self.ttl_s - age
            peers[hold.instance_id] = (hold.held_usd, expires)
            total += hold.held_usd
            self._next_expiry[window] = min(self._next_expiry.get(window, expires), expires)
        if peers:
            self._sum[window] = total
        else:
            self._forget(window)

    def total(self, window: Window) -> Decimal:
        """What the other instances hold on `window`, after dropping expired records (O(1)
        unless one is due)."""
        due = self._next_expiry.get(window)
        if due is not None and self.clock() >= due:
            self._expire(window)
        return self._sum.get(window, Decimal(0))

    def _expire(self, window: Window) -> None:
        now = self.clock()
        peers = {i: h for i, h in self._held.get(window, {}).items() if h[1] > now}
        if not peers:
            self._forget(window)
            return
        self._held[window] = peers
        self._sum[window] = sum((h[0] for h in peers.values()), Decimal(0))
        self._next_expiry[window] = min(h[1] for h in peers.values())

    def _forget(self, window: Window) -> None:
        self._held.pop(window, None)
        self._sum.pop(window, None)
        self._next_expiry.pop(window, None)

    def on_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value is None:  # a tombstone: nothing held
            return
        try:
            self.apply(BudgetHold.model_validate(orjson.loads(record.value)))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("skipping an invalid budget hold: %s", exc)


class HoldsPublisher:
    """This instance's held totals, sent per window at most every `interval_s` while they
    change, re-sent every `refresh_s` while non-zero, and once as zero when they drop to it."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        instance_id: str,
        held: Callable[[Window], Decimal],
        interval_s: float = PUBLISH_INTERVAL_S,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.instance_id = instance_id
        self.held = held  # the gate's own reserved + pending on a window
        self.interval_s = interval_s
        self.refresh_s = refresh_s
        self._dirty: set[Window] = set()
        self._sent: dict[Window, tuple[Decimal, float]] = {}  # non-zero totals: (held, when)
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()  # cuts the coalescing pause short
        self.sender = BestEffortProducer(bootstrap, "budget holds")
        self._task: asyncio.Task[None] | None = None

    def changed(self, window: Window, urgent: bool = False) -> None:
        """Called by the gate on every change: only marks the window (the task sends).
        `urgent`: a release because the worker's status counted the costs, which the peers
        have just received too — until they hear of it they count those costs twice (a few
        a second per window, so not worth coalescing)."""
        self._dirty.add(window)
        self._wake.set()
        if urgent:
            self._urgent.set()

    async def start(self) -> None:
        if await self.sender.start():  # without it the gate works: peers just do not see us
            self._task = asyncio.create_task(self._run(), name="tollway-budget-holds")

    async def _run(self) -> None:
        while True:
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.refresh_s)
                self._wake.clear()
                self._urgent.clear()
                await self.publish_due()
                with contextlib.suppress(TimeoutError):  # coalesce what changes meanwhile
                    await asyncio.wait_for(self._urgent.wait(), self.interval_s)
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive any surprise
                log.exception("publishing budget holds failed; going on")
                await asyncio.sleep(self.refresh_s)

    async def publish_due(self) -> None:
        """Send the changed windows' totals, and the refreshes that are due."""
        now = time.monotonic()
        due = self._dirty
        self._dirty = set()
        due |= {w for w, (_, at) in self._sent.items() if now - at >= self.refresh_s}
        for window in due:
            held = self.held(window)
            last = self._sent.get(window)
            if last is None and held == 0:
                continue  # nothing was published, nothing is held
            if last is not None and last[0] == held and now - last[1] < self.refresh_s:
                continue
            if held:
                self._sent[window] = (held, now)
            else:
                self._sent.pop(window, None)
            await self._send(BudgetHold(instance_id=self.instance_id, budget_id=window[0],
                                        period_start=window[1], held_usd=held))  # fmt: skip

    async def _send(self, hold: BudgetHold) -> None:
        """Send a total; a zero is followed by a tombstone of its key, so compaction removes
        it: instance ids are new in every process, and the zeros would pile up for ever."""
        key = hold.key.encode()
        await self.sender.send(self.topic, hold.encode(), key)
        if not hold.held_usd:  # the zero record clears the followers; the tombstone, the key
            await self.sender.send(self.topic, None, key)

    async def stop(self) -> None:
        """Stop sending. The last totals stand until the followers' TTL: what this instance
        held is still uncounted by the worker for a moment, so dropping it would under-count."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.sender.stop()


class HoldsExchange:
    """Both halves for one gate: publish this instance's totals, follow the others'.

    Given the gate's status `follower` (also a 50 ms fetch wait), the holds topic is followed
    on that consumer, which the gate starts and stops (router/follower.py); else on its own."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        peers: PeerHolds,
        held: Callable[[Window], Decimal],
        follower: CompactedFollower | None = None,
    ) -> None:
        self.peers = peers
        self.publisher = HoldsPublisher(bootstrap, topic, peers.instance_id, held)
        self._follower: CompactedFollower | None = None
        if follower is None:
            self._follower = CompactedFollower(
                bootstrap, topic, self.peers.on_record, poll_ms=50, fetch_max_wait_ms=50
            )
        else:
            follower.also(topic, self.peers.on_record)

    async def start(self) -> None:
        if self._follower is not None:
            await self._follower.start()
        await self.publisher.start()

    async def stop(self) -> None:
        await self.publisher.stop()
        if self._follower is not None:
            await self._follower.stop()
