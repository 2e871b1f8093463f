"""`/v1/admin/budgets`: list budgets, and set or delete them without editing tollway.yaml
(role admin).

A budget set here is a record on the budgets topic, which every role of every replica follows
(tollway/budget_overlay.py has the rules): the replica that took the change applies it before
answering, the others within their poll interval. The proxies enforce it from then on, the
worker counts its spend from the start of its period (from the ledger, so a budget set
mid-month starts with the month's spend so far) and fires its alerts. Budgets declared in
tollway.yaml are listed but belong to the file: changing one here is a 409.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request, Response

from router.errors import Conflict, InvalidRequest, NotFound
from tollway.audit import admin_only, audit
from tollway.auth import Principal
from tollway.budget_overlay import BudgetRecord, issues
from tollway.budget_sync import BudgetSync
from tollway.config.schema import BudgetConfig, BudgetSpec, Name, TollwayConfig

router = APIRouter(prefix="/v1/admin/budgets", tags=["admin"])


class BudgetView(BudgetConfig):
    """A budget and where it comes from."""

    source: Literal["file", "api"]
    #: False for a budget set through the API that no longer fits tollway.yaml (its business
    #: line, model or downgrade target was removed from the file): kept, but not enforced
    enforced: bool = True
    updated_at: datetime | None = None  # set through the API: when, and by which admin key
    updated_by: str | None = None


def _sync(request: Request) -> BudgetSync:
    return request.app.state.budget_sync  # type: ignore[no-any-return]


def _views(config: TollwayConfig, sync: BudgetSync) -> dict[str, BudgetView]:
    views: dict[str, BudgetView] = {}
    for budget in config.budgets:
        record = sync.overlay.get(budget.id)
        if record is not None and record.budget == budget:
            views[budget.id] = _view(record, budget)
        else:
            views[budget.id] = BudgetView(**budget.model_dump(), source="file")
    for record in sync.overlay.records():
        if record.budget is not None and record.id not in views:
            views[record.id] = _view(record, record.budget).model_copy(update={"enforced": False})
    return views


def _view(record: BudgetRecord, budget: BudgetConfig) -> BudgetView:
    return BudgetView(
        **budget.model_dump(),
        source="api",
        updated_at=record.updated_at,
        updated_by=record.updated_by,
    )


def _file_owns(request: Request, sync: BudgetSync, budget_id: str) -> bool:
    config: TollwayConfig = request.app.state.config
    declared = any(b.id == budget_id for b in config.budgets)
    return declared and sync.overlay.get(budget_id) is None


@router.get("", summary="Every budget in force: the file's and those set through the API")
async def list_budgets(
    request: Request, _: Principal = Depends(admin_only), sync: BudgetSync = Depends(_sync)
) -> dict[str, list[BudgetView]]:
    return {"budgets": list(_views(request.app.state.config, sync).values())}


@router.get("/{budget_id}", summary="One budget")
async def get_budget(
    budget_id: str,
    request: Request,
    _: Principal = Depends(admin_only),
    sync: BudgetSync = Depends(_sync),
) -> BudgetView:
    view = _views(request.app.state.config, sync).get(budget_id)
    if view is None:
        raise NotFound(f"no budget with id {budget_id!r}")
    return view


@router.put("/{budget_id}", summary="Create or replace a budget")
async def put_budget(
    budget_id: Name,
    spec: BudgetSpec,
    request: Request,
    response: Response,
    admin: Principal = Depends(admin_only),
    sync: BudgetSync = Depends(_sync),
) -> BudgetView:
    if _file_owns(request, sync, budget_id):
        raise Conflict(f"budget {budget_id!r} is declared in tollway.yaml: change it there")
    budget = BudgetConfig(id=budget_id, **spec.model_dump())
    problems = issues(request.app.state.config, budget)
    if problems:
        raise InvalidRequest("; ".join(problems))
    existing = sync.overlay.get(budget_id)
    record = BudgetRecord(
        id=budget_id, budget=budget, updated_at=datetime.now(UTC), updated_by=admin.key_id
    )
    await sync.publish(record)
    before = existing.budget if existing is not None else None
    await audit(
        request,
        admin,
        "budget.set",
        budget_id,
        {
            "budget": budget.model_dump(mode="json"),
            "before": before.model_dump(mode="json") if before is not None else None,
        },
    )
    if before is None:
        response.status_code = 201
    return _view(record, budget)


@router.delete("/{budget_id}", summary="Delete a budget set through the API")
async def delete_budget(
    budget_id: str,
    request: Request,
    admin: Principal = Depends(admin_only),
    sync: BudgetSync = Depends(_sync),
) -> BudgetView:
    if _file_owns(request, sync, budget_id):
        raise Conflict(f"budget {budget_id!r} is declared in tollway.yaml: delete it there")
    existing = sync.overlay.get(budget_id)
    if existing is None or existing.budget is None:
        raise NotFound(f"no budget with id {budget_id!r}")
    deleted = BudgetRecord(
        id=budget_id, budget=None, updated_at=datetime.now(UTC), updated_by=admin.key_id
    )
    await sync.publish(deleted)
    await audit(
        request,
        admin,
        "budget.delete",
        budget_id,
        {"before": existing.budget.model_dump(mode="json")},
    )
    return _view(existing, existing.budget)
