"""The cost explorer endpoints: breakdowns, time series, spend anomalies and the call list.

`GET /v1/analytics/cost`, `/timeseries` and `/anomalies` are summaries (viewer, finops, admin;
a viewer sees its own business line only); `/calls` lists single calls (finops, admin).
Answers come from the rollups whenever they can answer exactly (see `analytics.queries`).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from analytics import queries
from analytics.access import full_reader, restrict_filters, summary_reader
from analytics.anomalies import STEPS, scan_spikes
from analytics.endpoint import answer, iso, number, run, store_of
from analytics.params import (
    GRANULARITIES,
    Selection,
    check_known,
    parse_choice,
    parse_dimensions,
    parse_filters,
    parse_float,
    parse_int,
    parse_range,
)
from analytics.responses import render, usd
from tollway.auth import Principal

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

METRICS = ("cost_usd", "calls", "input_tokens", "output_tokens", "errors")
_RANGE = ("start", "end")


def _metrics(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "cost_usd": usd(row.get("cost_usd")),
        "calls": int(row.get("calls") or 0),
        "input_tokens": int(row.get("input_tokens") or 0),
        "output_tokens": int(row.get("output_tokens") or 0),
        "errors": int(row.get("errors") or 0),
    }


def _add(total: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    merged = {k: total[k] + row[k] for k in METRICS if k != "cost_usd"}
    merged["cost_usd"] = usd(Decimal(total["cost_usd"]) + Decimal(row["cost_usd"]))
    return {"cost_usd": merged.pop("cost_usd"), **merged}


_ZERO = {"cost_usd": "0", "calls": 0, "input_tokens": 0, "output_tokens": 0, "errors": 0}


def _selection(request: Request, principal: Principal, default: timedelta) -> Selection:
    start, end = parse_range(request.query_params, default=default)
    filters = restrict_filters(principal, parse_filters(request.query_params))
    return Selection(start, end, filters)


@router.get("/cost", summary="Cost and usage grouped by attribution dimensions")
async def cost(request: Request, principal: Principal = Depends(summary_reader)) -> Response:
    async def build() -> Response:
        params = request.query_params
        check_known(params, [*_RANGE, "group_by", "top", "source"])
        group_by = parse_dimensions(params.get("group_by"))
        top = parse_int(params, "top", 20, 1, 10_000)
        force = parse_choice(params, "source", "auto", ("auto", "raw", "hourly"))
        selection = _selection(request, principal, timedelta(days=30))
        source, snapped = queries.pick_source(
            selection,
            group_by,
            force=None if force == "auto" else force,  # type: ignore[arg-type]
        )
        result = await run(store_of(request), queries.cost_breakdown_sql(source, snapped, group_by))
        groups = [{**{d: r[d] for d in group_by}, **_metrics(r)} for r in result.rows]
        totals = dict(_ZERO)
        for group in groups:
            totals = _add(totals, {k: group[k] for k in METRICS})
        if not group_by:
            groups, totals = [], _metrics(result.rows[0]) if result.rows else dict(_ZERO)
        other = None
        if len(groups) > top:
            other = dict(_ZERO)
            for group in groups[top:]:
                other = _add(other, {k: group[k] for k in METRICS})
        body = {
            "group_by": group_by,
            "start": iso(snapped.start),
            "end": iso(snapped.end),
            "source": source.name,
            "rows": groups[:top],
            "other": other,
            "totals": totals,
        }
        return render(request, body, "rows", [*group_by, *METRICS])

    return await answer(request, build)


@router.get("/timeseries", summary="Cost, calls, errors and p95 latency per time bucket")
async def timeseries(request: Request, principal: Principal = Depends(summary_reader)) -> Response:
    async def build() -> Response:
        params = request.query_params
        check_known(params, [*_RANGE, "group_by", "granularity", "source"])
        granularity = parse_choice(params, "granularity", "day", GRANULARITIES)
        group_by = parse_dimensions(params.get("group_by"))
        force = parse_choice(params, "source", "auto", ("auto", "raw"))
        selection = _selection(request, principal, timedelta(days=30))
        source, snapped = queries.pick_source(
            selection,
            group_by,
            granularity=granularity,
            force="raw" if force == "raw" else None,
        )
        result = await run(
            store_of(request), queries.timeseries_sql(source, snapped, granularity, group_by)
        )
        points = [
            {
                "bucket": iso(r["bucket"]),
                **{d: r[d] for d in group_by},
                "cost_usd": usd(r["cost_usd"]),
                "calls": int(r["calls"]),
                "errors": int(r["errors"]),
                "p95_latency_ms": number(r["p95_latency_ms"]),
            }
            for r in result.rows
        ]
        body = {
            "granularity": granularity,
            "group_by": group_by,
            "start": iso(snapped.start),
            "end": iso(snapped.end),
            "points": points,
        }
        columns = ["bucket", *group_by, "cost_usd", "calls", "errors", "p95_latency_ms"]
        return render(request, body, "points", columns)

    return await answer(request, build)


@router.get("/anomalies", summary="Spend spikes per scope against its own trailing baseline")
async def anomalies(request: Request, principal: Principal = Depends(summary_reader)) -> Response:
    async def build() -> Response:
        params = request.query_params
        check_known(params, [*_RANGE, "group_by", "granularity", "lookback", "threshold"])
        granularity = parse_choice(params, "granularity", "day", tuple(STEPS))
        group_by = parse_dimensions(params.get("group_by"))
        lookback = parse_int(params, "lookback", 14, 2, 366)
        threshold = parse_float(params, "threshold", 3.0, 0.5, 100.0)
        default = timedelta(days=7) if granularity == "day" else timedelta(hours=24)
        evaluated = _selection(request, principal, default)
        scan = await scan_spikes(
            store_of(request), evaluated, group_by, granularity, lookback, threshold
        )
        found = [
            {
                "bucket": iso(spike.bucket),
                **dict(zip(group_by, scope, strict=True)),
                "cost_usd": usd(spike.cost_usd),
                "baseline_usd": usd(spike.baseline_usd),
                "zscore": spike.zscore,
            }
            for scope, spike in scan.spikes
        ]
        found.sort(key=lambda a: (-float(str(a["zscore"])), str(a["bucket"])))
        body = {
            "granularity": granularity,
            "group_by": group_by,
            "lookback": lookback,
            "threshold": threshold,
            "start": iso(scan.start),
            "end": iso(scan.end),
            "anomalies": found,
        }
        columns = ["bucket", *group_by, "cost_usd", "baseline_usd", "zscore"]
        return render(request, body, "anomalies", columns)

    return await answer(request, build)


CALL_FIELDS = [c.rsplit(" AS ", 1)[-1] for c in queries.CALL_COLUMNS]


@router.get("/calls", summary="Single calls, newest first (their content for admin keys)")
async def calls(request: Request, principal: Principal = Depends(full_reader)) -> Response:
    async def build() -> Response:
        params = request.query_params
        check_known(params, [*_RANGE, "limit"])
        limit = parse_int(params, "limit", 100, 1, 1000)
        selection = _selection(request, principal, timedelta(days=30))
        # rows hold content only where it was logged (the policy, or a key's own setting)
        with_content = principal.role == "admin"
        store = store_of(request)
        newest = selection
        source, days = queries.pick_source(selection, [], granularity="day")
        if source is not queries.RAW:  # where the newest `limit` calls start, from a rollup
            per_day = await run(store, queries.calls_per_day_sql(source, days))
            start = queries.newest_calls_start(per_day.rows, limit)
            if start is not None and start > selection.start:
                newest = Selection(start, selection.end, selection.filters)
        result = await run(store, queries.calls_sql(newest, limit, with_content=with_content))
        if newest is not selection and len(result.rows) < limit:  # the rollup counted more
            result = await run(
                store, queries.calls_sql(selection, limit, with_content=with_content)
            )
        rows = []
        for row in result.rows:
            item = {**row, "ts": iso(row["ts"]), "cost_usd": usd(row["cost_usd"])}
            rows.append(item)
        fields = [*CALL_FIELDS, *(queries.CONTENT_COLUMNS if with_content else ())]
        return render(request, {"calls": rows}, "calls", fields)

    return await answer(request, build)
