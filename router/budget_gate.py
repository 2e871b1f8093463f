"""The budget gate: every proxy replica's view of budget spend, and the decision per call.

Spend arrives from the worker on the compacted `tollway.budget-status.v1` (one record per
budget, window and calls-topic partition; the gate sums the partitions). Between a call and
the moment the worker has counted it, the gate covers the gap itself:

- before forwarding, a call *reserves* its estimated cost on every budget that counts it;
- after it, the reservation is replaced by the actual cost, kept as *pending* until the
  worker's status includes it. The publisher tells the gate at which partition and offset
  Kafka took the call's event; each status says through which offset of its partition the
  worker has counted (`counted_through_offset`), so the pending cost is released as soon as a
  status for that budget, window and partition covers the offset — not held for a fixed
  time, which counted every call twice for the rest of that time and refused a burst at about
  half the limit. A call whose delivery is unknown (its event spooled during an outage, or
  not acknowledged yet) keeps the time-based grace (`settle_grace_s`); a delivered call no
  status covers (its event does not count for that budget after all, say a fallback model a
  model-scoped budget does not match, and no later call of the partition does) is released
  after `count_wait_s`. A cost is thus counted twice only where no status can vouch for it
  (briefly, after a reconciliation read from the ledger), and dropped before the worker has
  counted it only when the worker is behind by more than those periods.

Several replicas share what they hold (router/budget_holds.py): each gateway process publishes
its reserved + pending total per budget window on `tollway.budget-holds.v1` (coalesced, at most
every 50 ms, at once when a status released some), and counts the other instances' latest
totals. So the amount checked against a limit is spent + own reserved + own pending + the
peers' holds; with one replica no call is admitted once it reaches a blocking budget's limit,
with several the overshoot is bounded by what the others admitted within one publish interval
and a record's trip through the broker (tens of milliseconds) instead of the worker's batch
window plus a status round trip. A peer's cost is counted twice for the moment between the
worker's status (which every replica follows) and the peer's release of it — conservative
and brief; it is missed only for as long as this replica's status follower lags the peer's,
or once a peer's record is older than the TTL (a crashed peer).

Actions at 100 %: `block` refuses (HTTP 429, `type: budget_exceeded`), `alert_only` serves and
marks `warned`. `downgrade` acts from its `downgrade_at` share of the limit: the call is served
by the route's economy tier, or the budget's `downgrade_to`.

The gate runs on every call, so its bookkeeping is O(1) amortised per call: running totals per
window (its own and the peers'), a queue per window of calls waiting for their delivery (in
settle order, expired from the front), and one per window and partition of delivered calls (in
offset order, released from the front as statuses arrive).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from router.attribution import Attribution
from router.budget_holds import HoldsExchange, PeerHolds, new_instance_id
from router.errors import BudgetExceeded
from router.follower import CompactedFollower, OnRecord
from tollway.budget_events import BudgetStatus
from tollway.budgets import budget_window, matches
from tollway.config.schema import BudgetConfig, TollwayConfig

log = logging.getLogger(__name__)

Window = tuple[str, datetime]


@dataclass(frozen=True)
class Refusal:
    """Why a call was blocked: enough to reproduce the decision from the ledger."""

    budget_id: str
    period_start: datetime
    period_end: datetime | None
    limit_usd: Decimal
    spent_usd: Decimal
    reserved_usd: Decimal

    def error(self) -> BudgetExceeded:
        """The 429 for the blocked call: why, with the numbers that reproduce the decision."""
        end = period_end_text(self)
        headers = {"x-tollway-budget-id": self.budget_id, "x-tollway-budget-period-end": end}
        retry = seconds_until(self.period_end)
        if retry is not None:
            headers["retry-after"] = str(retry)
        return BudgetExceeded(
            f"budget {self.budget_id} is exhausted for the period ending {end}: "
            f"spent ${self.spent_usd:.6f} + reserved ${self.reserved_usd:.6f} "
            f"of ${_usd(self.limit_usd)}",
            headers=headers,
            details={
                "budget_id": self.budget_id,
                "period_start": self.period_start.isoformat(),
                "period_end": self.period_end.isoformat() if self.period_end else None,
                "limit_usd": format(self.limit_usd, "f"),
                "spent_usd": format(self.spent_usd, "f"),
                "reserved_usd": format(self.reserved_usd, "f"),
            },
        )


@dataclass
class Decision:
    action: str = "none"  # none | warned | downgraded | blocked
    budget_ids: list[str] = field(default_factory=list)
    downgrade_to: str | None = None
    downgrade_budget: str | None = None
    refusal: Refusal | None = None
    _holds: list[tuple[Window, Decimal]] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _Pending:
    """A settled call's cost on one budget window, until the worker's status includes it."""

    cost: Decimal
    since: float  # monotonic time of the settle
    offset: int = -1  # in the calls topic, once Kafka has acknowledged the event
    released: bool = False


class Delivery:
    """Published with a settled call's event: the publisher calls it with the partition and
    offset Kafka acknowledged the event at, which is when the gate can tell from the status
    topic whether the worker has counted the call."""

    __slots__ = ("_gate", "_held")

    def __init__(self, gate: BudgetGate, held: list[tuple[Window, _Pending]]) -> None:
        self._gate = gate
        self._held = held

    def __call__(self, partition: int, offset: int) -> None:
        self._gate._delivered(self._held, partition, offset)


class BudgetGate:
    def __init__(
        self,
        config: Callable[[], TollwayConfig],
        bootstrap: str | None = None,
        status_topic: str | None = None,
        settle_grace_s: float = 5.0,
        count_wait_s: float = 30.0,
        holds_topic: str | None = None,
        instance_id: str | None = None,
    ) -> None:
        self.config = config
        self.bootstrap = bootstrap
        self.status_topic = status_topic
        self.holds_topic = holds_topic
        self.instance_id = instance_id or new_instance_id()
        #: the other proxy instances' holds (budget_holds.py); empty without the holds topic
        self.peers = PeerHolds(self.instance_id)
        self._exchange: HoldsExchange | None = None
        self.settle_grace_s = settle_grace_s  # pending, delivery unknown
        self.count_wait_s = count_wait_s  # pending, delivered, not (yet) in a status
        self._spent: dict[Window, dict[int, Decimal]] = {}
        self._reserved: dict[Window, Decimal] = {}
        self._pending_usd: dict[Window, Decimal] = {}
        #: pending calls in settle order, until Kafka acknowledges them (or the grace ends)
        self._waiting: dict[Window, deque[_Pending]] = {}
        #: delivered pending calls per partition, in offset order, until a status covers them
        self._counting: dict[Window, dict[int, deque[_Pending]]] = {}
        #: per window and partition: the offset the last status counted through, and when
        #: it arrived (a status older than a call cannot have counted it: after the embedded
        #: broker restarts, offsets start again from 0 below a stale record's)
        self._counted: dict[tuple[Window, int], tuple[int, float]] = {}
        self._follower: CompactedFollower | None = None
        #: other shared admission state followed on the same consumer (rate-limit counts)
        self._also: list[tuple[str, OnRecord]] = []

    def follow_also(self, topic: str, on_record: OnRecord) -> None:
        """Follow `topic` too, on this gate's 50 ms consumer; only before `start`."""
        self._also.append((topic, on_record))

    # -- the decision --------------------------------------------------------------------
    def admit(
        self,
        who: Attribution,
        model: str,
        estimate: Decimal | Callable[[], Decimal],
        at: datetime,
    ) -> Decision:
        """Decide for one call and reserve its estimated cost on the budgets it may spend
        (`estimate` may be a function: it is then priced only when some budget counts the call)."""
        decision = Decision()
        attrs = who.scope_fields(model)
        counted: list[tuple[BudgetConfig, Window, datetime | None]] = []
        for budget in self.config().budgets:
            if not matches(budget.scope, attrs, who.tags):
                continue
            start, end = budget_window(budget, at)
            window = (budget.id, start)
            counted.append((budget, window, end))
            decision.budget_ids.append(budget.id)
            spent = self._spent_total(window)
            held = self._held(window) + self.peers.total(window)
            if budget.action == "downgrade":
                threshold = budget.limit_usd * Decimal(str(budget.downgrade_at))
                if spent + held >= threshold and decision.downgrade_budget is None:
                    decision.action = "downgraded"
                    decision.downgrade_to = budget.downgrade_to
                    decision.downgrade_budget = budget.id
                continue
            if spent + held < budget.limit_usd:
                continue
            if budget.action == "block":
                decision.action = "blocked"
                decision.refusal = Refusal(budget.id, start, end, budget.limit_usd, spent, held)
                return decision
            if decision.action == "none":
                decision.action = "warned"
        if not counted:
            return decision
        cost = estimate() if callable(estimate) else estimate
        for _, window, _ in counted:
            self._reserved[window] = self._reserved.get(window, Decimal(0)) + cost
            decision._holds.append((window, cost))
            self._changed(window)
        return decision

    def settle(self, decision: Decision, actual: Decimal) -> Delivery | None:
        """Replace the reservation by the actual cost, pending until the worker has counted
        it. Returns what to publish the call's event with (None when nothing is pending)."""
        held: list[tuple[Window, _Pending]] = []
        now = time.monotonic()
        for window, estimate in decision._holds:
            self._reserved[window] = self._reserved.get(window, Decimal(0)) - estimate
            self._changed(window)
            if actual:
                pending = _Pending(actual, now)
                self._pending_usd[window] = self._pending_usd.get(window, Decimal(0)) + actual
                self._waiting.setdefault(window, deque()).append(pending)
                held.append((window, pending))
        decision._holds.clear()
        return Delivery(self, held) if held else None

    def spent(self, budget_id: str, start: datetime) -> Decimal:
        return self._spent_total((budget_id, start))

    def _spent_total(self, window: Window) -> Decimal:
        return sum(self._spent.get(window, {}).values(), Decimal(0))

    def _held(self, window: Window) -> Decimal:
        """Reserved plus pending, after releasing what has waited too long: calls whose
        delivery is unknown after the grace, delivered calls no status covered in time."""
        now = time.monotonic()
        waiting = self._waiting.get(window)
        if waiting:
            horizon = now - self.settle_grace_s
            while waiting:
                first = waiting[0]
                if first.offset < 0 and not first.released:  # delivery still unknown
                    if first.since >= horizon:
                        break
                    self._release(window, first)
                waiting.popleft()  # delivered ones wait in `_counting` now
        counting = self._counting.get(window)
        if counting:
            horizon = now - self.count_wait_s
            for queue in counting.values():
                while queue and (queue[0].released or queue[0].since < horizon):
                    self._release(window, queue.popleft())
        return self._reserved.get(window, Decimal(0)) + self._pending_usd.get(window, Decimal(0))

    def _delivered(self, held: list[tuple[Window, _Pending]], partition: int, offset: int) -> None:
        """Kafka took a settled call's event at `offset`: from now on a status covering that
        offset releases its cost (at once, if one already has)."""
        for window, pending in held:
            if pending.released:
                continue
            pending.offset = offset
            counted = self._counted.get((window, partition))
            if counted is not None and counted[0] >= offset and counted[1] >= pending.since:
                self._release(window, pending)  # the peers have this status already
                if self._exchange is not None:
                    self._exchange.publisher.changed(window, urgent=True)
            else:
                queues = self._counting.setdefault(window, {})
                queues.setdefault(partition, deque()).append(pending)

    def _release(self, window: Window, pending: _Pending) -> None:
        if not pending.released:
            pending.released = True
            self._pending_usd[window] -= pending.cost
            self._changed(window)

    def _changed(self, window: Window) -> None:
        """This instance's hold on `window` moved: the peers hear of it within an interval."""
        if self._exchange is not None:
            self._exchange.publisher.changed(window)

    # -- following the status topic -----------------------------------------------------
    def apply(self, status: BudgetStatus) -> None:
        """Take a partition's spend; release the pending calls it has counted. A status that
        claims no offset (a reconciliation's) leaves the previous claim: its spend is read
        from the ledger later, so it includes what that claim covered."""
        window = (status.budget_id, status.period_start)
        self._spent.setdefault(window, {})[status.partition] = status.spend_usd
        through = status.counted_through_offset
        if through is None:
            return
        self._counted[(window, status.partition)] = (through, time.monotonic())
        queue = self._counting.get(window, {}).get(status.partition)
        released = False
        while queue and (queue[0].released or queue[0].offset <= through):
            self._release(window, queue.popleft())
            released = True
        if released and self._exchange is not None:
            self._exchange.publisher.changed(window, urgent=True)

    async def start(self) -> None:
        """Read the status topic (and the peers' holds) to its end, so a fresh replica starts
        informed, then follow; publish this instance's holds."""
        if not self.bootstrap:
            return
        if self.status_topic:
            # a short fetch wait: the replicas must learn of a status at about the same
            # moment, or one counts a peer's costs twice (or not at all) in between
            self._follower = CompactedFollower(
                self.bootstrap, self.status_topic, self._on_record, fetch_max_wait_ms=50
            )
        for topic, on_record in self._also:
            if self._follower is None:
                self._follower = CompactedFollower(
                    self.bootstrap, topic, on_record, fetch_max_wait_ms=50
                )
            else:
                self._follower.also(topic, on_record)
        if self.holds_topic:
            # the peers' holds on the status consumer: one fetch every 50 ms, not two
            self._exchange = HoldsExchange(
                self.bootstrap, self.holds_topic, self.peers, self._held, self._follower
            )
        if self._follower:
            await self._follower.start()
        if self._exchange:
            await self._exchange.start()

    def _on_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            self.apply(BudgetStatus.model_validate(orjson.loads(record.value or b"null")))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("skipping an invalid budget status: %s", exc)

    async def stop(self) -> None:
        if self._exchange:
            await self._exchange.stop()
        if self._follower:
            await self._follower.stop()


def period_end_text(refusal: Refusal) -> str:
    return refusal.period_end.isoformat() if refusal.period_end else "never (total budget)"


def seconds_until(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return max(1, int((moment - datetime.now(UTC)).total_seconds()))


def _usd(amount: Decimal) -> str:
    """Dollars for a message: cents for real budgets, micro-dollars for tiny ones."""
    return f"{amount:.2f}" if amount >= 1 else f"{amount:.6f}"
