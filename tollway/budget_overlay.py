"""Budgets defined through the admin API, laid over the budgets of tollway.yaml.

Budgets come from two places, as keys do:
- the file's, which belong to the file: the API shows them but does not change them;
- the API's (`PUT` and `DELETE /v1/admin/budgets/{id}`, `tollway budgets set|delete`), one
  `BudgetRecord` per id on the compacted budgets topic, which every role of every replica
  follows (tollway/budget_sync.py).

`merged` gives the config the roles run with: the file's budgets, then the API's. Where both
name one id the API's record wins (and a warning says so), so a budget set through the API
keeps its limit whatever the file says later. An API budget that no longer fits the file (its
business line, model or downgrade target removed from it) is left out and logged rather than
failing the file's reload.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from tollway.config.schema import BudgetConfig, TollwayConfig

log = logging.getLogger(__name__)


class BudgetRecord(BaseModel):
    """One budget as the budgets topic holds it; `budget` None: deleted through the API."""

    model_config = ConfigDict(extra="forbid")

    id: str
    budget: BudgetConfig | None
    updated_at: datetime
    updated_by: str  # the id of the admin key that made the change


class BudgetOverlay:
    def __init__(self) -> None:
        self._records: dict[str, BudgetRecord] = {}

    def apply(self, record: BudgetRecord) -> None:
        self._records = {**self._records, record.id: record}

    def get(self, budget_id: str) -> BudgetRecord | None:
        return self._records.get(budget_id)

    def records(self) -> list[BudgetRecord]:
        """Every record, deletions included (what the snapshot keeps)."""
        return sorted(self._records.values(), key=lambda r: r.id)

    def merged(self, file_config: TollwayConfig) -> TollwayConfig:
        budgets = {b.id: b for b in file_config.budgets}
        for record in self._records.values():
            if record.budget is None:  # deleted: only the API's own budgets can be
                continue
            problems = issues(file_config, record.budget)
            if problems:
                log.error(
                    "budget %s (set through the API) no longer fits tollway.yaml and is not "
                    "enforced: %s",
                    record.id,
                    "; ".join(problems),
                )
                continue
            if record.id in _ids(file_config):
                log.warning(
                    "budget %s is in tollway.yaml and set through the API: the API's wins",
                    record.id,
                )
            budgets[record.id] = record.budget
        merged = list(budgets.values())
        if merged == file_config.budgets:
            return file_config
        return file_config.model_copy(update={"budgets": merged})


def issues(config: TollwayConfig, budget: BudgetConfig) -> list[str]:
    """What is wrong with `budget` against `config`'s models, routes and organisation."""
    alone = config.model_copy(update={"budgets": [budget]})
    return [message for at, message in alone.reference_issues() if at[:1] == ("budgets",)]


def _ids(config: TollwayConfig) -> set[str]:
    return {b.id for b in config.budgets}
