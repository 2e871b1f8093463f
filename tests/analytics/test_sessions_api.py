"""`GET /v1/analytics/sessions`: the calls that named the same session, summed — costliest
first, with a summary of how a session's cost spreads — and `session_id` as a filter and a
grouping of the other explorer endpoints. Real chDB, events written through the ledger."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from analytics.ledger import Ledger
from analytics.responses import usd
from analytics.store import ChdbStore
from tests.analytics.conftest import make_event
from tests.analytics.seed import VIEWER_KEY, analytics_app, finops_client
from tollway.events import CallEvent

START = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
RANGE = {"start": "2025-03-14", "end": "2025-03-15"}


def _events() -> list[CallEvent]:
    """Three sessions of 3, 2 and 2 calls (one failed, one refused at the session's limit), and
    two calls that named none."""
    plan = [
        ("run-a", "marketing", "gpt-4o-mini", "0.01", "ok"),
        ("run-a", "marketing", "gpt-4o", "0.02", "error"),
        ("run-a", "marketing", "gpt-4o", "0.03", "ok"),
        ("run-b", "support", "gpt-4o", "0.5", "ok"),
        ("run-b", "support", "gpt-4o", "0", "blocked"),
        ("run-c", "support", "gpt-4o-mini", "0.001", "ok"),
        ("run-c", "support", "gpt-4o-mini", "0.001", "ok"),
        ("", "support", "gpt-4o", "7", "ok"),
        ("", "marketing", "gpt-4o", "9", "ok"),
    ]
    return [
        make_event(ts=START + timedelta(minutes=i), session_id=session, business_line=line,
                   model=model, cost_usd=Decimal(cost), status=status,
                   error_code="session_budget_exceeded" if status == "blocked" else "")
        for i, (session, line, model, cost, status) in enumerate(plan)
    ]  # fmt: skip


@pytest.fixture
async def client(ledger_store: ChdbStore) -> AsyncIterator[httpx.AsyncClient]:
    await Ledger(ledger_store).write(_events())
    async with finops_client(analytics_app(ledger_store)) as client:
        yield client


def _by_session(events: list[CallEvent]) -> dict[str, list[CallEvent]]:
    sessions: dict[str, list[CallEvent]] = defaultdict(list)
    for event in events:
        if event.session_id:
            sessions[event.session_id].append(event)
    return sessions


async def test_sessions_costliest_first_with_their_calls_summed(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/analytics/sessions", params=RANGE)).json()
    expected = _by_session(_events())
    costs = {sid: sum((e.cost_usd for e in calls), Decimal(0)) for sid, calls in expected.items()}
    assert [s["session_id"] for s in body["sessions"]] == sorted(costs, key=lambda s: -costs[s])
    for session in body["sessions"]:
        calls = expected[session["session_id"]]
        assert Decimal(session["cost_usd"]) == costs[session["session_id"]]
        assert session["calls"] == len(calls)
        assert session["errors"] == sum(e.status != "ok" for e in calls)
        assert session["limited"] == sum(e.error_code == "session_budget_exceeded" for e in calls)
        assert session["models"] == sorted({e.model for e in calls})
        assert session["duration_s"] == (calls[-1].ts - calls[0].ts).total_seconds()
        assert session["first_ts"] == calls[0].ts.isoformat().replace("+00:00", "Z")
        assert session["business_line"] == calls[0].business_line

    ranked = sorted(costs.values())
    lengths = sorted(len(calls) for calls in expected.values())
    assert body["summary"] == {
        "sessions": len(expected),
        "calls": sum(lengths),
        "cost_usd": usd(sum(ranked, Decimal(0))),  # the calls that named no session are not in it
        "median_cost_usd": usd(ranked[len(ranked) // 2]),
        "p90_cost_usd": usd(ranked[int(0.9 * len(ranked))]),
        "max_cost_usd": usd(ranked[-1]),
        "median_calls": lengths[len(lengths) // 2],
    }


async def test_sessions_follow_the_explorer_filters_and_limit(client: httpx.AsyncClient) -> None:
    support = await client.get(
        "/v1/analytics/sessions", params={**RANGE, "business_line": "support", "limit": 1}
    )
    body = support.json()
    assert [s["session_id"] for s in body["sessions"]] == ["run-b"]
    assert body["summary"]["sessions"] == 2  # run-b and run-c; the limit trims the list only

    one = await client.get("/v1/analytics/calls", params={**RANGE, "session_id": "run-a"})
    assert len(one.json()["calls"]) == 3
    grouped = await client.get(
        "/v1/analytics/cost", params={**RANGE, "group_by": "session_id", "top": 10}
    )
    groups = {g["session_id"]: g for g in grouped.json()["rows"]}
    assert Decimal(groups["run-a"]["cost_usd"]) == Decimal("0.06")
    assert Decimal(groups[""]["cost_usd"]) == Decimal(16)  # the calls that named none

    as_csv = await client.get(
        "/v1/analytics/sessions", params=RANGE, headers={"Accept": "text/csv"}
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["session_id"] for r in rows] == ["run-b", "run-a", "run-c"]


async def test_sessions_are_for_finops_and_admin_only(client: httpx.AsyncClient) -> None:
    viewer = {"Authorization": f"Bearer {VIEWER_KEY}"}
    assert (await client.get("/v1/analytics/sessions", headers=viewer)).status_code == 403
    bad = await client.get("/v1/analytics/sessions", params={"limit": 0})
    assert bad.status_code == 400 and "limit" in bad.text
