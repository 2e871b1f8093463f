"""At-least-once delivery of one payload to one endpoint, every attempt on the record.

A `Deliverer` POSTs a payload with fresh Standard Webhooks headers per attempt (the same
`webhook-id` every time, so a receiver can drop duplicates; a new `webhook-timestamp` and
signature, because receivers refuse timestamps older than a few minutes). Between attempts it
waits an exponential backoff with full jitter — uniform(0, min(max_s, base_s · factor^(n-1)))
— so a recovering endpoint is not hit by every sender at once; a `Retry-After` header replaces
that delay (capped by `max_retry_after_s`). Any 2xx is success; `410 Gone` means the receiver
wants no more deliveries, so it ends the sequence at once; any other status, a timeout or a
connection error is retried. Redirects are not followed (a moved endpoint is a config change).

Every attempt is a row in `webhook_deliveries` (`delivered` or `failed`), and a sequence that
gives up adds a final `dead` row: the dead-letter record an operator queries. Rows hold the
payload, never the secret; the URL is recorded without any `user:password@` part. Logs name
the endpoint by its id, not its URL (URLs of chat webhooks are often secrets themselves).

Concurrency is limited per endpoint (`max_concurrency` requests in flight, an
`asyncio.Semaphore` per webhook id). The semaphore is held for one HTTP request, not across the
backoff sleep, so a failing alert does not starve the others of that endpoint's slots.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from analytics.store.base import QueryError, Store, StoreError, datetime64_text
from ingest.webhooks.signing import Signer, WebhookSecretError
from tollway.config.schema import WebhookConfig

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "failed", "dead"]
TABLE = "webhook_deliveries"
USER_AGENT = "tollway-webhooks/0.1"
_ERROR_BODY_BYTES = 512


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again. Defaults suit production; tests use milliseconds."""

    base_s: float = 1.0
    factor: float = 2.0
    max_s: float = 300.0
    max_retry_after_s: float = 3600.0

    def backoff(self, failed_attempts: int, rng: random.Random) -> float:
        """Full jitter: a uniform draw below the exponential ceiling of this attempt."""
        ceiling = min(self.max_s, self.base_s * self.factor ** max(failed_attempts - 1, 0))
        return rng.uniform(0, ceiling)

    def delay(self, failed_attempts: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_s)
        return self.backoff(failed_attempts, rng)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def redact_url(url: str) -> str:
    """`url` without a `user:password@` part: what logs, rows and listings show."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Endpoint:
    """One configured webhook, with its signing key loaded (and hidden from repr)."""

    id: str
    url: str
    signer: Signer = field(repr=False)
    events: frozenset[str] = frozenset()
    max_concurrency: int = 4
    max_attempts: int = 8
    timeout_s: float = 10.0

    @classmethod
    def from_config(
        cls, config: WebhookConfig, environ: Mapping[str, str] | None = None
    ) -> Endpoint:
        """Raises `WebhookSecretError` naming the webhook and the variable when it is unset."""
        endpoint_id = config.id or "webhook"
        try:
            signer = Signer.from_env(config.secret_env, environ)
        except WebhookSecretError as exc:
            raise WebhookSecretError(f"webhook {endpoint_id}: {exc}") from None
        return cls(
            id=endpoint_id,
            url=config.url,
            signer=signer,
            events=frozenset(config.events),
            max_concurrency=config.max_concurrency,
            max_attempts=config.max_attempts,
            timeout_s=config.timeout_s,
        )

    @property
    def public_url(self) -> str:
        return redact_url(self.url)


@dataclass(frozen=True)
class AttemptResult:
    number: int
    outcome: Outcome
    http_status: int = 0
    error: str = ""
    duration_ms: int = 0
    retry_after: float | None = None
    retryable: bool = True


@dataclass(frozen=True)
class DeliveryResult:
    """How a delivery sequence ended: `delivered`, `dead`, or `skipped` (already delivered)."""

    endpoint_id: str
    url: str
    webhook_id: str
    event_type: str
    outcome: Literal["delivered", "dead", "skipped"]
    attempts: int
    http_status: int = 0
    error: str = ""
    duration_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "webhook": self.endpoint_id,
            "url": self.url,
            "webhook_id": self.webhook_id,
            "event_type": self.event_type,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "http_status": self.http_status,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }


class Deliverer:
    """Delivers payloads to endpoints over one shared `httpx.AsyncClient`."""

    def __init__(
        self,
        store: Store,
        retry: RetryPolicy | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.retry = retry or RetryPolicy()
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(follow_redirects=False)
        self._rng = rng or random.Random()
        # per endpoint and limit: a reload that changes an endpoint's limit gets a new one
        self._limits: dict[tuple[str, int], asyncio.Semaphore] = {}

    async def close(self) -> None:
        if self._own_client:
            await self.client.aclose()

    def _limit(self, endpoint: Endpoint) -> asyncio.Semaphore:
        key = (endpoint.id, endpoint.max_concurrency)
        limit = self._limits.get(key)
        if limit is None:
            limit = self._limits[key] = asyncio.Semaphore(endpoint.max_concurrency)
        return limit

    async def deliver(
        self,
        endpoint: Endpoint,
        webhook_id: str,
        event_type: str,
        payload: bytes,
        *,
        max_attempts: int | None = None,
    ) -> DeliveryResult:
        """Try until a 2xx, a 410, or `max_attempts` (the endpoint's by default) have failed."""
        attempts = max(1, max_attempts or endpoint.max_attempts)
        started = time.monotonic()
        last: AttemptResult | None = None
        for number in range(1, attempts + 1):
            last = await self._attempt(endpoint, webhook_id, payload, number)
            await self._record(endpoint, webhook_id, event_type, payload, last)
            if last.outcome == "delivered":
                log.info(
                    "webhook %s: %s delivered on attempt %d (HTTP %d)",
                    endpoint.id, webhook_id, number, last.http_status,
                )  # fmt: skip
                return self._result(endpoint, webhook_id, event_type, "delivered", last, started)
            if not last.retryable or number == attempts:
                break
            delay = self.retry.delay(number, last.retry_after, self._rng)
            log.warning(
                "webhook %s: %s attempt %d failed (%s); retrying in %.3fs",
                endpoint.id, webhook_id, number, last.error, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
        assert last is not None
        dead = AttemptResult(
            number=last.number,
            outcome="dead",
            http_status=last.http_status,
            error=f"gave up after {last.number} attempt(s): {last.error}",
            duration_ms=_elapsed_ms(started),
        )
        await self._record(endpoint, webhook_id, event_type, payload, dead)
        log.error("webhook %s: %s is dead: %s", endpoint.id, webhook_id, dead.error)
        return self._result(endpoint, webhook_id, event_type, "dead", dead, started)

    async def _attempt(
        self, endpoint: Endpoint, webhook_id: str, payload: bytes, number: int
    ) -> AttemptResult:
        async with self._limit(endpoint):
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                **endpoint.signer.sign(webhook_id, datetime.now(UTC), payload),
            }
            started = time.monotonic()
            try:
                request = self.client.build_request(
                    "POST", endpoint.url, content=payload, headers=headers,
                    timeout=endpoint.timeout_s,
                )  # fmt: skip
                response = await self.client.send(request, stream=True)
                try:
                    head = await _read_head(response)
                finally:
                    await response.aclose()
            except httpx.TimeoutException:
                return AttemptResult(
                    number, "failed", error=f"timed out after {endpoint.timeout_s:g}s",
                    duration_ms=_elapsed_ms(started),
                )  # fmt: skip
            except httpx.HTTPError as exc:
                message = str(exc).replace(endpoint.url, endpoint.public_url) or "no detail"
                return AttemptResult(
                    number, "failed", error=f"{type(exc).__name__}: {message}"[:500],
                    duration_ms=_elapsed_ms(started),
                )  # fmt: skip
        status = response.status_code
        duration = _elapsed_ms(started)
        if 200 <= status < 300:
            return AttemptResult(number, "delivered", http_status=status, duration_ms=duration)
        body = head.decode("utf-8", errors="replace").strip()
        error = f"HTTP {status}" + (f": {body}" if body else "")
        return AttemptResult(
            number,
            "failed",
            http_status=status,
            error=error[:500],
            duration_ms=duration,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            retryable=status != 410,
        )

    async def _record(
        self,
        endpoint: Endpoint,
        webhook_id: str,
        event_type: str,
        payload: bytes,
        attempt: AttemptResult,
    ) -> None:
        """One row per attempt; a store hiccup is retried briefly, then logged, never raised —
        a missing record costs at most one extra delivery, which receivers dedupe by id."""
        row = {
            "webhook_id": webhook_id,
            "url": endpoint.public_url,
            "event_type": event_type,
            "attempt": attempt.number,
            "outcome": attempt.outcome,
            "http_status": attempt.http_status,
            "error": attempt.error,
            "duration_ms": attempt.duration_ms,
            "payload": payload.decode("utf-8", errors="replace"),
            "ts": datetime64_text(datetime.now(UTC)),
        }
        delay = 0.1
        for remaining in range(2, -1, -1):
            try:
                await self.store.insert_rows(TABLE, [row])
                return
            except StoreError as exc:
                if not remaining:
                    log.error(
                        "webhook %s: cannot record attempt of %s: %s", endpoint.id, webhook_id, exc
                    )
                    return
                await asyncio.sleep(delay)
                delay *= 2
            except QueryError as exc:
                log.error(
                    "webhook %s: cannot record attempt of %s: %s", endpoint.id, webhook_id, exc
                )
                return

    def _result(
        self,
        endpoint: Endpoint,
        webhook_id: str,
        event_type: str,
        outcome: Literal["delivered", "dead"],
        last: AttemptResult,
        started: float,
    ) -> DeliveryResult:
        return DeliveryResult(
            endpoint_id=endpoint.id,
            url=endpoint.public_url,
            webhook_id=webhook_id,
            event_type=event_type,
            outcome=outcome,
            attempts=last.number,
            http_status=last.http_status,
            error=last.error if outcome == "dead" else "",
            duration_ms=_elapsed_ms(started),
        )


async def _read_head(response: httpx.Response) -> bytes:
    """At most `_ERROR_BODY_BYTES` of the body: enough to explain a failure, no more."""
    head = b""
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= _ERROR_BODY_BYTES:
            break
    return head[:_ERROR_BODY_BYTES]


def _elapsed_ms(started: float) -> int:
    return max(int((time.monotonic() - started) * 1000), 0)
