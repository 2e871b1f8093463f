"""`GET /v1/analytics/routing/stats` and `/routing/recommendations` (roles finops, admin).

Both answer on the last `days` days up to `at` (default now), widened to whole UTC hours as the
explorer widens its ranges, so they read only the route rollups (and the scores); the window
they answered on is reported back as `start` and `end`. The proxy's published stats keep a
window exact to the millisecond (`analytics.routing_stats.RoutingStatsPublisher`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from analytics.access import config_of, full_reader
from analytics.endpoint import answer, iso, store_of
from analytics.params import check_known, parse_instant, parse_int
from analytics.recommendations import Thresholds, recommend
from analytics.responses import render
from analytics.routing_stats import routing_stats_between
from analytics.routing_windows import whole_hours
from tollway.auth import Principal

router = APIRouter(prefix="/v1/analytics/routing", tags=["analytics"])

STATS_COLUMNS = [
    "route",
    "task_type",
    "model",
    "calls",
    "success_rate",
    "p50_latency_ms",
    "p95_latency_ms",
    "p50_ttft_ms",
    "mean_cost_usd",
    "input_tokens",
    "output_tokens",
    "mean_score",
    "score_count",
]
RECOMMENDATION_COLUMNS = [
    "task_type",
    "current_model",
    "current_cost_usd",
    "calls",
    "candidate_model",
    "candidate_quality",
    "candidate_p95_ms",
    "projected_monthly_savings_usd",
    "yaml_snippet",
]


def _window(request: Request, days: int) -> tuple[datetime, datetime]:
    at = request.query_params.get("at")
    end = parse_instant(at, "at") if at else datetime.now(UTC)
    return whole_hours(end - timedelta(days=days), end)


@router.get("/stats", summary="Per route x task type x model performance over the last days")
async def stats(request: Request, principal: Principal = Depends(full_reader)) -> Response:
    async def build() -> Response:
        check_known(request.query_params, ["days", "at"])
        days = parse_int(request.query_params, "days", 7, 1, 366)
        start, end = _window(request, days)
        rows = await routing_stats_between(store_of(request), start, end)
        body = {
            "days": days,
            "start": iso(start),
            "end": iso(end),
            "stats": [{c: r[c] for c in STATS_COLUMNS} for r in rows],
        }
        return render(request, body, "stats", STATS_COLUMNS)

    return await answer(request, build)


@router.get("/recommendations", summary="Cheaper models with comparable quality, per task type")
async def recommendations(
    request: Request, principal: Principal = Depends(full_reader)
) -> Response:
    async def build() -> Response:
        params = request.query_params
        check_known(params, ["days", "at", "min_calls", "min_feedback"])
        days = parse_int(params, "days", 30, 1, 366)
        limits = Thresholds(
            min_calls=parse_int(params, "min_calls", 20, 1, 1_000_000),
            min_feedback=parse_int(params, "min_feedback", 10, 1, 1_000_000),
        )
        start, end = _window(request, days)
        rows = await routing_stats_between(
            store_of(request), start, end, keys=("task_type", "model")
        )
        found = recommend(rows, days, config_of(request), limits)
        return render(
            request,
            {"days": days, "start": iso(start), "end": iso(end), "recommendations": found},
            "recommendations",
            RECOMMENDATION_COLUMNS,
        )

    return await answer(request, build)
