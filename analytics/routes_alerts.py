"""`GET /v1/analytics/alerts`: the alerts raised, newest first (roles finops and admin).

Every alert the worker consumed (ingest/alert_log.py): budgets' thresholds, exceeded budgets
and forecast breaches, proxies' `provider.circuit_opened`, the analytics role's
`spend.anomaly`. Filters: `since` (ISO 8601; default the last 7 days), `type` (repeat for
several), `limit` rows (default 50, at most 1,000). Each entry has its one-sentence `summary`
and the alert's fields as `data`. JSON, or CSV and Arrow by `Accept`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from analytics.access import full_reader
from analytics.endpoint import answer, iso, run, store_of
from analytics.params import InvalidParameter, check_known, parse_instant, parse_int
from analytics.responses import render
from analytics.store.base import sql_string
from tollway.auth import Principal
from tollway.budget_events import AlertType

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

COLUMNS = ["alert_id", "type", "fired_at", "summary", "data"]
TYPES = frozenset(get_args(AlertType)) - {"webhook.test"}


@router.get("/alerts", summary="Alerts raised: budgets, circuits opened, spend anomalies")
async def alerts(request: Request, _: Principal = Depends(full_reader)) -> Response:
    async def build() -> Response:
        params = request.query_params
        check_known(params, ["since", "type", "limit"], filters=False)
        since = datetime.now(UTC) - timedelta(days=7)
        if text := params.get("since"):
            since = parse_instant(text, "since")
        types = params.getlist("type")
        unknown = sorted(set(types) - TYPES)
        if unknown:
            raise InvalidParameter(f"type: unknown {unknown} (known: {sorted(TYPES)})")
        moment = since.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        where = [f"fired_at >= toDateTime64({sql_string(moment)}, 3, 'UTC')"]
        if types:
            where.append(f"type IN ({', '.join(sql_string(t) for t in types)})")
        limit = parse_int(params, "limit", 50, 1, 1000)
        result = await run(
            store_of(request),
            f"SELECT {', '.join(COLUMNS)} FROM alerts FINAL WHERE {' AND '.join(where)}"
            f" ORDER BY fired_at DESC, alert_id LIMIT {limit}",
        )
        entries = [
            {**row, "fired_at": iso(row["fired_at"]), "data": orjson.loads(row["data"])}
            for row in result.rows
        ]
        return render(request, {"alerts": entries}, "alerts", COLUMNS)

    return await answer(request, build)
