"""The explorer API on a seeded ledger: answers checked against sums computed by hand."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pyarrow as pa
import pytest

from analytics.endpoint import iso
from analytics.ledger import Ledger
from analytics.store import ChdbStore
from tests.analytics.seed import (
    ADMIN_KEY,
    DEV_KEY,
    VIEWER_KEY,
    analytics_app,
    expected,
    finops_client,
    seeded_events,
)
from tollway.config.schema import LoggingPolicy, TollwayConfig

RANGE = {"start": "2025-03-10", "end": "2025-03-13"}


@pytest.fixture
async def client(ledger_store: ChdbStore) -> AsyncIterator[httpx.AsyncClient]:
    await Ledger(ledger_store).write(seeded_events())
    config = TollwayConfig(logging=LoggingPolicy(content=True))
    async with finops_client(analytics_app(ledger_store, config)) as client:
        yield client


def _as_expected(body_rows: list[dict], group_by: list[str]) -> dict:
    return {
        tuple(r[d] for d in group_by): {
            "cost_usd": Decimal(r["cost_usd"]),
            **{k: r[k] for k in ("calls", "input_tokens", "output_tokens", "errors")},
        }
        for r in body_rows
    }


async def test_cost_by_business_line_and_project(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/analytics/cost", params={"group_by": "business_line,project", **RANGE}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group_by"] == ["business_line", "project"]
    assert (body["start"], body["end"]) == ("2025-03-10T00:00:00Z", "2025-03-13T00:00:00Z")
    assert body["source"] == "daily"
    events = seeded_events()
    assert _as_expected(body["rows"], body["group_by"]) == expected(
        events, ["business_line", "project"]
    )
    costs = [Decimal(r["cost_usd"]) for r in body["rows"]]
    assert costs == sorted(costs, reverse=True)
    assert body["other"] is None
    assert Decimal(body["totals"]["cost_usd"]) == sum(e.cost_usd for e in events)
    assert body["totals"]["calls"] == 36
    # by hand: each combo has 12 calls; marketing/campaigns fails on calls 5, 15 (the mini
    # model on day 1 at 15:xx and gpt-4o on day 2 at 09:xx) → (0.011 * 6) - 0.002 - 0.01
    campaigns = next(r for r in body["rows"] if r["project"] == "campaigns")
    assert (
        Decimal(campaigns["cost_usd"])
        == expected(events, ["project"], lambda e: e.project == "campaigns")[("campaigns",)][
            "cost_usd"
        ]
    )


async def test_filters_drill_down_and_top_n(client: httpx.AsyncClient) -> None:
    events = seeded_events()
    response = await client.get(
        "/v1/analytics/cost",
        params={"group_by": "model", "business_line": "marketing", "status": "ok", **RANGE},
    )
    body = response.json()
    assert _as_expected(body["rows"], ["model"]) == expected(
        events, ["model"], lambda e: e.business_line == "marketing" and e.status == "ok"
    )
    # drill further: one project, repeated values of one filter mean "either"
    response = await client.get(
        "/v1/analytics/cost",
        params=[
            ("group_by", "key_id"),
            ("project", "seo"),
            ("project", "helpdesk"),
            *RANGE.items(),
        ],
    )
    assert _as_expected(response.json()["rows"], ["key_id"]) == expected(
        events, ["key_id"], lambda e: e.project in ("seo", "helpdesk")
    )
    # top-N folds the rest into "other", totals still cover everything
    response = await client.get(
        "/v1/analytics/cost", params={"group_by": "project,model", "top": 2, **RANGE}
    )
    body = response.json()
    everything = expected(events, ["project", "model"])
    ranked = sorted(everything.values(), key=lambda m: m["cost_usd"], reverse=True)
    assert [Decimal(r["cost_usd"]) for r in body["rows"]] == [m["cost_usd"] for m in ranked[:2]]
    assert Decimal(body["other"]["cost_usd"]) == sum(m["cost_usd"] for m in ranked[2:])
    assert body["other"]["calls"] == sum(m["calls"] for m in ranked[2:])
    assert body["totals"]["calls"] == 36


async def test_totals_only_and_raw_dimensions_agree_with_rollups(
    client: httpx.AsyncClient,
) -> None:
    events = seeded_events()
    body = (await client.get("/v1/analytics/cost", params=RANGE)).json()
    assert body["rows"] == [] and body["other"] is None
    assert Decimal(body["totals"]["cost_usd"]) == sum(e.cost_usd for e in events)
    # `user` is only in the raw ledger: the answer comes from `calls`
    body = (await client.get("/v1/analytics/cost", params={"group_by": "user", **RANGE})).json()
    assert body["source"] == "raw"
    assert _as_expected(body["rows"], ["user"]) == expected(events, ["user"])
    # so is the endpoint: chat against embeddings, OpenAI's protocol against Anthropic's
    params = {"group_by": "endpoint", "model": "gpt-4o", **RANGE}
    body = (await client.get("/v1/analytics/cost", params=params)).json()
    assert body["source"] == "raw"
    by_endpoint = expected(events, ["endpoint"], keep=lambda e: e.model == "gpt-4o")
    assert _as_expected(body["rows"], ["endpoint"]) == by_endpoint
    assert len(by_endpoint) == 2
    # the same question from the hourly rollup and the raw rows
    for source in ("hourly", "raw"):
        body = (
            await client.get(
                "/v1/analytics/cost",
                params={"group_by": "environment,status", "source": source, **RANGE},
            )
        ).json()
        assert body["source"] == source
        assert _as_expected(body["rows"], ["environment", "status"]) == expected(
            events, ["environment", "status"]
        )


async def test_partial_hours_are_snapped_and_reported(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/analytics/cost",
        params={"start": "2025-03-10T09:30:00Z", "end": "2025-03-10T15:10:00+00:00"},
    )
    body = response.json()
    assert body["source"] == "hourly"
    assert (body["start"], body["end"]) == ("2025-03-10T09:00:00Z", "2025-03-10T16:00:00Z")
    assert body["totals"]["calls"] == 12  # both hours of day 1


async def test_timeseries_per_day_hour_and_month(client: httpx.AsyncClient) -> None:
    events = seeded_events()
    body = (
        await client.get(
            "/v1/analytics/timeseries", params={"granularity": "day", "group_by": "model", **RANGE}
        )
    ).json()
    assert body["granularity"] == "day" and body["group_by"] == ["model"]
    assert len(body["points"]) == 6
    first = body["points"][0]
    assert first["bucket"] == "2025-03-10T00:00:00Z" and first["model"] == "gpt-4o"
    day1 = expected(events, ["model"], lambda e: e.ts.day == 10)
    assert Decimal(first["cost_usd"]) == day1[("gpt-4o",)]["cost_usd"]
    assert first["calls"] == 6 and first["errors"] == day1[("gpt-4o",)]["errors"]
    durations = sorted(e.duration_ms for e in events if e.ts.day == 10 and e.model == "gpt-4o")
    assert durations[0] <= first["p95_latency_ms"] <= durations[-1]

    body = (
        await client.get("/v1/analytics/timeseries", params={"granularity": "hour", **RANGE})
    ).json()
    assert [p["bucket"][11:13] for p in body["points"]] == ["09", "15"] * 3
    assert sum(p["calls"] for p in body["points"]) == 36

    body = (
        await client.get("/v1/analytics/timeseries", params={"granularity": "month", **RANGE})
    ).json()
    assert [p["bucket"] for p in body["points"]] == ["2025-03-01T00:00:00Z"]
    assert Decimal(body["points"][0]["cost_usd"]) == sum(e.cost_usd for e in events)


async def test_csv_and_arrow(client: httpx.AsyncClient) -> None:
    params = {"group_by": "business_line", **RANGE}
    response = await client.get("/v1/analytics/cost", params=params, headers={"Accept": "text/csv"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["business_line"] for r in rows] == ["marketing", "support"]
    by_line = expected(seeded_events(), ["business_line"])
    assert Decimal(rows[1]["cost_usd"]) == by_line[("support",)]["cost_usd"]
    assert rows[0]["calls"] == "24"

    response = await client.get(
        "/v1/analytics/cost",
        params=params,
        headers={"Accept": "application/vnd.apache.arrow.stream"},
    )
    assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.column_names == [
        "business_line",
        "cost_usd",
        "calls",
        "input_tokens",
        "output_tokens",
        "errors",
    ]
    assert table.schema.field("cost_usd").type == pa.decimal128(38, 9)
    assert table.column("cost_usd").to_pylist()[1] == by_line[("support",)]["cost_usd"]
    # an empty answer still has its columns
    response = await client.get(
        "/v1/analytics/timeseries",
        params={"start": "2024-01-01", "end": "2024-01-02"},
        headers={"Accept": "application/vnd.apache.arrow.stream"},
    )
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.num_rows == 0 and "p95_latency_ms" in table.column_names


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/v1/analytics/cost", {"group_by": "business_line,nope"}, "unknown dimension 'nope'"),
        ("/v1/analytics/cost", {"group_by": "model;DROP TABLE calls"}, "unknown dimension"),
        ("/v1/analytics/cost", {"start": "yesterday"}, "not an ISO 8601"),
        ("/v1/analytics/cost", {"start": "2025-03-02", "end": "2025-03-01"}, "before end"),
        ("/v1/analytics/cost", {"top": "ten"}, "not an integer"),
        ("/v1/analytics/cost", {"top": "0"}, "between"),
        ("/v1/analytics/cost", {"bussiness_line": "x"}, "unknown parameter"),
        ("/v1/analytics/timeseries", {"granularity": "week"}, "granularity"),
        ("/v1/analytics/anomalies", {"threshold": "nan"}, "threshold"),
        ("/v1/analytics/anomalies", {"granularity": "month"}, "granularity"),
        ("/v1/analytics/calls", {"limit": "100000"}, "limit"),
        ("/v1/analytics/routing/stats", {"days": "-1"}, "days"),
    ],
)
async def test_bad_parameters_are_400(
    client: httpx.AsyncClient, path: str, params: dict[str, str], fragment: str
) -> None:
    response = await client.get(path, params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert fragment in error["message"]


async def test_quotes_in_values_are_data(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/analytics/cost", params={"project": "x' OR 1=1 --", "group_by": "project", **RANGE}
    )
    assert response.status_code == 200
    assert response.json()["rows"] == [] and response.json()["totals"]["calls"] == 0


async def test_viewer_sees_only_its_business_line(client: httpx.AsyncClient) -> None:
    client.headers["Authorization"] = f"Bearer {VIEWER_KEY}"
    body = (
        await client.get("/v1/analytics/cost", params={"group_by": "business_line", **RANGE})
    ).json()
    assert [r["business_line"] for r in body["rows"]] == ["marketing"]
    assert body["totals"]["calls"] == 24
    points = (await client.get("/v1/analytics/timeseries", params=RANGE)).json()["points"]
    assert sum(p["calls"] for p in points) == 24
    response = await client.get("/v1/analytics/cost", params={"business_line": "support"})
    assert response.status_code == 403
    assert (await client.get("/v1/analytics/calls")).status_code == 403
    assert (await client.get("/v1/analytics/routing/stats")).status_code == 403
    client.headers["Authorization"] = f"Bearer {DEV_KEY}"
    assert (await client.get("/v1/analytics/cost")).status_code == 403


async def test_calls_newest_first_and_content_only_for_admin(client: httpx.AsyncClient) -> None:
    body = (
        await client.get("/v1/analytics/calls", params={"limit": 5, "model": "gpt-4o", **RANGE})
    ).json()
    calls = body["calls"]
    assert len(calls) == 5
    assert [c["ts"] for c in calls] == sorted((c["ts"] for c in calls), reverse=True)
    newest = max((e for e in seeded_events() if e.model == "gpt-4o"), key=lambda e: e.ts)
    assert calls[0]["ts"] == iso(newest.ts) == "2025-03-12T15:36:00Z"
    assert calls[0]["attempts"] == 1 and calls[0]["fallback_used"] is False
    assert "request_content" not in calls[0]

    client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
    calls = (await client.get("/v1/analytics/calls", params={"limit": 1, **RANGE})).json()["calls"]
    assert calls[0]["request_content"].startswith("prompt ")


async def test_calls_are_the_newest_whatever_day_the_list_starts_from(
    client: httpx.AsyncClient,
) -> None:
    """The list reads the ledger from the day a rollup says holds the newest `limit` calls;
    it must be the same list as one read over the whole range (`user` forces that: raw only)."""
    events = seeded_events()
    users = sorted({e.user for e in events})
    for limit in (1, 5, 12, 13, 30, 36, 50):
        for filters in ({}, {"business_line": "marketing"}, {"model": "gpt-4o"}):
            params = {"limit": str(limit), **filters, **RANGE}
            body = (await client.get("/v1/analytics/calls", params=params)).json()
            full = (
                await client.get(
                    "/v1/analytics/calls", params=[*params.items(), *(("user", u) for u in users)]
                )
            ).json()
            assert body["calls"] == full["calls"], (limit, filters)
            assert len(body["calls"]) == min(limit, len(full["calls"]))


def test_newest_calls_start_counts_back_from_the_newest_day() -> None:
    from datetime import UTC, datetime

    from analytics.queries import newest_calls_start

    per_day = [
        {"d": "2025-03-12", "n": 3},
        {"d": "2025-03-11", "n": 4},
        {"d": "2025-03-10", "n": 9},
    ]
    assert newest_calls_start(per_day, 3) == datetime(2025, 3, 12, tzinfo=UTC)
    assert newest_calls_start(per_day, 4) == datetime(2025, 3, 11, tzinfo=UTC)
    assert newest_calls_start(per_day, 16) == datetime(2025, 3, 10, tzinfo=UTC)
    assert newest_calls_start(per_day, 17) is None


def test_the_smallest_daily_rollup_that_can_answer_is_picked() -> None:
    from datetime import UTC, datetime

    from analytics import queries
    from analytics.params import Selection

    day = Selection(datetime(2025, 3, 10, tzinfo=UTC), datetime(2025, 3, 13, tzinfo=UTC))
    drill = Selection(day.start, day.end, {"business_line": ["marketing"]})
    for selection, group_by, table in (
        (day, [], "calls_daily_by_line"),
        (day, ["business_line", "model"], "calls_daily_by_line"),
        (drill, ["project"], "calls_daily_by_task"),
        (
            Selection(day.start, day.end, {"environment": ["prod"]}),
            ["task_type"],
            "calls_daily_by_task",
        ),
        (drill, ["key_id"], "calls_daily"),
        (Selection(day.start, day.end, {"status": ["ok"]}), ["model"], "calls_daily"),
    ):
        source, _ = queries.pick_source(selection, group_by)
        assert (source.name, source.table) == ("daily", table), (selection, group_by)
    source, _ = queries.pick_source(day, ["model"], granularity="hour")
    assert source.table == "calls_hourly"
