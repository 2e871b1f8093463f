"""The proxy's budget decision, as pure logic: spend from status records, reservations for
calls in flight, and each action at 100 %."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

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
