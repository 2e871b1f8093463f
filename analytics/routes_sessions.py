"""`GET /v1/analytics/sessions`: what each session cost — the calls that named the same
`x-tollway-session-id`, summed (roles finops and admin).

Over a time range (default the last 7 days) and the explorer's filters: a `summary` (sessions,
their cost, and the median, 90th-percentile and largest session's cost and the median session's
calls), then the `limit` costliest sessions (default 50, at most 1,000), each with its calls,
cost, tokens, failed calls, first and last call, duration, the models that answered and its
attribution. A session's calls filter by `session_id=…` in `/calls` and `/cost` too. JSON, or
the sessions as CSV and Arrow by `Accept`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from analytics.access import full_reader, restrict_filters
from analytics.endpoint import answer, iso, number, run, store_of
from analytics.params import Selection, check_known, parse_filters, parse_int, parse_range
from analytics.responses import render, usd
from analytics.sessions import sessions_sql, sessions_summary_sql
from tollway.auth import Principal

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

COLUMNS = [
    "session_id", "calls", "cost_usd", "input_tokens", "output_tokens", "errors", "limited",
    "first_ts",
    "last_ts", "duration_s", "models", "business_line", "project", "task_type", "key_id",
]  # fmt: skip


@router.get("/sessions", summary="What each session (an agent's run, a conversation) cost")
async def sessions(request: Request, principal: Principal = Depends(full_reader)) -> Response:
    async def build() -> Response:
        params = request.query_params
        check_known(params, ["start", "end", "limit"])
        limit = parse_int(params, "limit", 50, 1, 1000)
        start, end = parse_range(params, default=timedelta(days=7))
        selection = Selection(start, end, restrict_filters(principal, parse_filters(params)))
        store = store_of(request)
        summary = (await run(store, sessions_summary_sql(selection))).rows[0]
        rows = (await run(store, sessions_sql(selection, limit))).rows
        body = {
            "start": iso(start),
            "end": iso(end),
            "summary": _summary(summary),
            "sessions": [_session(row) for row in rows],
        }
        return render(request, body, "sessions", COLUMNS)

    return await answer(request, build)


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    count = int(row["sessions"] or 0)
    money = ("cost_usd", "median_cost_usd", "p90_cost_usd", "max_cost_usd")
    return {
        "sessions": count,
        "calls": int(row["calls"] or 0),
        **{name: usd(row[name] if count else 0) for name in money},
        "median_calls": number(row["median_calls"]) if count else 0,
    }


def _session(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "cost_usd": usd(row["cost_usd"]),
        "first_ts": iso(row["first_ts"]),
        "last_ts": iso(row["last_ts"]),
        "duration_s": number(row["duration_s"]),
    }
