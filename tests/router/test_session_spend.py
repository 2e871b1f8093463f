"""A session's spend against its limit and its downgrade threshold: this instance's calls plus
what the others publish, forgotten after a day idle, and nothing counted while neither is set;
the `sessions` settings that do not fit together are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from router.session_spend import SessionBudgetExceeded, SessionSpend, SessionSpendRecord
from tollway.config.schema import SessionPolicy, TollwayConfig

DAY = 24 * 3600.0


def _limit(usd: str) -> SessionPolicy:
    return SessionPolicy(limit_usd=Decimal(usd))


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _peer(instance: str, session: str, usd: str, at: float) -> SessionSpendRecord:
    return SessionSpendRecord(
        instance_id=instance,
        session_id=session,
        cost_usd=Decimal(usd),
        at=datetime.fromtimestamp(at, UTC),
    )


def test_a_session_is_refused_once_all_instances_together_reach_the_limit() -> None:
    clock = Clock()
    spend = SessionSpend(lambda: _limit("1.00"), "me", clock=clock)
    spend.add("run-1", Decimal("0.60"))
    spend.check("run-1")  # 0.60 of 1.00
    spend.apply(_peer("other", "run-1", "0.30", clock.now))
    spend.check("run-1")  # 0.90
    spend.apply(_peer("other", "run-1", "0.40", clock.now))  # the peer's total, not a delta
    with pytest.raises(SessionBudgetExceeded) as refused:
        spend.check("run-1")
    assert refused.value.details == {
        "session_id": "run-1",
        "limit_usd": "1.00",
        "spent_usd": "1.00",
    }
    assert refused.value.headers["x-should-retry"] == "false"
    assert refused.value.status_code == 429
    spend.check("run-2")  # other sessions go on
    spend.check("")  # a call in no session is never refused


def test_own_records_coming_back_are_not_counted_twice() -> None:
    spend = SessionSpend(lambda: _limit("1"), "me")
    spend.add("run-1", Decimal("0.7"))
    record = spend.record("run-1")
    assert record is not None and record.key == "me:run-1"
    spend.apply(SessionSpendRecord.model_validate_json(record.encode()))
    assert spend.spent("run-1") == Decimal("0.7")


def test_a_deleted_record_takes_that_instances_spend_away() -> None:
    clock = Clock()
    spend = SessionSpend(lambda: _limit("1"), "me", clock=clock)
    spend.apply(_peer("other", "claude-code:abc", "0.5", clock.now))
    spend.forget("other:claude-code:abc")  # session ids may hold colons
    assert spend.spent("claude-code:abc") == 0


def test_a_session_idle_for_a_day_is_forgotten_and_starts_again_at_zero() -> None:
    clock = Clock()
    spend = SessionSpend(lambda: _limit("1"), "me", clock=clock)
    spend.add("run-1", Decimal("0.9"))
    spend.apply(_peer("other", "run-1", "0.5", clock.now))
    clock.now += DAY - 1
    assert spend.forget_idle() == [] and spend.spent("run-1") == Decimal("1.4")
    clock.now += 2
    assert spend.spent("run-1") == 0
    spend.check("run-1")
    assert spend.forget_idle() == ["run-1"]  # this instance's, for the publisher to delete
    spend.add("run-1", Decimal("0.2"))
    assert spend.spent("run-1") == Decimal("0.2")


def test_the_idle_window_is_the_policys() -> None:
    clock = Clock()
    policy = SessionPolicy(limit_usd=Decimal("1"), idle_hours=0.5)
    spend = SessionSpend(lambda: policy, "me", clock=clock)
    spend.add("run-1", Decimal("0.9"))
    clock.now += 1801
    assert spend.spent("run-1") == 0 and spend.forget_idle() == ["run-1"]


def test_nothing_is_counted_or_refused_without_a_limit_or_threshold() -> None:
    policy = [SessionPolicy()]
    spend = SessionSpend(lambda: policy[0], "me")
    changed: list[str] = []
    spend.on_change = changed.append
    spend.add("run-1", Decimal("5"))
    spend.check("run-1")
    assert not spend.downgraded("run-1")
    assert spend.record("run-1") is None and changed == []
    policy[0] = SessionPolicy(downgrade_usd=Decimal("1"))  # a reload: counted from then on
    spend.add("run-1", Decimal("0.5"))
    assert spend.spent("run-1") == Decimal("0.5") and changed == ["run-1"]
    assert not spend.downgraded("run-1")
    spend.add("run-1", Decimal("0.5"))
    assert spend.downgraded("run-1") and not spend.downgraded("run-2")
    spend.check("run-1")  # a downgrade threshold refuses nothing


def test_sessions_settings_that_do_not_fit_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="downgrade_usd must be below limit_usd"):
        SessionPolicy(limit_usd=Decimal("5"), downgrade_usd=Decimal("5"))
    with pytest.raises(ValidationError, match="needs downgrade_to"):
        TollwayConfig.model_validate({"sessions": {"downgrade_usd": 1}})  # no economy tier
    with pytest.raises(ValidationError, match="unknown model or route 'gpt-9'"):
        TollwayConfig.model_validate({"sessions": {"downgrade_usd": 1, "downgrade_to": "gpt-9"}})
