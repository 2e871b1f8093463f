"""The proxy's budget decision, as pure logic: spend from status records, reservations for
calls in flight, settled costs pending until a status covers their offset, and each action
at 100 %."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson

from router.attribution import Attribution
from router.budget_gate import BudgetGate
from tollway.budget_events import BudgetStatus
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
