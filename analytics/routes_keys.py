"""`GET /v1/analytics/keys`: every virtual key with what it spent, for key hygiene (role admin).

Each key this server knows — tollway.yaml's and the keys topic's, which the analytics role
follows — with its attribution, role, state, limits, expiry and a rotation's grace (never a
hash), and from the hourly rollup over the last `days` (default 30, at most 366) its spend, its
calls and the last hour it was used. A key that spent in that time but is no longer known (it
was deleted from tollway.yaml) is listed too, with state `unknown`, so no spend goes unnamed.
JSON, or CSV and Arrow by `Accept`, as the other analytics endpoints.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from analytics.endpoint import answer, iso, run, store_of
from analytics.params import check_known, parse_int
from analytics.responses import render, usd
from tollway.audit import admin_only
from tollway.auth import KeyRegistry, Principal
from tollway.key_view import KeyView

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

COLUMNS = [
    "id", "name", "business_line", "project", "task_type", "role", "state", "expires_at",
    "previous_valid_until", "spend_usd", "calls", "last_active",
]  # fmt: skip


@router.get("/keys", summary="Every virtual key with its spend, calls and last use")
async def keys(request: Request, _: Principal = Depends(admin_only)) -> Response:
    async def build() -> Response:
        params = request.query_params
        check_known(params, ["days"], filters=False)
        days = parse_int(params, "days", 30, 1, 366)
        result = await run(
            store_of(request),
            "SELECT key_id, sum(cost_usd) AS spend, sum(calls) AS calls, max(hour) AS last_hour,"
            " any(business_line) AS business_line, any(project) AS project"
            f" FROM calls_hourly WHERE hour >= toStartOfHour(now() - INTERVAL {days} DAY)"
            " GROUP BY key_id",
        )
        usage = {row["key_id"]: row for row in result.rows}
        registry: KeyRegistry = request.app.state.keys
        listed = [_entry(KeyView.of(key).model_dump(mode="json"), usage.pop(key.id, None))
                  for key in registry.records()]  # fmt: skip
        listed += [_entry(_unknown(key_id, row), row) for key_id, row in sorted(usage.items())]
        listed.sort(key=lambda entry: (-float(entry["spend_usd"]), entry["id"]))
        return render(request, {"days": days, "keys": listed}, "keys", COLUMNS)

    return await answer(request, build)


def _entry(view: dict[str, Any], usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        **view,
        "spend_usd": usd(usage["spend"]) if usage else "0",
        "calls": int(usage["calls"]) if usage else 0,
        "last_active": iso(usage["last_hour"]) if usage else None,
    }


def _unknown(key_id: str, usage: dict[str, Any]) -> dict[str, Any]:
    """A key the ledger names but the registry no longer knows, where its calls were billed."""
    unset = {name: None for name in KeyView.model_fields}
    texts = dict.fromkeys(("name", "task_type", "environment", "role"), "")
    return (
        unset
        | texts
        | {
            "id": key_id,
            "business_line": usage["business_line"],
            "project": usage["project"],
            "tags": {},
            "allowed_models": [],
            "header_overrides": [],
            "state": "unknown",
        }
    )
