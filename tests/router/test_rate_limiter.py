"""The rate limiter's arithmetic: a sliding minute from two fixed windows, requests and tokens,
estimates replaced by actual tokens, peers' counts added, and a `retry-after` that is right."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from router.calls_in_flight import TTL_S
from router.errors import RateLimited
from router.rate_limits import STALE_WINDOWS, RateLimiter, RateUsage
from tollway.config.schema import RateLimits

RPM3 = RateLimits(requests_per_minute=3)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _limiter(at: float = 6000.0) -> tuple[RateLimiter, Clock]:
    clock = Clock(at)  # 6000 s: the start of minute 100
    return RateLimiter("me", clock=clock), clock


def _admits(limiter: RateLimiter, limits: RateLimits = RPM3, prompt: int = 10) -> bool:
    try:
        limiter.admit("k", limits, prompt, uuid4())
        return True
    except RateLimited:
        return False


def test_requests_are_capped_and_the_refusal_says_when_to_come_back() -> None:
    limiter, _ = _limiter(6030.0)
    assert [_admits(limiter) for _ in range(4)] == [True, True, True, False]
    with pytest.raises(RateLimited) as refused:
        limiter.admit("k", RPM3, 10, uuid4())
    headers = refused.value.headers
    assert (headers["x-ratelimit-limit-requests"], headers["x-ratelimit-remaining-requests"]) == (
        "3", "0",
    )  # fmt: skip
    # 3 calls in this window, 30 s in: only once the next window has slid a third of its way
    # (3 * (1 - s/60) + 1 <= 3 → s >= 20) is there room: 30 + 20 s
    assert headers["retry-after"] == "50"
    assert refused.value.status_code == 429 and refused.value.type == "rate_limit_exceeded"


@pytest.mark.parametrize("start", [6000.0, 6010.0, 6045.5, 6059.0])
def test_retry_after_is_exactly_when_room_comes_back(start: float) -> None:
    limiter, clock = _limiter(start)
    while _admits(limiter):
        pass
    with pytest.raises(RateLimited) as refused:
        limiter.admit("k", RPM3, 10, uuid4())
    wait = int(refused.value.headers["retry-after"])
    clock.now = start + wait - 1
    assert not _admits(limiter)
    clock.now = start + wait
    assert _admits(limiter)


def test_the_previous_minute_counts_as_much_as_it_still_overlaps() -> None:
    limiter, clock = _limiter(6000.0)
    assert all(_admits(limiter) for _ in range(3))
    clock.now = 6060.0 + 30  # half-way through the next window: 1.5 of the 3 still count
    assert _admits(limiter)  # 1.5 + 1 <= 3
    assert not _admits(limiter)  # 1.5 + 1 + 1 > 3
    clock.now = 6180.0  # two windows on: nothing counts
    assert all(_admits(limiter) for _ in range(3))


def test_tokens_count_the_prompt_first_then_what_was_used() -> None:
    limiter, _ = _limiter()
    limits = RateLimits(tokens_per_minute=100)
    first = uuid4()
    limiter.admit("k", limits, 60, first)
    limiter.admit("k", limits, 60, uuid4())  # 60 counted: still room
    assert not _admits(limiter, limits)  # 120 counted
    limiter.settle(first, 10)  # the first used 10 in all: 70 counted
    assert _admits(limiter, limits, prompt=0)


def test_a_call_that_used_nothing_gives_its_tokens_back_not_its_request() -> None:
    limiter, _ = _limiter()
    limits = RateLimits(requests_per_minute=2, tokens_per_minute=50)
    call = uuid4()
    limiter.admit("k", limits, 60, call)
    assert not _admits(limiter, limits)  # tokens spent
    limiter.release(call)
    assert _admits(limiter, limits, prompt=0)  # tokens back; now 2 requests
    assert not _admits(limiter, limits, prompt=0)  # and the requests are spent


def test_other_instances_counts_add_to_ours() -> None:
    limiter, _ = _limiter(6010.0)
    limiter.apply(RateUsage(instance_id="peer", key_id="k", window=100, requests=2, tokens=0))
    limiter.apply(RateUsage(instance_id="me", key_id="k", window=100, requests=9, tokens=0))
    limiter.apply(RateUsage(instance_id="peer", key_id="other", window=100, requests=9, tokens=0))
    assert [_admits(limiter) for _ in range(2)] == [True, False]
    # a newer record of the peer replaces its count; its old windows fall away
    limiter.apply(RateUsage(instance_id="peer", key_id="k", window=101, requests=0, tokens=0))
    limiter.apply(RateUsage(instance_id="peer", key_id="k", window=100, requests=0, tokens=0))
    assert _admits(limiter)


def test_what_this_instance_publishes_is_its_own_current_window() -> None:
    limiter, clock = _limiter(6010.0)
    limiter.admit("k", RPM3, 25, uuid4())
    usage = limiter.usage("k")
    assert usage is not None
    assert (usage.instance_id, usage.window, usage.requests, usage.tokens) == ("me", 100, 1, 25)
    clock.now = 6070.0
    rolled = limiter.usage("k")
    assert rolled is not None and (rolled.window, rolled.requests) == (101, 0)
    assert limiter.usage("nobody") is None


def test_a_call_refused_after_admission_counts_nothing() -> None:
    limiter, _ = _limiter()
    call = uuid4()
    limiter.admit("k", RPM3, 10, call)
    limiter.undo(call)  # a budget refused it: never sent
    assert [_admits(limiter) for _ in range(4)] == [True, True, True, False]


# -- calls in flight ---------------------------------------------------------------------
TWO_AT_ONCE = RateLimits(max_parallel_requests=2)


def test_calls_in_flight_are_capped_until_one_ends_however_it_ends() -> None:
    limiter, _ = _limiter(6010.0)
    first, second = uuid4(), uuid4()
    limiter.admit("k", TWO_AT_ONCE, 10, first)
    limiter.admit("k", TWO_AT_ONCE, 10, second)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("k", TWO_AT_ONCE, 10, uuid4())
    assert refused.value.headers["retry-after"] == "1"
    assert refused.value.details["limit"] == "parallel_requests"
    assert "2 calls in flight at once" in refused.value.message
    assert limiter.in_flight("k") == 2  # a refusal holds no slot

    limiter.settle(first, 100)  # answered
    third = uuid4()
    limiter.admit("k", TWO_AT_ONCE, 10, third)
    limiter.release(second)  # failed at its provider
    fourth = uuid4()
    limiter.admit("k", TWO_AT_ONCE, 10, fourth)
    limiter.undo(third)  # refused by a budget after all
    assert _admits(limiter, TWO_AT_ONCE)
    assert limiter.in_flight("k") == 2 and limiter.calls.busy() == ["k"]


def test_a_peers_calls_in_flight_count_until_its_record_is_stale() -> None:
    limiter, clock = _limiter(6010.0)
    sent = datetime.fromtimestamp(6010.0, UTC)
    limiter.apply(
        RateUsage(instance_id="peer", key_id="k", window=100, requests=5, tokens=0,
                  in_flight=2, sent_at=sent)
    )  # fmt: skip
    assert limiter.in_flight("k") == 2
    assert not _admits(limiter, TWO_AT_ONCE)
    clock.now = 6010.0 + TTL_S  # no refresh from it since: a dead replica's slots
    assert limiter.in_flight("k") == 0
    assert _admits(limiter, TWO_AT_ONCE)


def test_a_record_from_a_clock_running_ahead_counts_as_sent_now() -> None:
    limiter, clock = _limiter(6010.0)
    ahead = datetime.fromtimestamp(6010.0 + 3600, UTC)
    limiter.apply(
        RateUsage(instance_id="peer", key_id="k", window=100, requests=0, tokens=0,
                  in_flight=1, sent_at=ahead)
    )  # fmt: skip
    clock.now = 6010.0 + TTL_S  # not an hour more: it lapses like any other
    assert limiter.in_flight("k") == 0


def test_what_this_instance_publishes_includes_its_calls_in_flight() -> None:
    limiter, _ = _limiter(6010.0)
    call = uuid4()
    limiter.admit("k", RPM3, 10, call)
    usage = limiter.usage("k")
    assert usage is not None and usage.in_flight == 1
    limiter.settle(call, 20)
    ended = limiter.usage("k")
    assert ended is not None and ended.in_flight == 0 and limiter.calls.busy() == []


def test_a_long_stream_keeps_its_slot_and_a_call_that_never_ends_frees_it() -> None:
    limiter, clock = _limiter(6010.0)
    limiter.admit("k", TWO_AT_ONCE, 10, uuid4())
    clock.now += 5 * 60  # five minutes on, the stream still runs
    limiter.admit("k", TWO_AT_ONCE, 10, uuid4())
    assert limiter.in_flight("k") == 2
    clock.now += (STALE_WINDOWS - 4) * 60  # the first call's window is forgotten
    limiter.admit("k", TWO_AT_ONCE, 10, uuid4())
    assert limiter.in_flight("k") == 2
