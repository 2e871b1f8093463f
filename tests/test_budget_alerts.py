"""Budget alerts through the real pipeline: each threshold fires once per budget and window,
redeliveries and worker restarts included; a steep burn rate fires a forecast breach."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from analytics.migrate import migrate
from ingest.budget_alerts import AlertEvaluator
from tollway.budget_events import BudgetStatus
from tollway.budgets import period_window
from tollway.config import load_config
from tollway.config.schema import BudgetConfig, BudgetScope, TollwayConfig
from tollway.events import CallEvent
from tollway.kafka import ensure_topics, new_producer
from tollway.server import serving
from tollway.topics import Topics

from .pipeline import produce, worker_app

pytestmark = pytest.mark.integration

BUDGET = BudgetConfig(
    id="support-monthly",
    scope=BudgetScope(business_line="support"),
    limit_usd=Decimal(1),
    alerts=[0.5, 0.8, 1.0],
    action="block",
)


def _config(*budgets: BudgetConfig) -> TollwayConfig:
    return load_config(None).model_copy(update={"budgets": list(budgets)})


def _spend(usd: str, n: int = 1) -> list[CallEvent]:
    return [
        CallEvent(
            ts=datetime.now(UTC),
            business_line="support",
            project="helpdesk",
            key_id=f"k_{i}",
            model="gpt-4o",
            cost_usd=Decimal(usd) / n,
        )
        for i in range(n)
    ]


async def _alerts(bootstrap: str, topic: str, settle_s: float = 1.0) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                found += [orjson.loads(r.value) for r in records]
    finally:
        await consumer.stop()
    return found


async def _until_alerts(bootstrap: str, topic: str, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 30
    found: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        found = await _alerts(bootstrap, topic, 0.5)
        if len(found) >= count:
            return found
    return found


async def test_each_threshold_fires_once(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path
) -> None:
    topics = Topics(namespace)
    async with serving(worker_app(kafka_bootstrap, namespace, store, tmp_path, _config(BUDGET))):
        await produce(kafka_bootstrap, topics.calls, _spend("0.55", 5))
        first = await _until_alerts(kafka_bootstrap, topics.budget_alerts, 1)
        assert [(a["type"], a["threshold"]) for a in first] == [("budget.threshold_reached", 0.5)]

        more = _spend("0.60", 3)
        await produce(kafka_bootstrap, topics.calls, more + more)  # redelivered too
        alerts = await _until_alerts(kafka_bootstrap, topics.budget_alerts, 3)

    kinds = sorted((a["type"], a["threshold"]) for a in alerts)
    assert kinds == [
        ("budget.exceeded", 1.0),
        ("budget.threshold_reached", 0.5),
        ("budget.threshold_reached", 0.8),
    ]
    exceeded = next(a for a in alerts if a["type"] == "budget.exceeded")
    assert Decimal(str(exceeded["spend_usd"])) == Decimal("1.15")
    assert exceeded["percent"] == 115.0
    assert exceeded["top_projects"] == [{"name": "helpdesk", "cost_usd": "1.15"}]
    assert exceeded["scope"] == {"business_line": "support"}

    # a restarted worker re-evaluates the same spend and fires nothing new
    async with serving(worker_app(kafka_bootstrap, namespace, store, tmp_path, _config(BUDGET))):
        await asyncio.sleep(3)
    assert len(await _alerts(kafka_bootstrap, topics.budget_alerts)) == 3
    rows = await store.query("SELECT kind, threshold FROM budget_alerts ORDER BY threshold")
    assert [(r["kind"], r["threshold"]) for r in rows.rows] == [
        ("budget.threshold_reached", 0.5),
        ("budget.threshold_reached", 0.8),
        ("budget.exceeded", 1),
    ]


async def test_a_steep_burn_rate_fires_a_forecast_breach(
    kafka_bootstrap: str, namespace: str, store
) -> None:
    await migrate(store)
    topics = Topics(namespace)
    await ensure_topics(kafka_bootstrap, topics.specs())
    budget = BUDGET.model_copy(update={"alerts": [1.0]})
    producer = new_producer(kafka_bootstrap)
    await producer.start()
    try:
        evaluator = AlertEvaluator(
            store=store,
            config=lambda: _config(budget),
            alerts_topic=topics.budget_alerts,
            producer=producer,
            min_forecast_span_s=0.1,
        )
        start, end = period_window("monthly", "UTC", datetime.now(UTC))
        assert end is not None and end - datetime.now(UTC) > timedelta(minutes=1)

        def status(usd: str) -> bytes:
            return BudgetStatus(
                budget_id=budget.id,
                period_start=start,
                period_end=end,
                partition=0,
                spend_usd=Decimal(usd),
            ).encode()

        assert await evaluator.on_status(status("0.10")) == []
        await asyncio.sleep(0.2)
        fired = await evaluator.on_status(status("0.20"))  # +0.10 in 0.2 s: gone long before
        assert [a.type for a in fired] == ["budget.forecast_breach"]
        assert fired[0].forecast_usd is not None and fired[0].forecast_usd > budget.limit_usd
        await asyncio.sleep(0.2)
        assert await evaluator.on_status(status("0.30")) == []  # once per window
    finally:
        await producer.stop()
