"""`POST /v1/analytics/sql`: read-only SQL over the ledger for FinOps (roles finops, admin).

The statement runs with tollway's database as the current database (`FROM calls` works
unqualified), under ClickHouse `readonly=1`, a row limit that fails rather than truncates, and a
time limit; `analytics.sql_guard` first refuses multi-statements, non-SELECT statements, denied
functions and tables outside tollway's database. JSON is the default answer; `Accept: text/csv`
gets CSV with a header row. Decimals (costs) are exact strings, as in every store result.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from analytics.sql_guard import vet_readonly_sql
from analytics.store.base import QueryError, QueryResult, Store, StoreError
from tollway.auth import Principal, require_role

MAX_ROWS = 100_000
TIMEOUT_S = 30.0

router = APIRouter(tags=["analytics"])


class SqlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=100_000, description="One SELECT statement.")
    max_rows: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ROWS,
        description=f"Fail when the result has more rows (default and ceiling {MAX_ROWS}).",
    )


class SqlResponse(BaseModel):
    columns: list[str]
    types: list[str] = Field(description="ClickHouse type of each column.")
    data: list[dict[str, Any]] = Field(description="One object per row, keyed by column.")
    rows: int


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


def _error(status: int, kind: str, message: str) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetail(type=kind, message=message))
    return JSONResponse(status_code=status, content=body.model_dump())


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def to_csv(result: QueryResult) -> str:
    """CSV with a header row; Map/Array/Tuple cells as JSON text, NULL as an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([_csv_cell(row.get(column)) for column in result.columns])
    return buffer.getvalue()


def _wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "").lower()


@router.post(
    "/v1/analytics/sql",
    response_model=SqlResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "Rows as JSON, or CSV on request."},
        400: {"model": ErrorResponse, "description": "invalid_query: refused or failed SQL."},
        503: {"model": ErrorResponse, "description": "store_unavailable: retry later."},
    },
    summary="Run one read-only SQL statement against the ledger",
)
async def run_sql(
    body: SqlRequest,
    request: Request,
    principal: Principal = Depends(require_role("finops", "admin")),
) -> Any:
    store: Store = request.app.state.store
    try:
        statement = await vet_readonly_sql(store, body.query)
        result = await store.query(
            statement, readonly=True, max_rows=body.max_rows or MAX_ROWS, timeout_s=TIMEOUT_S
        )
    except QueryError as exc:
        return _error(400, "invalid_query", exc.message)
    except StoreError as exc:
        return _error(503, "store_unavailable", str(exc))
    if _wants_csv(request):
        return Response(content=to_csv(result), media_type="text/csv; charset=utf-8")
    return SqlResponse(
        columns=result.columns, types=result.types, data=result.rows, rows=len(result.rows)
    )


def _include_query_routes() -> None:
    """The explorer, budget and routing endpoints share this module's `router`, so mounting
    `analytics.api.router` mounts the whole analytics API."""
    from analytics import (
        routes_alerts,
        routes_audit,
        routes_budgets,
        routes_explorer,
        routes_keys,
        routes_routing,
        routes_sessions,
    )

    modules = (routes_explorer, routes_budgets, routes_routing, routes_alerts, routes_audit)
    for module in (*modules, routes_keys, routes_sessions):
        router.include_router(module.router)


_include_query_routes()
