"""`GET /v1/analytics/budgets`: every configured budget with its spend, ratio and forecast.

Viewers see the budgets scoped to their own business line only; finops and admin see all.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from analytics.access import config_of, summary_reader
from analytics.budget_status import budget_status
from analytics.endpoint import answer, iso, store_of
from analytics.params import check_known, parse_instant
from analytics.responses import render, usd
from tollway.auth import Principal
from tollway.budget_sync import BudgetSync
from tollway.config.schema import BudgetConfig

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

COLUMNS = [
    "id",
    "scope",
    "period",
    "timezone",
    "limit_usd",
    "spend_usd",
    "ratio",
    "period_start",
    "period_end",
    "forecast_usd",
    "action",
    "state",
    "source",
]


@router.get("/budgets", summary="Spend against each configured budget in its current period")
async def budgets(request: Request, principal: Principal = Depends(summary_reader)) -> Response:
    async def build() -> Response:
        params = request.query_params
        check_known(params, ["at"])
        at = params.get("at")
        now = parse_instant(at, "at") if at else datetime.now(UTC)
        items = []
        sync = getattr(request.app.state, "budget_sync", None)  # budgets set through the API
        for budget in config_of(request).budgets:
            if principal.role == "viewer" and (
                not principal.business_line or budget.scope.business_line != principal.business_line
            ):
                continue
            status = await budget_status(store_of(request), budget, now)
            items.append(
                {
                    **status,
                    "limit_usd": usd(status["limit_usd"]),
                    "spend_usd": usd(status["spend_usd"]),
                    "forecast_usd": usd(status["forecast_usd"]),
                    "period_start": iso(status["period_start"]),
                    "period_end": iso(status["period_end"]) if status["period_end"] else None,
                    "source": _source(sync, budget),
                }
            )
        return render(request, {"budgets": items}, "budgets", COLUMNS)

    return await answer(request, build)


def _source(sync: BudgetSync | None, budget: BudgetConfig) -> str:
    """ "api" for a budget in force because it was set through /v1/admin/budgets."""
    record = sync.overlay.get(budget.id) if sync is not None else None
    return "api" if record is not None and record.budget == budget else "file"
