"""Routing statistics and recommendations from cost and feedback, and their Kafka publisher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from analytics.ledger import Ledger
from analytics.routing_stats import RoutingStatsPublisher, routing_stats
from analytics.store import ChdbStore
from tests.analytics.conftest import make_event
from tests.analytics.seed import analytics_app, finops_client
from tollway.config.schema import ModelConfig, ProviderConfig, TollwayConfig
from tollway.topics import Topics

NOW = datetime(2025, 3, 20, 12, tzinfo=UTC)
CONFIG = TollwayConfig(
    providers=[ProviderConfig(name="openai", type="openai")],
    models=[
        ModelConfig(
            name="gpt-4o",
            provider="openai",
            input_per_mtok=Decimal("2.5"),
            output_per_mtok=Decimal("10"),
        ),
        ModelConfig(
            name="gpt-4o-mini",
            provider="openai",
            input_per_mtok=Decimal("0.15"),
            output_per_mtok=Decimal("0.6"),
        ),
    ],
)


def _traffic() -> tuple[list, list[dict]]:
    """40 gpt-4o calls (score 0.9, 1 error) and 30 gpt-4o-mini calls (score 0.88) on route
    auto, task summarize, in the 3 days before NOW; plus one old call outside every window."""
    events, feedback = [], []
    for i in range(70):
        big = i < 40
        model = "gpt-4o" if big else "gpt-4o-mini"
        failed = i == 7  # one gpt-4o call fails
        event = make_event(
            ts=NOW - timedelta(hours=1 + i),
            model=model,
            route="auto",
            task_type="summarize",
            input_tokens=1000,
            output_tokens=200,
            cost_usd=Decimal("0.0045") if big else Decimal("0.00027"),
            duration_ms=(800 if big else 300) + i,
            ttft_ms=100 + i,
            status="error" if failed else "ok",
        )
        events.append(event)
        feedback.append(
            {
                "event_id": str(event.event_id),
                "score": 0.9 if big else 0.88,
                "label": "good",
                "ts": (NOW - timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S.000"),
                "key_id": "k_marketing",
            }
        )
    events.append(make_event(ts=NOW - timedelta(days=40), model="gpt-4o", route="auto"))
    return events, feedback


@pytest.fixture
async def seeded(ledger_store: ChdbStore) -> ChdbStore:
    events, feedback = _traffic()
    await Ledger(ledger_store).write(events)
    await ledger_store.insert_rows("feedback", feedback)
    return ledger_store


@pytest.fixture
async def client(seeded: ChdbStore) -> AsyncIterator[httpx.AsyncClient]:
    async with finops_client(analytics_app(seeded, CONFIG)) as client:
        yield client


async def test_stats_per_route_task_and_model(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/analytics/routing/stats", params={"days": 7, "at": NOW.isoformat()}
    )
    assert response.status_code == 200, response.text
    stats = {s["model"]: s for s in response.json()["stats"]}
    big, mini = stats["gpt-4o"], stats["gpt-4o-mini"]
    assert (big["route"], big["task_type"], big["calls"]) == ("auto", "summarize", 40)
    assert big["success_rate"] == pytest.approx(39 / 40) and mini["success_rate"] == 1.0
    assert big["mean_cost_usd"] == "0.0045" and big["score_count"] == 40
    assert big["mean_score"] == pytest.approx(0.9) and mini["mean_score"] == pytest.approx(0.88)
    assert 800 <= big["p50_latency_ms"] <= big["p95_latency_ms"] <= 840
    assert 100 <= big["p50_ttft_ms"] <= 140


async def test_recommends_the_cheaper_model_of_similar_quality(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/analytics/routing/recommendations", params={"days": 30, "at": NOW.isoformat()}
    )
    assert response.status_code == 200, response.text
    [rec] = response.json()["recommendations"]
    assert (rec["task_type"], rec["current_model"], rec["candidate_model"]) == (
        "summarize",
        "gpt-4o",
        "gpt-4o-mini",
    )
    assert rec["current_cost_usd"] == "0.18" and rec["calls"] == 40
    assert rec["candidate_quality"] == pytest.approx(0.88)
    # by hand: the 40 calls (40k in, 8k out tokens) at mini prices cost 0.0108 instead of 0.18,
    # over 30 days: 0.1692 a month
    assert rec["projected_monthly_savings_usd"] == "0.1692"
    assert "candidates: [gpt-4o-mini], fallbacks: [gpt-4o]" in rec["yaml_snippet"]
    # too little feedback → no recommendation
    response = await client.get(
        "/v1/analytics/routing/recommendations",
        params={"days": 30, "at": NOW.isoformat(), "min_feedback": 100},
    )
    assert response.json()["recommendations"] == []


async def test_publisher_puts_stats_on_the_compacted_topic(
    seeded: ChdbStore, kafka_bootstrap: str, namespace: str
) -> None:
    topic = Topics(namespace).routing_stats
    publisher = RoutingStatsPublisher(
        seeded, kafka_bootstrap, topic, window=timedelta(days=7), interval_s=3600
    )
    async with publisher.running():
        for _ in range(100):  # the first round runs as soon as the publisher starts
            if publisher.rounds:
                break
            await asyncio.sleep(0.05)
        assert await publisher.publish_once(now=NOW) == 2  # one more round, at a fixed time
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records = []
        for _ in range(20):
            batch = await consumer.getmany(timeout_ms=500)
            records += [r for part in batch.values() for r in part]
            if any(r.key == b"auto|summarize|gpt-4o-mini" for r in records):
                break
    finally:
        await consumer.stop()
    latest = {r.key: r.value for r in records}
    value = orjson.loads(latest[b"auto|summarize|gpt-4o"])
    expected = {s["model"]: s for s in await routing_stats(seeded, timedelta(days=7), now=NOW)}
    assert value["calls"] == 40 and value["mean_cost_usd"] == "0.0045"
    assert value["computed_at"] == "2025-03-20T12:00:00Z" and value["window_s"] == 7 * 86400
    assert {k: value[k] for k in expected["gpt-4o"]} == expected["gpt-4o"]
    assert orjson.loads(latest[b"auto|summarize|gpt-4o-mini"])["success_rate"] == 1.0


def _stat(model: str, score: float | None, success: float = 1.0, cost: str = "1") -> dict:
    return {
        "task_type": "chat",
        "model": model,
        "calls": 100,
        "success_rate": success,
        "p95_latency_ms": 500.0,
        "cost_usd": cost,
        "mean_cost_usd": str(Decimal(cost) / 100),
        "input_tokens": 10_000,
        "output_tokens": 1_000,
        "mean_score": score,
        "score_count": 50 if score is not None else 0,
    }


@pytest.mark.parametrize(
    ("candidate", "recommended"),
    [
        (_stat("cheap", 0.86, cost="0.2"), True),
        (_stat("cheap", 0.80, cost="0.2"), False),  # quality more than 0.05 below
        (_stat("cheap", 0.90, success=0.9, cost="0.2"), False),  # fails more often
        (_stat("cheap", None, cost="0.2"), False),  # no feedback at all
        (_stat("cheap", 0.95, cost="2"), False),  # not cheaper
    ],
)
def test_recommendation_rules(candidate: dict, recommended: bool) -> None:
    from analytics.recommendations import Thresholds, recommend

    current = _stat("dear", 0.9, cost="1")
    found = recommend([current, candidate], 30, TollwayConfig(), Thresholds())
    found = [r for r in found if r["current_model"] == "dear"]
    assert bool(found) == recommended
    if found:  # unpriced models: re-priced at the candidate's observed mean cost per call
        assert found[0]["projected_monthly_savings_usd"] == "0.8"
