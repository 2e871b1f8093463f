"""The attempt loop of one call: retries, per-attempt timeouts, a deadline, fallbacks, breakers.

The gateway hands over the plan's models in order and one `attempt` coroutine (a completion,
or a stream up to its first chunk). For each model, unless its circuit is open or it is at its
provider quota (router/model_quotas.py):

- try it within `attempt_timeout_s` (and never past the call's deadline);
- a retryable failure (429, 5xx, timeout, network) is retried up to `max_retries` times after a
  jittered exponential backoff ("full jitter": uniform in [0, min(max, base·2^n)]), or after the
  upstream's `Retry-After` when it sent one. A `Retry-After` longer than `retry_after_max_s`
  is not waited for: the next candidate serves the call instead, which is what the caller wants
  from a gateway with fallbacks;
- a model that exhausts its retries, or whose circuit opens, hands over to the next candidate;
- a non-retryable failure (a 400: the request itself is wrong) ends the call, since another model
  would refuse it too.

Every try is recorded as an `Attempt`, retries included, so the CallEvent tells the whole story.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client import Counter

from router.breaker import BreakerBoard, CircuitState
from router.model_quotas import CallQuota
from router.providers import Provider, ProviderError
from tollway.config.schema import ModelConfig, ProviderConfig, RouteConfig
from tollway.events import Attempt

T = TypeVar("T")

UPSTREAM_RETRIES = Counter(
    "tollway_upstream_retries_total",
    "Retries of the same model after a retryable failure",
    ["provider", "model"],
)
CIRCUIT_SKIPS = Counter(
    "tollway_circuit_skips_total",
    "Candidates skipped because their circuit was open",
    ["provider", "model"],
)


@dataclass(frozen=True)
class RetryPolicy:
    """The resilience settings for one model of one call (provider config, route overrides)."""

    max_retries: int
    attempt_timeout_s: float
    backoff_base_s: float
    backoff_max_s: float
    retry_after_max_s: float
    breaker_failures: int
    breaker_cooldown_s: float

    @classmethod
    def of(cls, provider: ProviderConfig, route: RouteConfig | None = None) -> RetryPolicy:
        retries = route.max_retries if route and route.max_retries is not None else None
        return cls(
            max_retries=provider.max_retries if retries is None else retries,
            attempt_timeout_s=provider.attempt_timeout_s or provider.timeout_s,
            backoff_base_s=provider.backoff_base_s,
            backoff_max_s=provider.backoff_max_s,
            retry_after_max_s=provider.retry_after_max_s,
            breaker_failures=provider.breaker_failures,
            breaker_cooldown_s=provider.breaker_cooldown_s,
        )

    def wait_before_retry(
        self, retry: int, retry_after: float | None, rng: random.Random
    ) -> float | None:
        """Seconds to wait before retry number `retry` (0-based), or None to fall back instead
        (the upstream asked for a longer pause than the cap)."""
        if retry_after is not None:
            if retry_after > self.retry_after_max_s:
                return None
            return retry_after + rng.uniform(0, min(self.backoff_base_s, retry_after / 10))
        return rng.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2**retry))


@dataclass
class Skips:
    """The candidates a call passed over without trying them, and why."""

    circuit_open: list[str] = field(default_factory=list)
    at_quota: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.circuit_open or self.at_quota)

    def __str__(self) -> str:
        parts = [
            f"{why}: {', '.join(models)}"
            for why, models in (("circuit open", self.circuit_open), ("at quota", self.at_quota))
            if models
        ]
        return "; ".join(parts)


@dataclass
class Served(Generic[T]):
    """The attempt that worked, and every try before it."""

    value: T
    provider: Provider
    model: ModelConfig
    attempts: list[Attempt]
    skipped: Skips


@dataclass(eq=False)
class Exhausted(Exception):
    """No model served the call. `deadline_hit`: the overall deadline ran out; no attempts and
    some `skipped`: every candidate's circuit is open or it is at its provider quota (retry
    after `retry_in_s`)."""

    attempts: list[Attempt]
    last_error: ProviderError | None
    skipped: Skips = field(default_factory=Skips)
    deadline_hit: bool = False
    retry_in_s: float = 0.0

    def __str__(self) -> str:
        if self.deadline_hit:
            return "the call's deadline passed before any model answered"
        if not self.attempts and self.skipped:
            return f"no candidate could take the call ({self.skipped})"
        return str(self.last_error) if self.last_error else "the route has no models"


@dataclass
class AttemptLoop:
    """Runs one call's attempts; the clock, sleep and randomness are injectable for tests."""

    board: BreakerBoard
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)

    async def run(
        self,
        models: Sequence[ModelConfig],
        providers: dict[str, Provider],
        attempt: Callable[[Provider, ModelConfig], Awaitable[T]],
        *,
        route: RouteConfig | None,
        deadline_s: float,
        quota: CallQuota | None = None,
    ) -> Served[T]:
        deadline = self.clock() + deadline_s
        attempts: list[Attempt] = []
        skipped = Skips()
        last_error: ProviderError | None = None
        retry_in: list[float] = []
        for model in models:
            provider = providers[model.provider]
            name = provider.config.name
            policy = RetryPolicy.of(provider.config, route)
            if not self.board.allow(name, model.name, policy.breaker_cooldown_s):
                CIRCUIT_SKIPS.labels(name, model.name).inc()
                skipped.circuit_open.append(model.name)
                retry_in.append(self.board.retry_in(name, model.name, policy.breaker_cooldown_s))
                continue
            for retry in range(policy.max_retries + 1):
                remaining = deadline - self.clock()
                if remaining <= 0:
                    self.board.released(name, model.name)
                    raise Exhausted(attempts, last_error, skipped, deadline_hit=True)
                if quota is not None and (room_in := quota.take(model)) is not None:
                    self.board.released(name, model.name)
                    skipped.at_quota.append(model.name)
                    retry_in.append(room_in)
                    break
                timeout = min(policy.attempt_timeout_s, remaining)
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(timeout):
                        value = await attempt(provider, model)
                except TimeoutError:
                    error = ProviderError(f"{name}: no answer within {timeout:.3g}s", status=504)
                except ProviderError as exc:
                    error = exc
                except BaseException:
                    self.board.released(name, model.name)
                    raise
                else:
                    attempts.append(_ok(name, model.name, started))
                    self.board.succeeded(name, model.name)
                    return Served(value, provider, model, attempts, skipped)
                attempts.append(_failed(name, model.name, error, started))
                last_error = error
                if quota is not None:
                    quota.failed()
                if not error.retryable:
                    self.board.released(name, model.name)
                    raise Exhausted(attempts, last_error, skipped)
                self.board.failed(name, model.name, policy.breaker_failures, str(error)[:300])
                if self.clock() >= deadline:
                    raise Exhausted(attempts, last_error, skipped, deadline_hit=True)
                if retry == policy.max_retries:
                    break
                if self.board.state(name, model.name) is CircuitState.OPEN:
                    break
                wait = policy.wait_before_retry(retry, error.retry_after, self.rng)
                if wait is None or self.clock() + wait >= deadline:
                    break
                UPSTREAM_RETRIES.labels(name, model.name).inc()
                await self.sleep(wait)
        raise Exhausted(attempts, last_error, skipped, retry_in_s=min(retry_in, default=0.0))


# Attempts are built from values tollway itself holds, so `model_construct` skips validation.
def _ok(provider: str, model: str, started: float) -> Attempt:
    return Attempt.model_construct(
        provider=provider, model=model, status="ok", duration_ms=_ms_since(started)
    )


def _failed(provider: str, model: str, error: ProviderError, started: float) -> Attempt:
    return Attempt.model_construct(
        provider=provider,
        model=model,
        status="error",
        error=str(error)[:300],
        http_status=error.status,
        duration_ms=_ms_since(started),
    )


def _ms_since(clock: float) -> int:
    return int((time.perf_counter() - clock) * 1000)
