"""What a call's result becomes in its event and answer: what it cost (`priced`); who served it
and how, from the attempt loop (router/resilience.py, `routing_fields`); or, when no model did,
the error the caller gets and the `error` event the ledger gets (`failure`); or a cached
answer's event (`from_cache`)."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from router.errors import (
    GatewayError,
    QuotaReached,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from router.policy import RoutePlan
from router.resilience import Exhausted, Served, Skips
from router.response_cache import CACHE_PRICE_VERSION, Cached
from router.schemas import Usage
from tollway.events import CallEvent
from tollway.pricing import Costing, PriceCatalogue, UnpricedModel


def priced(prices: PriceCatalogue, model: str, at: datetime, usage: Usage) -> Costing:
    """The call's cost from the catalogue; a model without a price (allowed only when no
    budget counts it, e.g. a self-hosted model) costs 0 under price version `unpriced`."""
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    try:
        return prices.cost(
            model,
            at,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=cached,
            reasoning_tokens=min(usage.reasoning_tokens, usage.output_tokens),
            cache_write_tokens=min(usage.cache_write_tokens, usage.input_tokens - cached),
        )
    except UnpricedModel:
        return Costing(Decimal(0), "unpriced")


def routing_fields(plan: RoutePlan, served: Served[Any]) -> dict[str, Any]:
    """Which model served the call, every try it took, and whether that was a fallback."""
    first = plan.models[0].name if plan.models else ""
    return {
        "provider": served.provider.config.name,
        "model": served.model.name,
        "attempts": served.attempts,
        "fallback_used": served.model.name != first,
        "route_reason": with_skips(plan.reason, served.skipped),
    }


def failure(
    model: str, event: CallEvent, exhausted: Exhausted, clock: float
) -> tuple[GatewayError, CallEvent]:
    """The error to raise when no model served the call — 504 when the deadline ran out, 429
    when every candidate is at its provider quota, 503 when the circuits of the others are
    open, else 502 — and the call's `error` event."""
    error: GatewayError
    status = exhausted.last_error.status if exhausted.last_error else None
    message = f"no provider could serve {model!r}: {exhausted}"
    skipped = exhausted.skipped
    if exhausted.deadline_hit:
        error = UpstreamTimeout(message, upstream_status=status)
    elif not exhausted.attempts and skipped and not skipped.circuit_open:
        error = QuotaReached(message, retry_after_s=exhausted.retry_in_s)
    elif not exhausted.attempts and skipped:
        error = UpstreamUnavailable(message, retry_after_s=exhausted.retry_in_s)
    else:
        error = UpstreamError(message, upstream_status=status)
    failed = event.model_copy(
        update={
            "duration_ms": ms_since(clock),
            "attempts": exhausted.attempts,
            "route_reason": with_skips(event.route_reason, skipped),
            "status": "error",
            "http_status": error.status_code,
            "error_code": error.type,
            "cost_usd": Decimal(0),
        }
    )
    return error, failed


def from_cache(event: CallEvent, hit: Cached, clock: float) -> CallEvent:
    """A cached answer's event: nothing billed, the tokens it saved (router/response_cache.py)."""
    return event.model_copy(
        update={
            "provider": hit.provider,
            "model": hit.model,
            "cache_hit": True,
            "duration_ms": ms_since(clock),
            **hit.usage.event_counts(),
            "usage_estimated": hit.usage.estimated,
            "cost_usd": Decimal(0),
            "price_version": CACHE_PRICE_VERSION,
        }
    )


def with_skips(reason: str, skipped: Skips) -> str:
    return f"{reason}; skipped ({skipped})" if skipped else reason


def ms_since(clock: float) -> int:
    return int((time.perf_counter() - clock) * 1000)
