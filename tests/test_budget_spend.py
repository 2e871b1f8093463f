"""Budget spend in the worker: counted once from the ledger's new rows, published per
partition, kept across a worker restart by the Faust changelog, and rebuilt from the ledger
(with no double counting) when the broker — and with it the changelog — is gone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from ingest.budget_spend import REBUILT
from tollway.config import load_config
from tollway.config.schema import BudgetConfig, BudgetScope, TollwayConfig
from tollway.events import CallEvent
from tollway.server import serving
from tollway.topics import Topics

from .pipeline import eventually, produce, worker_app

pytestmark = pytest.mark.integration

BUDGETS = [
    BudgetConfig(id="mkt", scope=BudgetScope(business_line="marketing"), limit_usd=Decimal(100)),
    BudgetConfig(
        id="seo-daily",
        scope=BudgetScope(business_line="marketing", project="seo"),
        period="daily",
        timezone="Europe/Paris",
        limit_usd=Decimal(10),
    ),
]


def _config() -> TollwayConfig:
    return load_config(None).model_copy(update={"budgets": BUDGETS})


def _events(n: int, offset: int = 0) -> list[CallEvent]:
    return [
        CallEvent(
            ts=datetime.now(UTC),
            business_line=["marketing", "support"][i % 2],
            project=["seo", "campaigns", "helpdesk"][i % 3],
            key_id=f"k_{i % 5}",
            model="gpt-4o-mini",
            cost_usd=Decimal("0.001") * (i + offset + 1),
            status="error" if i % 7 == 6 else "ok",
        )
        for i in range(n)
    ]


def _expected(events: list[CallEvent], budget: BudgetConfig) -> Decimal:
    return sum(
        (
            e.cost_usd
            for e in events
            if e.status == "ok"
            and e.business_line == budget.scope.business_line
            and (budget.scope.project is None or e.project == budget.scope.project)
        ),
        Decimal(0),
    )


async def _published_spend(bootstrap: str, topic: str) -> dict[str, Decimal]:
    """Latest status per key, summed over partitions, per budget."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    latest: dict[bytes, dict[str, object]] = {}
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                break
            for records in batch.values():
                for record in records:
                    latest[record.key] = orjson.loads(record.value)
    finally:
        await consumer.stop()
    totals: dict[str, Decimal] = {}
    for status in latest.values():
        budget = str(status["budget_id"])
        totals[budget] = totals.get(budget, Decimal(0)) + Decimal(str(status["spend_usd"]))
    return totals


async def test_spend_survives_restarts_and_is_rebuilt_from_the_ledger(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path
) -> None:
    topics = Topics(namespace)
    first, later = _events(60), _events(30, offset=100)
    expected = {b.id: _expected(first, b) for b in BUDGETS}

    async def spend() -> dict[str, Decimal]:
        return await _published_spend(kafka_bootstrap, topics.budget_status)

    async with serving(worker_app(kafka_bootstrap, namespace, store, tmp_path, _config())):
        await produce(kafka_bootstrap, topics.calls, first + first[:10])  # with redeliveries
        assert await eventually(spend, expected) == expected

    # a worker restart: the Faust changelog brings the table back, nothing is rebuilt
    rebuilt_before = REBUILT._value.get()
    async with serving(worker_app(kafka_bootstrap, namespace, store, tmp_path, _config())):
        await asyncio.sleep(2)  # time to restore the table and publish its statuses again
        # a restore that stopped short of a changelog's last records published stale spend
        # for good (keys of both budgets in one batch: the dates in the keys decide that)
        assert await eventually(spend, expected) == expected
        assert REBUILT._value.get() == rebuilt_before

    # the broker "restarted": fresh topics (a new namespace), the same ledger
    fresh = namespace + "after."
    fresh_topics = Topics(fresh)

    async def fresh_spend() -> dict[str, Decimal]:
        return await _published_spend(kafka_bootstrap, fresh_topics.budget_status)

    async with serving(worker_app(kafka_bootstrap, fresh, store, tmp_path, _config())):
        assert await eventually(fresh_spend, expected) == expected  # rebuilt from the ledger
        assert REBUILT._value.get() > rebuilt_before
        await produce(kafka_bootstrap, fresh_topics.calls, later + first[:5])  # old ones again
        grown = {b.id: expected[b.id] + _expected(later, b) for b in BUDGETS}
        assert await eventually(fresh_spend, grown) == grown  # counted once, on top of the rebuild
        ledger = await store.query(
            "SELECT toString(sum(cost_usd)) AS s FROM calls"
            " WHERE business_line = 'marketing' AND status = 'ok'"
        )
        assert Decimal(ledger.rows[0]["s"]) == grown["mkt"]


async def _latest_statuses(bootstrap: str, topic: str) -> dict[bytes, dict[str, object]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    latest: dict[bytes, dict[str, object]] = {}
    try:
        while batch := await consumer.getmany(timeout_ms=500):
            for records in batch.values():
                for record in records:
                    latest[record.key] = orjson.loads(record.value)
    finally:
        await consumer.stop()
    return latest


async def _last_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The offset of each partition's last record, as a consumer reads it."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    last: dict[int, int] = {}
    try:
        while batch := await consumer.getmany(timeout_ms=500):
            for tp, records in batch.items():
                last[tp.partition] = max(last.get(tp.partition, -1), records[-1].offset)
    finally:
        await consumer.stop()
    return last


async def test_each_status_says_through_which_offset_it_has_counted(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path
) -> None:
    """What a proxy releases its held costs by: every call here counts for both budgets, so
    each partition's last status has counted through that partition's last offset."""
    topics = Topics(namespace)
    events = [
        CallEvent(ts=datetime.now(UTC), business_line="marketing", project="seo",
                  key_id=f"k_{i % 5}", model="gpt-4o-mini", cost_usd=Decimal("0.001"))
        for i in range(40)
    ]  # fmt: skip
    expected = {b.id: Decimal("0.040") for b in BUDGETS}
    async with serving(worker_app(kafka_bootstrap, namespace, store, tmp_path, _config())):
        await produce(kafka_bootstrap, topics.calls, events)
        spend = await eventually(
            lambda: _published_spend(kafka_bootstrap, topics.budget_status), expected
        )
        assert spend == expected
    last = await _last_offsets(kafka_bootstrap, topics.calls)
    statuses = (await _latest_statuses(kafka_bootstrap, topics.budget_status)).values()
    through = {
        (str(s["budget_id"]), int(str(s["partition"]))): s["counted_through_offset"]
        for s in statuses
        if Decimal(str(s["spend_usd"])) > 0
    }
    assert through == {(b.id, p): offset for b in BUDGETS for p, offset in last.items()}
