"""Budget spend, counted exactly once, per budget, period window and source partition.

The ledger sink hands over the events it has just inserted into the ClickHouse ledger — only
those, so a redelivered event (already in the ledger) is never counted twice. Their cost goes
into a Faust table keyed `budget|window start|partition`, which survives worker restarts
through its changelog; each changed entry is published to the compacted
`tollway.budget-status.v1`, where the proxies and the alert evaluator sum the partitions.

The ledger is the durable record. An entry the table does not have — a new budget, a new
window, or a changelog lost with the embedded broker — is rebuilt from the ledger rows of
that partition and window (`source_partition` in `calls`), never added to. A periodic
reconciliation replaces every current entry by the ledger's answer, which also repairs the one
gap at-least-once delivery leaves: a crash after the ledger insert but before the table update.

A status counted from a batch says through which calls-topic offset of its partition it has
counted (`counted_through_offset`: the batch's highest; the sink handles a partition's messages
in order, so every earlier one is counted or was a redelivery). A proxy releases the cost it
holds for a call of its own once a status covers the call's offset. An entry rebuilt while
counting a batch is read from the ledger after that batch's insert, so it claims the same
offset; a reconciliation claims none — it knows the ledger, not which offsets that covers — and
the proxies keep the previous claim, which its spend includes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from analytics.budget_status import scope_conditions
from analytics.store.base import Store, quote_identifier, sql_string
from tollway.budget_events import BudgetStatus
from tollway.budgets import Windows, budget_window, matches
from tollway.config.schema import BudgetConfig, BudgetScope, TollwayConfig
from tollway.events import CallEvent

log = logging.getLogger(__name__)

REBUILT = Counter("tollway_budget_entries_rebuilt_total", "Spend entries rebuilt from the ledger")
CORRECTED = Counter(
    "tollway_budget_reconcile_corrections_total", "Entries the periodic reconciliation changed"
)


def scope_sql(scope: BudgetScope) -> str:
    """The WHERE conditions of a budget scope on the `calls` table: its `ok` calls."""
    return " AND ".join(["status = 'ok'", *scope_conditions(scope)])


def _ch_time(value: datetime) -> str:
    return (
        f"toDateTime64({sql_string(value.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S'))}, 3, 'UTC')"
    )


def _same(entry: dict[str, Any], truth: dict[str, Any]) -> bool:
    """Equal as amounts: a counted '0.500425000' and the ledger's '0.500425' are the same
    spend, and must not be logged (and counted) as a correction."""
    return Decimal(entry["spend"]) == Decimal(truth["spend"]) and int(entry["calls"]) == int(
        truth["calls"]
    )


def _attrs(event: CallEvent) -> dict[str, object]:
    return {
        "business_line": event.business_line,
        "project": event.project,
        "task_type": event.task_type,
        "key_id": event.key_id,
        "user": event.user,
        "model": event.model,
    }


class BudgetSpend:
    def __init__(
        self,
        app: faust.App,
        *,
        store: Store,
        config: Callable[[], TollwayConfig],
        status_topic: str,
        producer: AIOKafkaProducer,
        lock: asyncio.Lock,
        owned_partitions: Callable[[], set[int]],
        reconcile_every_s: float = 60.0,
    ) -> None:
        self.store = store
        self.config = config
        self.status_topic = status_topic
        self.producer = producer
        self.lock = lock  # the sink's: no batch is between insert and count while we rebuild
        self.owned_partitions = owned_partitions
        self.reconcile_every_s = reconcile_every_s
        self.table = app.Table("budget-spend", default=None, use_partitioner=True)
        self._task: asyncio.Task[None] | None = None

    # -- counting ------------------------------------------------------------------------
    async def count(
        self, inserted: Iterable[tuple[CallEvent, int]], through: Mapping[int, int] | None = None
    ) -> None:
        """Add the cost of freshly inserted ledger rows; call with the sink's lock held.
        `through`: the batch's highest offset per partition, published with the spend."""
        through = through or {}
        budgets = self.config().budgets
        if not budgets:
            return
        by_id = {b.id: b for b in budgets}
        deltas: dict[tuple[str, datetime, datetime | None, int], list[Decimal]] = {}
        windows = Windows()
        for event, partition in inserted:
            if event.status != "ok":
                continue
            attrs = _attrs(event)
            for budget in budgets:
                if matches(budget.scope, attrs, event.tags):
                    start, end = windows.of(budget, event.ts)
                    deltas.setdefault((budget.id, start, end, partition), []).append(event.cost_usd)
        changed = []
        for (budget_id, start, end, partition), costs in deltas.items():
            budget = by_id[budget_id]
            key = self._key(budget.id, start, partition)
            entry = self.table.get(key)
            if entry is None:  # unknown here: the ledger (which has these rows) knows
                entry = await self._from_ledger(budget, start, end, partition)
                REBUILT.inc()
            else:
                entry = {
                    "spend": str(Decimal(entry["spend"]) + sum(costs, Decimal(0))),
                    "calls": int(entry["calls"]) + len(costs),
                }
            self.table[key] = entry
            changed.append(
                self._status(budget, start, end, partition, entry, through.get(partition))
            )
        await self._publish(changed)

    # -- rebuilding and reconciling -----------------------------------------------------
    async def reconcile(self, *, only_missing: bool = False) -> int:
        """Set the current windows' entries of the owned partitions from the ledger."""
        now = datetime.now(UTC)
        statuses, corrections = [], 0
        async with self.lock:
            for budget in self.config().budgets:
                start, end = budget_window(budget, now)
                for partition in sorted(self.owned_partitions()):
                    key = self._key(budget.id, start, partition)
                    entry = self.table.get(key)
                    if entry is not None and only_missing:
                        statuses.append(self._status(budget, start, end, partition, entry))
                        continue
                    truth = await self._from_ledger(budget, start, end, partition)
                    if entry is None:
                        REBUILT.inc()
                    elif not _same(entry, truth):
                        corrections += 1
                        CORRECTED.inc()
                        log.warning("budget %s partition %d corrected: %s → %s",
                                    budget.id, partition, entry, truth)  # fmt: skip
                    self.table[key] = truth
                    statuses.append(self._status(budget, start, end, partition, truth))
        await self._publish(statuses)
        return corrections

    async def _from_ledger(
        self, budget: BudgetConfig, start: datetime, end: datetime | None, partition: int
    ) -> dict[str, Any]:
        window = f"ts >= {_ch_time(start)}" + (f" AND ts < {_ch_time(end)}" if end else "")
        result = await self.store.query(
            "SELECT toString(sum(cost_usd)) AS spend, count() AS calls"
            f" FROM {quote_identifier(self.store.database)}.calls"
            f" WHERE {window} AND source_partition = {int(partition)} AND {scope_sql(budget.scope)}"
        )
        row = result.rows[0]
        return {"spend": str(Decimal(row["spend"] or "0")), "calls": int(row["calls"])}

    # -- lifecycle ----------------------------------------------------------------------
    async def run(self, wait_assigned: Callable[[], Any]) -> None:
        """Rebuild what the changelog did not bring back, then reconcile on an interval."""
        await wait_assigned()
        await self.reconcile(only_missing=True)
        while True:
            await asyncio.sleep(self.reconcile_every_s)
            try:
                await self.reconcile()
            except Exception:  # a store hiccup must not stop the worker; the next round retries
                log.exception("budget reconciliation failed")

    def start(self, wait_assigned: Callable[[], Any]) -> None:
        self._task = asyncio.create_task(self.run(wait_assigned), name="tollway-budget-spend")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _key(budget_id: str, start: datetime, partition: int) -> str:
        return f"{budget_id}|{start.isoformat()}|{partition}"

    @staticmethod
    def _status(
        budget: BudgetConfig,
        start: datetime,
        end: datetime | None,
        partition: int,
        entry: dict[str, Any],
        counted_through: int | None = None,
    ) -> BudgetStatus:
        return BudgetStatus(
            budget_id=budget.id,
            period_start=start,
            period_end=end,
            partition=partition,
            spend_usd=Decimal(entry["spend"]),
            calls=int(entry["calls"]),
            counted_through_offset=counted_through,
        )

    async def _publish(self, statuses: list[BudgetStatus]) -> None:
        for status in statuses:
            await self.producer.send(self.status_topic, status.encode(), key=status.key.encode())
        if statuses:
            await self.producer.flush()
