"""Keep a process's budget overlay in step with the compacted `tollway.budgets.v1` topic.

Every role runs one — the proxy enforces budgets, the worker counts their spend and fires
their alerts, analytics reports them — so a budget set or deleted through any replica's admin
API reaches all of them within the consumer's poll interval; `on_change` re-applies the
merged config to the process's roles, as a tollway.yaml reload does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from tollway.budget_overlay import BudgetOverlay, BudgetRecord
from tollway.record_sync import RecordSync


class BudgetSync(RecordSync[BudgetRecord]):
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        overlay: BudgetOverlay,
        on_change: Callable[[], Awaitable[None]],
        snapshot: Path | None = None,
    ) -> None:
        super().__init__(
            bootstrap,
            topic,
            BudgetRecord,
            key_of=lambda record: record.id,
            apply=overlay.apply,
            held=overlay.records,
            snapshot=snapshot,
            on_change=on_change,
        )
        self.overlay = overlay
