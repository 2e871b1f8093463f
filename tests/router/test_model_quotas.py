"""Provider quotas in the attempt loop: a model at its quota is skipped for the next
candidate without a try; every try, retries included, counts one request; a failed try gives
its tokens back and an answered one is settled at its actual tokens; a quota reached
everywhere says when the first model has room."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest

from router.breaker import BreakerBoard
from router.model_quotas import CallQuota, quota_subject
from router.providers import ProviderError
from router.rate_limits import RateLimiter, quota_ticket
from router.resilience import AttemptLoop, Exhausted
from tollway.config.schema import ModelConfig, ProviderConfig, RateLimits

NOW = 6000.0  # the start of a minute window


def _model(name: str, rpm: int | None = None, tpm: int | None = None) -> ModelConfig:
    quota = RateLimits(requests_per_minute=rpm, tokens_per_minute=tpm) if rpm or tpm else None
    return ModelConfig(name=name, provider="p", quota=quota)


PROVIDERS: Any = {
    "p": SimpleNamespace(config=ProviderConfig(name="p", type="sim", backoff_base_s=0))
}


async def _no_wait(_: float) -> None:
    await asyncio.sleep(0)


def _loop() -> AttemptLoop:
    return AttemptLoop(BreakerBoard(), sleep=_no_wait)


def _limiter() -> RateLimiter:
    return RateLimiter("me", clock=lambda: NOW)


async def _answer(provider: Any, model: ModelConfig) -> str:
    return model.name


def _counts(limiter: RateLimiter, model: str) -> tuple[int, int]:
    usage = limiter.usage(quota_subject(model))
    assert usage is not None
    return usage.requests, usage.tokens


async def _serve(limiter: RateLimiter, *models: ModelConfig, attempt: Any = _answer) -> str:
    quota = CallQuota(limiter, uuid4(), prompt_tokens=10)
    served = await _loop().run(models, PROVIDERS, attempt, route=None, deadline_s=10, quota=quota)
    return served.value  # type: ignore[no-any-return]


async def test_a_model_at_its_quota_is_skipped_for_the_next_candidate() -> None:
    limiter = _limiter()
    capped, spare = _model("capped", rpm=2), _model("spare")
    served = [await _serve(limiter, capped, spare) for _ in range(4)]
    assert served == ["capped", "capped", "spare", "spare"]
    assert _counts(limiter, "capped") == (2, 20)  # refusals count nothing
    assert limiter.usage(quota_subject("spare")) is None  # a model without a quota: no counts


async def test_the_skip_is_reported_and_no_try_is_recorded() -> None:
    limiter = _limiter()
    capped, spare = _model("capped", rpm=1), _model("spare")
    await _serve(limiter, capped, spare)
    quota = CallQuota(limiter, uuid4(), prompt_tokens=10)
    served = await _loop().run(
        [capped, spare], PROVIDERS, _answer, route=None, deadline_s=10, quota=quota
    )
    assert served.skipped.at_quota == ["capped"] and not served.skipped.circuit_open
    assert str(served.skipped) == "at quota: capped"
    assert [a.model for a in served.attempts] == ["spare"]


async def test_every_try_counts_a_request_and_failed_tries_give_their_tokens_back() -> None:
    limiter = _limiter()
    tries: list[str] = []

    async def failing_twice(provider: Any, model: ModelConfig) -> str:
        tries.append(model.name)
        if len(tries) <= 2:
            raise ProviderError("upstream 503", status=503)
        return model.name

    capped = _model("capped", rpm=5)
    assert await _serve(limiter, capped, attempt=failing_twice) == "capped"
    assert tries == ["capped"] * 3
    assert _counts(limiter, "capped") == (3, 10)  # three requests; one prompt still held


async def test_retries_stop_at_the_quota_and_the_next_candidate_serves() -> None:
    limiter = _limiter()
    tries: list[str] = []

    async def capped_fails(provider: Any, model: ModelConfig) -> str:
        tries.append(model.name)
        if model.name == "capped":
            raise ProviderError("upstream 500", status=500)
        return model.name

    assert await _serve(limiter, _model("capped", rpm=2), _model("spare"), attempt=capped_fails)
    assert tries == ["capped", "capped", "spare"]  # max_retries 2, but room for two tries


async def test_the_answered_try_is_settled_at_its_actual_tokens() -> None:
    limiter = _limiter()
    call_id = uuid4()
    quota = CallQuota(limiter, call_id, prompt_tokens=10)
    capped = _model("capped", tpm=1000)
    await _loop().run([capped], PROVIDERS, _answer, route=None, deadline_s=10, quota=quota)
    assert _counts(limiter, "capped") == (1, 10)  # the prompt's estimate, while it runs
    limiter.settle(quota_ticket(call_id), 250)  # what the gateway does when it publishes
    assert _counts(limiter, "capped") == (1, 250)


async def test_a_quota_reached_everywhere_says_when_the_first_model_has_room() -> None:
    limiter = _limiter()
    a, b = _model("a", rpm=1), _model("b", rpm=1)
    await _serve(limiter, a)
    await _serve(limiter, b)
    with pytest.raises(Exhausted) as exhausted:
        await _serve(limiter, a, b)
    assert exhausted.value.attempts == [] and exhausted.value.skipped.at_quota == ["a", "b"]
    assert 0 < exhausted.value.retry_in_s <= 120
    assert "no candidate could take the call (at quota: a, b)" in str(exhausted.value)


async def test_a_model_with_all_its_slots_busy_is_skipped_until_one_frees() -> None:
    """A self-hosted model serving at most one call at a time: a second call overflows to
    the next candidate while the first runs, and returns to it once the first has ended."""
    limiter = _limiter()
    one_slot = ModelConfig(name="local", provider="p", quota=RateLimits(max_parallel_requests=1))
    running = CallQuota(limiter, uuid4(), prompt_tokens=10)
    served = await _loop().run([one_slot], PROVIDERS, _answer, route=None, deadline_s=10,
                               quota=running)  # fmt: skip
    assert served.value == "local"  # answered; its stream runs until the gateway settles it
    assert await _serve(limiter, one_slot, _model("cloud")) == "cloud"
    limiter.settle(quota_ticket(running.call_id), 40)  # the first call's event is published
    assert await _serve(limiter, one_slot, _model("cloud")) == "local"
