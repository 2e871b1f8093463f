"""The breaker's state machine and the retry arithmetic, on a fake clock (no network)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from router.breaker import BreakerBoard, CircuitState
from router.providers.base import parse_retry_after
from router.resilience import RetryPolicy
from tollway.config.schema import ProviderConfig, RouteConfig


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_open_half_open_closed() -> None:
    clock = Clock()
    board = BreakerBoard(clock)
    for _ in range(2):
        assert board.allow("p", "m", cooldown_s=10)
        board.failed("p", "m", threshold=3)
    assert board.state("p", "m") is CircuitState.CLOSED
    board.failed("p", "m", threshold=3)
    assert board.state("p", "m") is CircuitState.OPEN
    assert not board.allow("p", "m", cooldown_s=10)
    assert board.retry_in("p", "m", cooldown_s=10) == 10
    clock.now += 10
    assert board.allow("p", "m", cooldown_s=10)  # the one probe
    assert board.state("p", "m") is CircuitState.HALF_OPEN
    assert not board.allow("p", "m", cooldown_s=10)  # others wait for its verdict
    board.failed("p", "m", threshold=3)  # a failed probe reopens at once
    assert board.state("p", "m") is CircuitState.OPEN
    clock.now += 10
    assert board.allow("p", "m", cooldown_s=10)
    board.succeeded("p", "m")
    assert board.state("p", "m") is CircuitState.CLOSED
    assert board.allow("p", "m", cooldown_s=10) and board.allow("p", "m", cooldown_s=10)


def test_only_a_closed_circuit_opening_is_told_with_its_last_error() -> None:
    clock = Clock()
    opened: list[tuple[str, str, int, str]] = []
    board = BreakerBoard(clock, on_open=lambda c: opened.append(
        (c.provider, c.model, c.failures, c.last_error)))  # fmt: skip
    board.failed("p", "m", threshold=2, error="p: HTTP 503")
    board.failed("p", "m", threshold=2, error="p: HTTP 500")
    assert opened == [("p", "m", 2, "p: HTTP 500")]
    clock.now += 10
    assert board.allow("p", "m", cooldown_s=10)
    board.failed("p", "m", threshold=2)  # the probe failed: open again, not told again
    assert board.state("p", "m") is CircuitState.OPEN and len(opened) == 1
    clock.now += 10
    assert board.allow("p", "m", cooldown_s=10)
    board.succeeded("p", "m")
    board.failed("p", "m", threshold=1)  # closed, then open: told
    assert len(opened) == 2


def test_replicas_opening_one_circuit_in_one_minute_raise_one_alert() -> None:
    from router.breaker import Circuit
    from router.proxy_alerts import circuit_alert

    circuit = Circuit("openai", "gpt-4o", failures=5, last_error="openai: HTTP 503")
    at = datetime(2026, 11, 27, 12, 0, 5, tzinfo=UTC)
    alert = circuit_alert(circuit, at)
    assert alert.alert_id == "circuit:openai:gpt-4o:20261127T1200"
    assert circuit_alert(circuit, at + timedelta(seconds=50)).alert_id == alert.alert_id
    assert circuit_alert(circuit, at + timedelta(minutes=1)).alert_id != alert.alert_id
    assert (alert.type, alert.provider, alert.model, alert.failures) == (
        "provider.circuit_opened", "openai", "gpt-4o", 5,
    )  # fmt: skip


def test_a_success_resets_the_count() -> None:
    board = BreakerBoard(Clock())
    board.failed("p", "m", threshold=2)
    board.succeeded("p", "m")
    board.failed("p", "m", threshold=2)
    assert board.state("p", "m") is CircuitState.CLOSED


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (parse_retry_after(later) or 0) <= 30
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier) == 0.0


def test_backoff_and_retry_after_cap() -> None:
    provider = ProviderConfig(
        name="p", type="sim", backoff_base_s=0.5, backoff_max_s=2.0, retry_after_max_s=10
    )
    policy = RetryPolicy.of(provider)
    rng = random.Random(7)
    assert policy.max_retries == 2 and policy.attempt_timeout_s == provider.timeout_s
    for retry in range(6):
        wait = policy.wait_before_retry(retry, None, rng)
        assert wait is not None and 0 <= wait <= min(2.0, 0.5 * 2**retry)
    wait = policy.wait_before_retry(0, 4.0, rng)
    assert wait is not None and 4.0 <= wait <= 4.5
    assert policy.wait_before_retry(0, 60.0, rng) is None  # fall back instead of waiting
    route = RouteConfig(name="r", candidates=["m"], max_retries=0)
    assert RetryPolicy.of(provider, route).max_retries == 0
