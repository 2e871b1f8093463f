"""The proxy's budget decision, as pure logic: spend from status records, reservations for
calls in flight, settled costs pending until a status covers their offset, the other proxy
instances' holds, and each action at 100 %."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError

from router.attribution import Attribution
from router.budget_gate import BudgetGate
from router.budget_holds import HoldsExchange
from tollway.budget_events import BudgetHold, BudgetStatus
from tollway.budgets import period_window
from tollway.config.schema import BudgetConfig, BudgetScope, TollwayConfig

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
MONTH = period_window("monthly", "UTC", NOW)


def who(line: str = "marketing", project: str = "seo") -> Attribution:
    return Attribution(line, project, "chat", "", "k_1", "")


def gate(*budgets: BudgetConfig, grace: float = 60.0) -> BudgetGate:
    config = TollwayConfig.model_construct(budgets=list(budgets))  # budgets only: no catalogue
    return BudgetGate(lambda: config, settle_grace_s=grace)


def budget(action: str = "block", limit: str = "10", **scope: str) -> BudgetConfig:
    return BudgetConfig(
        id=f"b-{action}",
        scope=BudgetScope(**scope),
        limit_usd=Decimal(limit),
        action=action,  # type: ignore[arg-type]
        downgrade_to="gpt-4o-mini" if action == "downgrade" else None,
    )


def spent(g: BudgetGate, budget_id: str, *per_partition: str) -> None:
    for partition, usd in enumerate(per_partition):
        g.apply(BudgetStatus(budget_id=budget_id, period_start=MONTH[0], period_end=MONTH[1],
                             partition=partition, spend_usd=Decimal(usd)))  # fmt: skip


def test_under_the_limit_calls_pass_and_name_their_budgets() -> None:
    g = gate(budget(business_line="marketing"))
    spent(g, "b-block", "4", "5")
    decision = g.admit(who(), "gpt-4o", Decimal("0.5"), NOW)
    assert (decision.action, decision.budget_ids) == ("none", ["b-block"])


def test_spend_summed_over_partitions_blocks_at_the_limit() -> None:
    g = gate(budget(business_line="marketing"))
    spent(g, "b-block", "4", "6")
    decision = g.admit(who(), "gpt-4o", Decimal("0.01"), NOW)
    assert decision.action == "blocked"
    assert decision.refusal is not None
    assert (decision.refusal.spent_usd, decision.refusal.limit_usd) == (Decimal(10), Decimal(10))
    assert decision.refusal.period_end == MONTH[1]


def test_reservations_stop_concurrent_calls_once_the_limit_is_reserved() -> None:
    g = gate(budget(business_line="marketing"))
    spent(g, "b-block", "9")
    first = g.admit(who(), "gpt-4o", Decimal("0.6"), NOW)
    second = g.admit(who(), "gpt-4o", Decimal("0.6"), NOW)  # 9 + 0.6 reserved < 10: admitted
    third = g.admit(who(), "gpt-4o", Decimal("0.6"), NOW)  # 9 + 1.2 ≥ 10: refused
    assert [d.action for d in (first, second, third)] == ["none", "none", "blocked"]
    assert third.refusal is not None and third.refusal.reserved_usd == Decimal("1.2")


def test_settled_cost_counts_until_the_worker_catches_up() -> None:
    g = gate(budget(business_line="marketing"), grace=60)
    spent(g, "b-block", "9")
    call = g.admit(who(), "gpt-4o", Decimal("5"), NOW)
    g.settle(call, Decimal("1.5"))  # the estimate was pessimistic; 1.5 is pending
    assert g.admit(who(), "gpt-4o", Decimal("0.1"), NOW).action == "blocked"


def test_pending_cost_expires_after_the_grace_period() -> None:
    g = gate(budget(business_line="marketing"), grace=0)
    spent(g, "b-block", "9")
    g.settle(g.admit(who(), "gpt-4o", Decimal("5"), NOW), Decimal("1.5"))
    assert g.admit(who(), "gpt-4o", Decimal("0.1"), NOW).action == "none"


def test_downgrade_and_alert_only() -> None:
    g = gate(budget("downgrade", business_line="marketing"), budget("alert_only", project="seo"))
    spent(g, "b-downgrade", "10")
    spent(g, "b-alert_only", "10")
    decision = g.admit(who(), "gpt-4o", Decimal("0.1"), NOW)
    assert (decision.action, decision.downgrade_to) == ("downgraded", "gpt-4o-mini")
    only_alert = g.admit(who(line="support"), "gpt-4o", Decimal("0.1"), NOW)
    assert only_alert.action == "warned"


def test_budgets_of_other_scopes_and_windows_do_not_count() -> None:
    g = gate(budget(business_line="support"))
    spent(g, "b-block", "100")
    assert g.admit(who(), "gpt-4o", Decimal(1), NOW).action == "none"
    g2 = gate(budget(business_line="marketing"))
    spent(g2, "b-block", "100")  # last month's window…
    next_month = datetime(2026, 12, 2, tzinfo=UTC)
    assert g2.admit(who(), "gpt-4o", Decimal(1), next_month).action == "none"  # …resets


def counted(g: BudgetGate, budget_id: str, partition: int, usd: str, through: int | None) -> None:
    """A worker status for one partition, counted through `through` (None: a reconciliation)."""
    g.apply(BudgetStatus(budget_id=budget_id, period_start=MONTH[0], period_end=MONTH[1],
                         partition=partition, spend_usd=Decimal(usd),
                         counted_through_offset=through))  # fmt: skip


def test_pending_cost_is_released_once_a_status_covers_its_offset() -> None:
    g = gate(budget(business_line="marketing"), grace=60)
    counted(g, "b-block", 0, "9", through=41)
    delivery = g.settle(g.admit(who(), "gpt-4o", Decimal("5"), NOW), Decimal("1.5"))
    assert delivery is not None
    delivery(0, 42)  # Kafka took the event at offset 42 of partition 0
    assert g.admit(who(), "gpt-4o", Decimal("0.1"), NOW).action == "blocked"  # 9 + 1.5 pending
    counted(g, "b-block", 1, "0", through=99)  # another partition's count says nothing about it
    counted(g, "b-block", 0, "9", through=41)  # nor a status that has not reached it
    assert g.admit(who(), "gpt-4o", Decimal("0.1"), NOW).action == "blocked"
    counted(g, "b-block", 0, "9.2", through=42)  # counted: 9.2 spent, nothing held twice
    decision = g.admit(who(), "gpt-4o", Decimal("0.1"), NOW)
    assert decision.action == "none"
    assert g._held(("b-block", MONTH[0])) == Decimal("0.1")  # only the new reservation


def test_a_delivery_reported_after_the_covering_status_releases_at_once() -> None:
    g = gate(budget(business_line="marketing"), grace=60)
    delivery = g.settle(g.admit(who(), "gpt-4o", Decimal("1"), NOW), Decimal("1"))
    assert delivery is not None
    counted(g, "b-block", 2, "1", through=7)
    delivery(2, 7)
    assert g._held(("b-block", MONTH[0])) == Decimal(0)


def test_a_status_from_before_the_call_releases_nothing() -> None:
    """After the embedded broker restarts, offsets start again from 0: a stale record's high
    offset must not count a new call as included."""
    g = gate(budget(business_line="marketing"), grace=60)
    counted(g, "b-block", 0, "9", through=5_000)
    delivery = g.settle(g.admit(who(), "gpt-4o", Decimal("1"), NOW), Decimal("1"))
    assert delivery is not None
    delivery(0, 3)
    assert g._held(("b-block", MONTH[0])) == Decimal(1)


def test_pending_cost_without_a_known_offset_keeps_the_time_based_grace() -> None:
    g = gate(budget(business_line="marketing"), grace=60)
    counted(g, "b-block", 0, "9", through=10)
    g.settle(g.admit(who(), "gpt-4o", Decimal("5"), NOW), Decimal("1.5"))  # spooled: no offset
    counted(g, "b-block", 0, "9", through=1_000)  # no status can vouch for it
    assert g.admit(who(), "gpt-4o", Decimal("0.1"), NOW).action == "blocked"
    g.settle_grace_s = 0  # …until the grace has passed
    assert g.admit(who(), "gpt-4o", Decimal("0.1"), NOW).action == "none"


def test_a_reconciliation_keeps_the_previous_claim() -> None:
    g = gate(budget(business_line="marketing"), grace=60)
    counted(g, "b-block", 0, "2", through=20)
    first = g.settle(g.admit(who(), "gpt-4o", Decimal("1"), NOW), Decimal("1"))
    second = g.settle(g.admit(who(), "gpt-4o", Decimal("1"), NOW), Decimal("1"))
    assert first is not None and second is not None
    first(0, 21)
    second(0, 22)
    counted(g, "b-block", 0, "4", through=None)  # from the ledger: claims no offset
    assert g._held(("b-block", MONTH[0])) == Decimal(2)
    counted(g, "b-block", 0, "3", through=21)
    assert g._held(("b-block", MONTH[0])) == Decimal(1)


def test_a_delivered_call_no_status_covers_is_released_after_the_count_wait() -> None:
    g = gate(budget(business_line="marketing"), grace=0)
    delivery = g.settle(g.admit(who(), "gpt-4o", Decimal("1"), NOW), Decimal("1"))
    assert delivery is not None
    delivery(0, 3)  # delivered: the settle grace no longer applies…
    assert g._held(("b-block", MONTH[0])) == Decimal(1)
    g.count_wait_s = 0  # …the (longer) wait for the worker's count does
    assert g._held(("b-block", MONTH[0])) == Decimal(0)


def test_each_budget_of_a_call_is_released_by_its_own_status() -> None:
    g = gate(budget(business_line="marketing"), budget("alert_only", project="seo"))
    delivery = g.settle(g.admit(who(), "gpt-4o", Decimal("1"), NOW), Decimal("0.5"))
    assert delivery is not None
    delivery(1, 9)
    counted(g, "b-block", 1, "0.5", through=9)
    assert g._held(("b-block", MONTH[0])) == Decimal(0)
    assert g._held(("b-alert_only", MONTH[0])) == Decimal("0.5")
    counted(g, "b-alert_only", 1, "0.5", through=9)
    assert g._held(("b-alert_only", MONTH[0])) == Decimal(0)


def test_nothing_is_pending_for_a_free_or_failed_call() -> None:
    g = gate(budget(business_line="marketing"))
    assert g.settle(g.admit(who(), "gpt-4o", Decimal("1"), NOW), Decimal(0)) is None
    assert g._held(("b-block", MONTH[0])) == Decimal(0)


def test_status_records_without_the_offset_still_parse() -> None:
    old = (
        b'{"schema_version": 1, "budget_id": "b", "period_start": "2026-11-01T00:00:00Z",'
        b' "period_end": null, "partition": 3, "spend_usd": "1.5", "calls": 2}'
    )
    status = BudgetStatus.model_validate(orjson.loads(old))
    assert (status.counted_through_offset, status.spend_usd) == (None, Decimal("1.5"))
    new = BudgetStatus.model_validate(orjson.loads(status.model_copy(
        update={"counted_through_offset": 17}).encode()))  # fmt: skip
    assert new.counted_through_offset == 17


# -- the other replicas' holds (router/budget_holds.py) -------------------------------------
WINDOW = ("b-block", MONTH[0])


def peer(g: BudgetGate, instance: str, usd: str, age_s: float = 0.0) -> None:
    """A hold record from another proxy instance, sent `age_s` ago."""
    sent = datetime.now(UTC) - timedelta(seconds=age_s)
    g.peers.apply(BudgetHold(instance_id=instance, budget_id="b-block", period_start=MONTH[0],
                             held_usd=Decimal(usd), sent_at=sent))  # fmt: skip


def test_peers_holds_count_against_the_limit() -> None:
    g = gate(budget(business_line="marketing"))
    spent(g, "b-block", "9")
    peer(g, "other", "0.6")
    assert g.admit(who(), "gpt-4o", Decimal("0.1"), NOW).action == "none"  # 9 + 0.6 < 10
    peer(g, "other", "1.2")  # the peer's latest total replaces its previous one
    decision = g.admit(who(), "gpt-4o", Decimal("0.1"), NOW)  # 9 + 0.1 own + 1.2 ≥ 10
    assert decision.action == "blocked"
    assert decision.refusal is not None and decision.refusal.reserved_usd == Decimal("1.3")


def test_holds_of_two_peers_are_summed_and_a_zero_record_clears_one() -> None:
    g = gate(budget(business_line="marketing"))
    spent(g, "b-block", "9")
    peer(g, "a", "0.5")
    peer(g, "b", "0.5")
    assert g.peers.total(WINDOW) == Decimal(1)
    assert g.admit(who(), "gpt-4o", Decimal("0.1"), NOW).action == "blocked"
    peer(g, "a", "0")
    assert g.peers.total(WINDOW) == Decimal("0.5")
    assert g.admit(who(), "gpt-4o", Decimal("0.1"), NOW).action == "none"
    peer(g, "b", "0")
    assert g.peers.total(WINDOW) == Decimal(0) and not g.peers._held


def test_own_records_are_ignored() -> None:
    g = gate(budget(business_line="marketing"))
    peer(g, g.instance_id, "100")  # our own total, read back from the topic
    assert g.peers.total(WINDOW) == Decimal(0)
    assert g.admit(who(), "gpt-4o", Decimal("0.1"), NOW).action == "none"


def test_stale_records_are_ignored_and_fresh_ones_expire() -> None:
    g = gate(budget(business_line="marketing"))
    clock = [1000.0]
    g.peers.clock = lambda: clock[0]
    peer(g, "crashed", "100", age_s=g.peers.ttl_s + 1)  # read at start-up, long dead
    assert g.peers.total(WINDOW) == Decimal(0)
    peer(g, "live", "1", age_s=5)  # counts for the rest of its TTL
    peer(g, "later", "2", age_s=0)
    assert g.peers.total(WINDOW) == Decimal(3)
    clock[0] += g.peers.ttl_s - 5 + 0.01  # "live" was not refreshed: it stops counting
    assert g.peers.total(WINDOW) == Decimal(2)
    clock[0] += 5
    assert g.peers.total(WINDOW) == Decimal(0)


def test_a_record_from_a_clock_running_ahead_counts_as_sent_now() -> None:
    g = gate(budget(business_line="marketing"))
    peer(g, "ahead", "1", age_s=-3)
    assert g.peers.total(WINDOW) == Decimal(1)


def test_the_gate_publishes_coalesced_totals_and_a_zero_at_the_end() -> None:
    g = gate(budget(business_line="marketing"))
    g._exchange = HoldsExchange("127.0.0.1:1", "holds", g.peers, g._held)  # never started
    publisher = g._exchange.publisher
    sent: list[BudgetHold] = []

    async def capture(hold: BudgetHold) -> None:
        sent.append(hold)

    publisher._send = capture  # type: ignore[method-assign]
    calls = [g.admit(who(), "gpt-4o", Decimal("0.25"), NOW) for _ in range(4)]
    asyncio.run(publisher.publish_due())
    assert [(h.instance_id, h.budget_id, h.held_usd) for h in sent] == [
        (g.instance_id, "b-block", Decimal(1))
    ]  # four calls, one record
    asyncio.run(publisher.publish_due())
    assert len(sent) == 1  # nothing changed, nothing sent
    deliveries = [g.settle(c, Decimal("0.2")) for c in calls]
    for offset, delivery in enumerate(deliveries):
        assert delivery is not None
        delivery(0, offset)
    asyncio.run(publisher.publish_due())
    assert sent[-1].held_usd == Decimal("0.8")  # settled, not yet counted by the worker
    publisher.refresh_s = 0  # a refresh is due: the same total again
    asyncio.run(publisher.publish_due())
    assert sent[-1].held_usd == Decimal("0.8") and len(sent) == 3
    counted(g, "b-block", 0, "0.8", through=3)  # the worker counted them: nothing held
    asyncio.run(publisher.publish_due())
    assert sent[-1].held_usd == Decimal(0) and not publisher._sent
    asyncio.run(publisher.publish_due())
    assert len(sent) == 4  # a zero is sent once


def test_hold_records_round_trip_and_key_by_instance_budget_and_window() -> None:
    hold = BudgetHold(instance_id="i1", budget_id="b", period_start=MONTH[0],
                      held_usd=Decimal("0.000460"))  # fmt: skip
    assert hold.key == f"i1|b|{MONTH[0].isoformat()}"
    data = orjson.loads(hold.encode())
    assert data["held_usd"] == "0.000460"
    assert BudgetHold.model_validate(data) == hold


def test_an_unreachable_broker_drops_totals_without_failing_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    g = gate(budget(business_line="marketing"))
    g._exchange = HoldsExchange("127.0.0.1:1", "holds", g.peers, g._held)
    publisher = g._exchange.publisher

    class Down:
        async def send(self, *args: object, **kwargs: object) -> object:
            raise KafkaTimeoutError()

    publisher.sender._producer = Down()  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="router.best_effort"):
        for _ in range(3):
            assert g.admit(who(), "gpt-4o", Decimal("0.1"), NOW).action == "none"
            asyncio.run(publisher.publish_due())
    assert len([r for r in caplog.records if "cannot be shared" in r.message]) == 1


def test_a_zero_total_is_followed_by_a_tombstone_of_its_key() -> None:
    """Instance ids are new in every process: without tombstones a compacted holds topic would
    keep one zero record per process and window for ever, for every follower to read."""
    g = gate(budget(business_line="marketing"))
    publisher = HoldsExchange("127.0.0.1:1", "holds", g.peers, g._held).publisher
    sent: list[tuple[bytes | None, bytes]] = []

    class Producer:
        async def send(self, topic: str, value: bytes | None, key: bytes) -> asyncio.Future[None]:
            sent.append((value, key))
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    publisher.sender._producer = Producer()  # type: ignore[assignment]
    held = BudgetHold(instance_id="i1", budget_id="b", period_start=MONTH[0], held_usd=Decimal(1))
    asyncio.run(publisher._send(held))
    assert [value is None for value, _ in sent] == [False]
    asyncio.run(publisher._send(held.model_copy(update={"held_usd": Decimal(0)})))
    assert [value is None for value, _ in sent] == [False, False, True]
    zero, tombstone = sent[1:]
    assert orjson.loads(zero[0] or b"")["held_usd"] == "0" and tombstone[1] == zero[1]
