"""Routing statistics from the route rollups (migration 0012) equal the raw computation.

The seeded ledger spans several UTC days with calls at every minute offset, several routes, task
types and models, streamed and non-streamed calls (TTFT or NULL), errors and blocked calls, and
feedback: most calls rated once, some rated twice (the later score wins), some rated before the
window starts (not counted), some calls rated inside the window but made before it (not counted).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from analytics.ledger import Ledger
from analytics.migrate import load_migrations, migrate
from analytics.queries import RAW, ceil_hour
from analytics.routing_stats import STAT_KEYS, routing_stats, routing_stats_between
from analytics.routing_windows import DAILY_BY_ROUTE, HOURLY_BY_ROUTE, split_window
from analytics.store import ChdbStore
from tests.analytics.conftest import make_event
from tests.analytics.seed import FINOPS_KEY, analytics_app
from tollway.config.schema import TollwayConfig
from tollway.events import CallEvent

START = datetime(2025, 3, 10, tzinfo=UTC)
NOW = datetime(2025, 3, 14, 17, 41, 7, 250_000, tzinfo=UTC)
QUANTILES = ("p50_latency_ms", "p95_latency_ms", "p50_ttft_ms")


def _events() -> list[CallEvent]:
    """400 calls, one every 17 minutes 13 s from START (to past NOW)."""
    events = []
    for i in range(400):
        status = "error" if i % 9 == 0 else "blocked" if i % 23 == 0 else "ok"
        events.append(
            make_event(
                ts=START + timedelta(seconds=1033 * i),
                route=["auto", "cheap", ""][i % 3],
                task_type=["chat", "summarize"][i % 2],
                model=["gpt-4o-mini", "gpt-4o", "claude-haiku"][(i // 2) % 3],
                status=status,
                cost_usd=Decimal(0) if status != "ok" else Decimal("0.000123457") * (1 + i % 13),
                input_tokens=100 + 7 * i,
                output_tokens=10 + i % 50,
                duration_ms=200 + (37 * i) % 900,
                ttft_ms=None if i % 4 == 0 else 40 + (11 * i) % 300,
            )
        )
    return events


EVENTS = _events()  # one set of event ids for the ledger and the expectations


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _feedback(events: list[CallEvent]) -> list[dict[str, Any]]:
    rows = []
    for i, event in enumerate(events):
        if i % 5 == 4:
            continue  # unrated
        at = event.ts + timedelta(minutes=5)
        rows.append(
            {
                "event_id": str(event.event_id),
                "score": round(0.4 + (i % 7) / 10, 2),
                "label": "",
                "ts": _stamp(at),
                "key_id": "k_first",
            }
        )
        if i % 6 == 0:  # rated again later by another key: the later score wins
            rows.append(
                rows[-1]
                | {"score": 0.95, "ts": _stamp(at + timedelta(hours=2)), "key_id": "k_second"}
            )
    return rows


@pytest.fixture
async def seeded(ledger_store: ChdbStore) -> ChdbStore:
    events = EVENTS
    ledger = Ledger(ledger_store)
    for at in range(0, len(events), 64):  # several inserts: several parts in each rollup
        await ledger.write(events[at : at + 64])
    await ledger_store.insert_rows("feedback", _feedback(events))
    return ledger_store


def _assert_same(rollup: list[dict[str, Any]], raw: list[dict[str, Any]]) -> None:
    assert [r.keys() for r in rollup] == [r.keys() for r in raw]
    assert len(rollup) == len(raw) and raw
    for got, want in zip(rollup, raw, strict=True):
        exact = {k: v for k, v in want.items() if k not in (*QUANTILES, "mean_score")}
        assert {k: got[k] for k in exact} == exact
        if want["mean_score"] is None:
            assert got["mean_score"] is None
        else:
            assert got["mean_score"] == pytest.approx(want["mean_score"], rel=1e-9)
        for name in QUANTILES:  # t-digests both ways: within a few percent of each other
            if want[name] is None:
                assert got[name] is None, name
            else:
                assert got[name] == pytest.approx(want[name], rel=0.05, abs=10), name


WINDOWS = [
    (NOW, timedelta(days=3)),  # edges mid-hour: raw, hourly, daily, hourly, raw
    (NOW, timedelta(hours=30)),  # one day boundary inside: no whole day
    (NOW, timedelta(minutes=50)),  # within two clock hours: raw only
    (NOW.replace(minute=0, second=0, microsecond=0), timedelta(days=2)),  # whole days and hours
    (datetime(2025, 3, 13, tzinfo=UTC), timedelta(days=2)),  # whole days only
    (NOW, timedelta(days=30)),  # starts before the first call
]


async def test_rollup_path_equals_the_raw_path(seeded: ChdbStore) -> None:
    events = EVENTS
    for now, window in WINDOWS:
        for keys in (STAT_KEYS, ("task_type", "model")):
            rollup = await routing_stats(seeded, window, now=now, keys=keys)
            raw = await routing_stats(seeded, window, now=now, keys=keys, path="raw")
            _assert_same(rollup, raw)
            assert any(r["score_count"] for r in raw), (now, window)
            # and against the events, for the sums both paths could get wrong together
            inside = [e for e in events if now - window <= e.ts < now]
            assert sum(r["calls"] for r in rollup) == len(inside)
            assert sum(Decimal(r["cost_usd"]) for r in rollup) == sum(e.cost_usd for e in inside)


async def test_scores_count_the_latest_rating_of_calls_in_the_window(seeded: ChdbStore) -> None:
    now, window = NOW, timedelta(days=1)
    stats = await routing_stats(seeded, window, now=now, keys=("model",))
    events, feedback = EVENTS, _feedback(EVENTS)
    start = now - window
    latest: dict[str, tuple[str, float]] = {}
    for row in feedback:
        if row["ts"] >= _stamp(start) and row["ts"] >= latest.get(row["event_id"], ("", 0))[0]:
            latest[row["event_id"]] = (row["ts"], row["score"])
    by_model: dict[str, list[float]] = {}
    for event in events:
        if start <= event.ts < now and str(event.event_id) in latest:
            by_model.setdefault(event.model, []).append(latest[str(event.event_id)][1])
    assert {s["model"]: s["score_count"] for s in stats} == {m: len(v) for m, v in by_model.items()}
    for stat in stats:
        scores = by_model[stat["model"]]
        assert stat["mean_score"] == pytest.approx(sum(scores) / len(scores), abs=1e-6)


async def test_a_window_without_calls_has_no_stats(seeded: ChdbStore) -> None:
    assert await routing_stats(seeded, timedelta(days=2), now=START) == []
    assert await routing_stats(seeded, timedelta(0), now=NOW) == []


async def test_route_rollups_are_backfilled_on_upgrade(store: ChdbStore) -> None:
    """0012 on a ledger that already has calls and feedback: the route rollups and
    `rated_calls` start with all of them; what comes later is added."""
    await migrate(store, [m for m in load_migrations() if m.name < "0012"])
    events, feedback = EVENTS, _feedback(EVENTS)
    await Ledger(store).write(events[:250])  # before the route rollups exist
    early = {str(e.event_id) for e in events[:250]}
    await store.insert_rows("feedback", [f for f in feedback if f["event_id"] in early])
    assert "0012_routing_rollups.sql" in await migrate(store)
    rated = await store.query("SELECT count() AS n FROM rated_calls")
    assert rated.rows == [{"n": len(early & {f["event_id"] for f in feedback})}]
    await Ledger(store).write(events[250:])  # and after
    await store.insert_rows("feedback", [f for f in feedback if f["event_id"] not in early])
    for table in ("calls_hourly_by_route", "calls_daily_by_route"):
        total = await store.query(f"SELECT sum(calls) AS n, sum(ok_calls) AS ok FROM {table}")
        ok = sum(e.status == "ok" for e in events)
        assert total.rows == [{"n": len(events), "ok": ok}], table
    for now, window in WINDOWS:
        rollup = await routing_stats(store, window, now=now)
        _assert_same(rollup, await routing_stats(store, window, now=now, path="raw"))
    rated = await store.query("SELECT uniqExact(event_id) AS n FROM rated_calls")
    assert rated.rows == [{"n": len({f["event_id"] for f in feedback})}]


async def test_scores_arriving_between_computations_are_counted(seeded: ChdbStore) -> None:
    """A score that arrives after a computation, or replaces an earlier one, counts in the
    next: `rated_calls` learns the new events, and scores are always read from `feedback`."""
    window = timedelta(days=2)
    before = await routing_stats(seeded, window, now=NOW, keys=("model",))
    inside = [e for e in EVENTS if NOW - window <= e.ts < NOW]
    rated = {f["event_id"] for f in _feedback(EVENTS)}
    fresh = [e for e in inside if str(e.event_id) not in rated][:3]
    again = next(e for e in inside if str(e.event_id) in rated)
    later = _stamp(NOW - timedelta(minutes=1))
    await seeded.insert_rows(
        "feedback",
        [
            {"event_id": str(e.event_id), "score": 0.0, "label": "", "ts": later, "key_id": "k"}
            for e in [*fresh, again]
        ],
    )
    after = await routing_stats(seeded, window, now=NOW, keys=("model",))
    raw = await routing_stats(seeded, window, now=NOW, keys=("model",), path="raw")
    _assert_same(after, raw)
    assert sum(s["score_count"] for s in after) == sum(s["score_count"] for s in before) + 3
    assert after != before


def test_windows_split_into_contiguous_pieces() -> None:
    pieces = split_window(NOW - timedelta(days=3), NOW)
    assert [p.source for p in pieces] == [
        RAW,
        HOURLY_BY_ROUTE,
        DAILY_BY_ROUTE,
        HOURLY_BY_ROUTE,
        RAW,
    ]
    assert pieces[0].start == NOW - timedelta(days=3) and pieces[-1].end == NOW
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
    assert pieces[1].start == ceil_hour(NOW - timedelta(days=3))
    assert pieces[2].start == datetime(2025, 3, 12, tzinfo=UTC)
    assert pieces[2].end == datetime(2025, 3, 14, tzinfo=UTC)
    assert pieces[3].end == datetime(2025, 3, 14, 17, tzinfo=UTC)
    assert [p.source for p in split_window(NOW - timedelta(minutes=30), NOW)] == [RAW]
    whole = split_window(datetime(2025, 3, 12, tzinfo=UTC), datetime(2025, 3, 14, tzinfo=UTC))
    assert [p.source for p in whole] == [DAILY_BY_ROUTE]
    assert split_window(NOW, NOW) == []


async def test_the_api_answers_on_whole_hours_and_says_so(seeded: ChdbStore) -> None:
    """The API widens the window to whole UTC hours (rollups only) and reports it; the answer
    is the raw computation's on that window."""
    transport = httpx.ASGITransport(app=analytics_app(seeded, TollwayConfig()))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://tollway.test",
        headers={"Authorization": f"Bearer {FINOPS_KEY}"},
    ) as client:
        response = await client.get(
            "/v1/analytics/routing/stats", params={"days": 2, "at": NOW.isoformat()}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["start"], body["end"]) == ("2025-03-12T17:00:00Z", "2025-03-14T18:00:00Z")
    start, end = datetime(2025, 3, 12, 17, tzinfo=UTC), datetime(2025, 3, 14, 18, tzinfo=UTC)
    raw = await routing_stats_between(seeded, start, end, path="raw")
    _assert_same(body["stats"], [{k: r[k] for k in body["stats"][0]} for r in raw])
    assert [p.source for p in split_window(start, end)] == [
        HOURLY_BY_ROUTE,
        DAILY_BY_ROUTE,
        HOURLY_BY_ROUTE,
    ]
