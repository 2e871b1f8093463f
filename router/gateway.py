"""The proxy's working state: config, provider adapters, prices, and the event publisher.

One `Gateway` per proxy process, kept on `app.state.gateway`. `call_chat` is the path of
one chat call: plan the models, try them in order, price the usage, publish one CallEvent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from router.attribution import Attribution
from router.errors import UpstreamError
from router.events import EventPublisher
from router.policy import plan_for
from router.providers import Provider, ProviderError, build_provider
from router.schemas import ChatCompletionRequest, Usage
from tollway.config.schema import TollwayConfig
from tollway.events import Attempt, CallEvent
from tollway.pricing import Costing, PriceCatalogue, UnpricedModel


@dataclass(frozen=True)
class ChatOutcome:
    body: dict[str, Any]
    event: CallEvent


class Gateway:
    def __init__(self, config: TollwayConfig, publisher: EventPublisher) -> None:
        self.config = config
        self.prices = PriceCatalogue.from_config(config)
        self.providers: dict[str, Provider] = {p.name: build_provider(p) for p in config.providers}
        self.publisher = publisher

    async def start(self) -> None:
        await self.publisher.start()

    async def stop(self) -> None:
        """Flush every accepted call's event to Kafka, then release connections."""
        await self.publisher.stop()
        for provider in self.providers.values():
            await provider.close()

    def _price(self, model: str, at: datetime, usage: Usage) -> Costing:
        """The call's cost from the catalogue; a model without a price (allowed only when no
        budget counts it, e.g. a self-hosted model) costs 0 under price version `unpriced`."""
        try:
            return self.prices.cost(
                model,
                at,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_input_tokens=min(usage.cached_input_tokens, usage.input_tokens),
                reasoning_tokens=min(usage.reasoning_tokens, usage.output_tokens),
            )
        except UnpricedModel:
            return _unpriced()

    async def call_chat(self, request: ChatCompletionRequest, who: Attribution) -> ChatOutcome:
        started = datetime.now(UTC)
        clock = time.perf_counter()
        plan = plan_for(self.config, request.model)
        attempts: list[Attempt] = []
        last_error: ProviderError | None = None
        event = CallEvent(
            ts=started,
            endpoint="chat.completions",
            requested_model=request.model,
            stream=request.stream,
            route=plan.route,
            route_reason=plan.reason,
            **_attribution_fields(who),
        )
        for model in plan.models:
            provider = self.providers[model.provider]
            attempt_clock = time.perf_counter()
            try:
                result = await provider.chat(request, model)
            except ProviderError as exc:
                attempts.append(
                    Attempt(
                        provider=provider.config.name,
                        model=model.name,
                        status="error",
                        error=str(exc)[:300],
                        http_status=exc.status,
                        duration_ms=_ms_since(attempt_clock),
                    )
                )
                last_error = exc
                if not exc.retryable:
                    break
                continue
            attempts.append(
                Attempt(
                    provider=provider.config.name,
                    model=model.name,
                    status="ok",
                    duration_ms=_ms_since(attempt_clock),
                )
            )
            usage = result.usage
            costing = self._price(model.name, started, usage)
            event = event.model_copy(
                update={
                    "duration_ms": _ms_since(clock),
                    "provider": provider.config.name,
                    "model": model.name,
                    "attempts": attempts,
                    "fallback_used": len(attempts) > 1,
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "cached_input_tokens": usage.cached_input_tokens,
                    "reasoning_tokens": usage.reasoning_tokens,
                    "usage_estimated": usage.estimated,
                    "cost_usd": costing.cost_usd,
                    "price_version": costing.price_version,
                }
            )
            self.publisher.publish(event)
            body = {**result.body, "model": model.name}
            return ChatOutcome(body=body, event=event)

        failed = event.model_copy(
            update={
                "duration_ms": _ms_since(clock),
                "attempts": attempts,
                "status": "error",
                "http_status": 502,
                "error_code": "upstream_error",
                "cost_usd": Decimal(0),
            }
        )
        self.publisher.publish(failed)
        status = last_error.status if last_error else None
        raise UpstreamError(
            f"no provider could serve {request.model!r}: "
            + (str(last_error) if last_error else "the route has no models"),
            upstream_status=status,
        )


def _unpriced() -> Costing:
    return Costing(Decimal(0), "unpriced")


def _attribution_fields(who: Attribution) -> dict[str, Any]:
    return {
        "business_line": who.business_line,
        "project": who.project,
        "task_type": who.task_type,
        "user": who.user,
        "key_id": who.key_id,
        "environment": who.environment,
        "tags": who.tags,
    }


def _ms_since(clock: float) -> int:
    return int((time.perf_counter() - clock) * 1000)


__all__ = ["ChatOutcome", "Gateway"]
