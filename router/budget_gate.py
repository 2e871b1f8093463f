"""The budget gate: every proxy replica's view of budget spend, and the decision per call.

Spend arrives from the worker on the compacted `tollway.budget-status.v1` (one record per
budget, window and calls-topic partition; the gate sums the partitions). Between a call and
the moment the worker has counted it, the gate covers the gap itself:

- before forwarding, a call *reserves* its estimated cost on every budget that counts it;
- after it, the reservation is replaced by the actual cost, kept as *pending* for a grace
  period long enough for the worker to count it (briefly counted twice: conservative).

So with one replica no call is admitted once spent + reserved + pending reaches a blocking
budget's limit; with several, overshoot is bounded by what the others admitted within the
enforcement lag. Actions at 100 %: `block` refuses (HTTP 429, `type: budget_exceeded`),
`alert_only` serves and marks `warned`. `downgrade` acts from its `downgrade_at` share of the
limit: the call is served by the route's economy tier, or the budget's `downgrade_to`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from router.attribution import Attribution
from router.errors import BudgetExceeded
from router.follower import CompactedFollower
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


class BudgetGate:
    def __init__(
        self,
        config: Callable[[], TollwayConfig],
        bootstrap: str | None = None,
        status_topic: str | None = None,
        settle_grace_s: float = 5.0,
    ) -> None:
        self.config = config
        self.bootstrap = bootstrap
        self.status_topic = status_topic
        self.settle_grace_s = settle_grace_s
        self._spent: dict[Window, dict[int, Decimal]] = {}
        self._reserved: dict[Window, Decimal] = {}
        self._pending: dict[Window, list[tuple[float, Decimal]]] = {}
        self._follower: CompactedFollower | None = None

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
        attrs = {
            "business_line": who.business_line,
            "project": who.project,
            "task_type": who.task_type,
            "key_id": who.key_id,
            "user": who.user,
            "model": model,
        }
        counted: list[tuple[BudgetConfig, Window, datetime | None]] = []
        for budget in self.config().budgets:
            if not matches(budget.scope, attrs, who.tags):
                continue
            start, end = budget_window(budget, at)
            window = (budget.id, start)
            counted.append((budget, window, end))
            decision.budget_ids.append(budget.id)
            spent, held = self._spent_total(window), self._held(window)
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
        return decision

    def settle(self, decision: Decision, actual: Decimal) -> None:
        """Replace the reservation by the actual cost until the worker has counted it."""
        now = time.monotonic()
        for window, estimate in decision._holds:
            self._reserved[window] = self._reserved.get(window, Decimal(0)) - estimate
            if actual:
                self._pending.setdefault(window, []).append((now, actual))
        decision._holds.clear()

    def spent(self, budget_id: str, start: datetime) -> Decimal:
        return self._spent_total((budget_id, start))

    def _spent_total(self, window: Window) -> Decimal:
        return sum(self._spent.get(window, {}).values(), Decimal(0))

    def _held(self, window: Window) -> Decimal:
        pending = self._pending.get(window)
        if pending:
            horizon = time.monotonic() - self.settle_grace_s
            pending[:] = [(t, c) for t, c in pending if t >= horizon]
        return self._reserved.get(window, Decimal(0)) + sum(
            (c for _, c in pending or ()), Decimal(0)
        )

    # -- following the status topic -----------------------------------------------------
    def apply(self, status: BudgetStatus) -> None:
        window = (status.budget_id, status.period_start)
        self._spent.setdefault(window, {})[status.partition] = status.spend_usd

    async def start(self) -> None:
        """Read the status topic to its end (so a fresh replica starts informed), then follow."""
        if not self.bootstrap or not self.status_topic:
            return
        self._follower = CompactedFollower(self.bootstrap, self.status_topic, self._on_record)
        await self._follower.start()

    def _on_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            self.apply(BudgetStatus.model_validate(orjson.loads(record.value or b"null")))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("skipping an invalid budget status: %s", exc)

    async def stop(self) -> None:
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
