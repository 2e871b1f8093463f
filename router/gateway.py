"""The proxy's working state: config, provider adapters, prices, and the event publisher.

One `Gateway` per proxy process, kept on `app.state.gateway`. `call_chat` is the path of
one chat call: plan the models, try them in order, price the usage, publish one CallEvent.
`open_stream` is the same for a streamed call, up to its first chunk (see router/streaming.py);
`embed` for an embeddings call. The three share admission (router/admission.py: plan, rate
limits, budget gate, the event's first fields), whatever the endpoint asked, through an `Ask`,
and the response cache (router/response_cache.py, router/cached_streams.py).
A call's prompt is screened by the guardrails first and its answer read after
(router/guarded.py): what they leave is what the providers and the caller see (how long a
prompt is, without a call: router/token_count.py). Retries, timeouts, fallbacks and circuit
breakers live in router/resilience.py. All of it works on the one internal shape (OpenAI
chat completions and embeddings); the caller's protocol is the endpoint's business.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from router.admission import Admission
from router.attribution import Attribution
from router.best_effort import Sharing
from router.breaker import BreakerBoard
from router.budget_gate import BudgetGate, Decision, Delivery
from router.cached_streams import replay
from router.call_outcomes import failure, from_cache, ms_since, priced, routing_fields
from router.content_log import content_limit, content_of
from router.errors import GatewayError
from router.events import EventPublisher
from router.guarded import GuardedCalls
from router.guardrails import Guardrails, Screening
from router.model_quotas import CallQuota
from router.needs import Ask
from router.policy import RoutePlan, RoutePolicy
from router.providers import ChatResult, EmbeddingResult, Provider, build_provider
from router.proxy_alerts import ProxyAlerts
from router.rate_limits import RateLimiter
from router.resilience import AttemptLoop, Exhausted, Served
from router.response_cache import Cached, CacheMode, Lookup, ResponseCache
from router.routing_feed import RoutingView
from router.schemas import ChatCompletionRequest, EmbeddingsRequest, Usage
from router.session_spend import SessionSpend
from router.streaming import ChatStream, first_chunk, replayed_stream
from router.upstream import ChatChunk
from tollway.config.schema import ModelConfig, TollwayConfig
from tollway.events import CallEvent, Endpoint
from tollway.pricing import Costing, PriceCatalogue

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallOutcome:
    body: dict[str, Any]
    event: CallEvent
    usage: Usage  # as billed (with what the event has no field for: cache writes)


class Gateway:
    def __init__(
        self,
        config: TollwayConfig,
        publisher: EventPublisher,
        budgets: BudgetGate | None = None,
        routing: RoutingView | None = None,
        rates: RateLimiter | None = None,
        sessions: SessionSpend | None = None,
        alerts: ProxyAlerts | None = None,
        sharing: Sequence[Sharing] = (),
    ) -> None:
        """`sharing`: what tells the other replicas this one's counts (rate_sharing.py,
        session_sharing.py), started after the budget gate and stopped before it."""
        self.config = config
        self.policy = RoutePolicy(lambda: self.config, routing)
        self.prices = PriceCatalogue.from_config(config)
        self.providers: dict[str, Provider] = {p.name: build_provider(p) for p in config.providers}
        self.publisher = publisher
        self.budgets = budgets or BudgetGate(lambda: self.config)
        self.rates = rates or RateLimiter()
        self.cache = ResponseCache(lambda: self.config.cache)
        self.sessions = sessions or SessionSpend(lambda: self.config.sessions)
        self.sharing = list(sharing)
        self.admission = Admission(
            lambda: self.config,
            self.policy,
            self.budgets,
            self.rates,
            self.sessions,
            publisher,
            self._price,
        )
        self._retired: list[Provider] = []  # replaced by a reload, closed at stop
        self.alerts = alerts
        if alerts is not None:
            self.admission.on_session_limit = alerts.session_limited
        self.guarded = GuardedCalls(Guardrails(lambda: self.config), alerts)
        self.breakers = BreakerBoard(on_open=alerts.circuit_opened if alerts else None)
        self.attempt_loop = AttemptLoop(self.breakers)

    async def reload(self, config: TollwayConfig) -> None:
        """Serve from a changed tollway.yaml: routes, prices and budgets at once; a provider
        whose settings changed gets a new adapter (the old one finishes its calls first)."""
        providers: dict[str, Provider] = {}
        for spec in config.providers:
            current = self.providers.get(spec.name)
            same = current is not None and current.config == spec
            providers[spec.name] = current if same else build_provider(spec)  # type: ignore[assignment]
        self._retired += [p for n, p in self.providers.items() if providers.get(n) is not p]
        self.prices = PriceCatalogue.from_config(config)
        self.providers = providers
        self.config = config

    async def start(self) -> None:
        await self.publisher.start()
        await self.budgets.start()
        for shared in self.sharing:
            await shared.start()
        if self.alerts is not None:
            await self.alerts.start()

    async def stop(self) -> None:
        """Flush every accepted call's event to Kafka, then release connections."""
        if self.alerts is not None:
            await self.alerts.stop()
        for shared in reversed(self.sharing):
            await shared.stop()
        await self.budgets.stop()
        await self.publisher.stop()
        for provider in [*self.providers.values(), *self._retired]:
            await provider.close()

    def _published(self, event: CallEvent, delivery: Delivery | None = None) -> None:
        """Publish a served call's event (with the budget gate's delivery callback, which
        releases its pending cost once the worker has counted it); a routed one is
        remembered for its feedback."""
        self.publisher.publish(event, delivery)
        self.rates.settle_call(event.event_id, event.input_tokens + event.output_tokens)
        if event.session_id and event.cost_usd:
            self.sessions.add(event.session_id, event.cost_usd)
        if event.route and event.status == "ok":
            self.policy.view.routed(event.event_id, event.route, event.task_type, event.model)

    def scored(self, event_id: UUID, score: float) -> None:
        """Feedback on a call this proxy routed counts for routing at once (routing_feed.py)."""
        self.policy.view.scored(event_id, score)

    def _price(self, model: str, at: datetime, usage: Usage) -> Costing:
        return priced(self.prices, model, at, usage)

    async def call_chat(
        self,
        request: ChatCompletionRequest,
        who: Attribution,
        endpoint: Endpoint = "chat.completions",
        cache: CacheMode = "skip",
    ) -> CallOutcome:
        """One plain chat call (`cache`: the caller's `x-tollway-cache`, when the cache is on)."""
        screening = self.guarded.prompt(request, who)
        sent = screening.request  # as the guardrails left it

        async def complete(provider: Provider, model: ModelConfig) -> ChatResult:
            return await provider.chat(sent, model)

        ask = Ask.chat(sent, who.task_type)
        lookup = self.cache.lookup(who, sent, cache)
        return await self._served(ask, who, endpoint, complete, lookup, screening)

    async def embed(
        self, request: EmbeddingsRequest, who: Attribution, cache: CacheMode = "skip"
    ) -> CallOutcome:
        """One embeddings call: admitted, tried, priced (input tokens only) and published as
        a chat call is, on a model with the `embeddings` capability."""
        screening = self.guarded.prompt(request, who)
        sent = screening.request  # as the guardrails left it

        async def embed(provider: Provider, model: ModelConfig) -> EmbeddingResult:
            return await provider.embed(sent, model)

        ask = Ask.embeddings(sent, who.task_type)
        lookup = self.cache.lookup(who, sent, cache)
        return await self._served(ask, who, "embeddings", embed, lookup, screening)

    async def _served(
        self,
        ask: Ask,
        who: Attribution,
        endpoint: Endpoint,
        attempt: Callable[[Provider, ModelConfig], Awaitable[ChatResult | EmbeddingResult]],
        lookup: Lookup | None,
        screening: Screening[Any],
    ) -> CallOutcome:
        """A call answered whole: admitted, then answered from the response cache or tried
        through the plan's models, billed."""
        started = datetime.now(UTC)
        clock = time.perf_counter()
        decision, plan, event = self.admission.admit(ask, who, endpoint, started, screening)
        content_chars = content_limit(self.config.logging, who)
        if lookup is not None and (hit := self.cache.get(lookup)) is not None:
            return self._from_cache(hit, event, decision, clock, screening.request, content_chars)
        try:
            served = await self._attempts(plan, attempt, event, ask)
        except Exhausted as exhausted:
            self.admission.nothing_spent(decision, event)
            raise self._all_failed(ask, event, exhausted, clock) from None
        except BaseException:  # refused before any answer (a 400), or cancelled: nothing spent
            self.admission.nothing_spent(decision, event)
            raise
        usage = served.value.usage
        body = served.value.body
        if isinstance(screening.request, ChatCompletionRequest):  # an answer to read
            body, event = self.guarded.completion(body, ask.model, who, event)
        content = content_of(content_chars, screening.request, body)
        event = self._billed(event, decision, plan, served, usage, started, clock, content)
        body = {**body, "model": served.model.name}
        if lookup is not None:
            self.cache.put(lookup, Cached.of(body, usage, served.model.name, event.provider))
        return CallOutcome(body=body, event=event, usage=usage)

    def _from_cache(
        self,
        hit: Cached,
        event: CallEvent,
        decision: Decision,
        clock: float,
        request: ChatCompletionRequest | EmbeddingsRequest,
        content_chars: int | None,
    ) -> CallOutcome:
        """A cached answer: nothing billed or counted against a rate, the tokens it saved in
        the event (router/response_cache.py), its content where it is logged."""
        self.rates.settle_call(event.event_id, 0)
        answer = hit.answer()
        content = content_of(content_chars, request, answer)
        event = from_cache(event, hit, clock).model_copy(update=content)
        self._published(event, self.budgets.settle(decision, Decimal(0)))
        return CallOutcome(body=answer, event=event, usage=hit.usage)

    def _billed(
        self,
        event: CallEvent,
        decision: Decision,
        plan: RoutePlan,
        served: Served[Any],
        usage: Usage,
        started: datetime,
        clock: float,
        content: dict[str, str | None],
    ) -> CallEvent:
        """A served call's event, complete (who served it, its usage and cost, its content
        where the policy logs it), published; its cost settles the budget gate's hold."""
        costing = self._price(served.model.name, started, usage)
        event = event.model_copy(
            update={
                **routing_fields(plan, served),
                "duration_ms": ms_since(clock),
                **usage.event_counts(),
                "usage_estimated": usage.estimated,
                "cost_usd": costing.cost_usd,
                "price_version": costing.price_version,
                **content,
            }
        )
        self._published(event, self.budgets.settle(decision, costing.cost_usd))
        return event

    async def open_stream(
        self,
        request: ChatCompletionRequest,
        who: Attribution,
        endpoint: Endpoint = "chat.completions",
        cache: CacheMode = "skip",
    ) -> ChatStream:
        """Start a streamed call: replay a cached answer, or try the plan's models until one
        yields its first chunk.

        Retrying and falling back are only possible while nothing has reached the caller, so
        each attempt runs up to its first chunk; from then on the returned `ChatStream` owns
        the call (and publishes its event however the stream ends)."""
        started = datetime.now(UTC)
        clock = time.perf_counter()
        screening = self.guarded.prompt(request, who)
        request = screening.request  # as the guardrails left it
        ask = Ask.chat(request, who.task_type)
        lookup = self.cache.lookup(who, request, cache)
        decision, plan, event = self.admission.admit(ask, who, endpoint, started, screening)
        content_chars = content_limit(self.config.logging, who)
        hit = self.cache.get(lookup, stream=True) if lookup is not None else None
        if hit is not None and (chunks := replay(hit)):
            billed_at_0 = self._replay_publisher(event, decision)
            return replayed_stream(request, hit, chunks, event, clock, started, billed_at_0,
                                   content_chars)  # fmt: skip

        def publish(final: CallEvent) -> None:  # however the stream ends
            # the worker counts `ok` calls only: a stream cut by the upstream is never in
            # the spend, so holding its cost as pending would only count it for a while
            counted = final.cost_usd if final.status == "ok" else Decimal(0)
            self._published(final, self.budgets.settle(decision, counted))

        async def attempt(
            provider: Provider, model: ModelConfig
        ) -> tuple[AsyncIterator[ChatChunk], ChatChunk]:
            upstream = provider.stream(request, model)
            try:
                return upstream, await first_chunk(upstream, provider.config.name)
            except BaseException:
                await upstream.aclose()  # type: ignore[attr-defined]
                raise

        try:
            served = await self._attempts(plan, attempt, event, ask)
        except Exhausted as exhausted:
            self.admission.nothing_spent(decision, event)
            raise self._all_failed(ask, event, exhausted, clock) from None
        except BaseException:
            self.admission.nothing_spent(decision, event)
            raise
        upstream, first = served.value

        def keep(answer: dict[str, Any], usage: Usage) -> None:  # a stream that ended well
            if lookup is not None:
                cached = Cached.of(answer, usage, served.model.name, served.provider.config.name)
                self.cache.put(lookup, cached)

        def read_answer(messages: list[dict[str, Any]], event: CallEvent) -> CallEvent:
            return self.guarded.streamed(messages, ask.model, who, event)

        return ChatStream(
            request=request,
            event=event.model_copy(update=routing_fields(plan, served)),
            first=first,
            upstream=upstream,
            clock=clock,
            started=started,
            price=self._price,
            publish=publish,
            keep=keep if lookup is not None else None,
            content_limit=content_chars,
            read_answer=read_answer if self.guarded.watches_answers() else None,
        )

    def _replay_publisher(
        self, event: CallEvent, decision: Decision
    ) -> Callable[[CallEvent], None]:
        """A cached answer replayed as a stream counts against no rate; its event is billed
        at 0 (router/streaming.py, `replayed_stream`)."""
        self.rates.settle_call(event.event_id, 0)
        return lambda final: self._published(final, self.budgets.settle(decision, Decimal(0)))

    async def _attempts(
        self,
        plan: RoutePlan,
        attempt: Callable[[Provider, ModelConfig], Awaitable[T]],
        event: CallEvent,
        ask: Ask,
    ) -> Served[T]:
        """Run the plan's models through the resilience loop (router/resilience.py), counting
        each try against its model's provider quota where it has one."""
        route = self.config.route(plan.route) if plan.route else None
        deadline = route.deadline_s if route and route.deadline_s else None
        quota = None
        if any(model.quota for model in plan.models):
            quota = CallQuota(self.rates, event.event_id, ask.needs.prompt_tokens)
        return await self.attempt_loop.run(
            plan.models,
            self.providers,
            attempt,
            route=route,
            deadline_s=deadline or self.config.limits.deadline_s,
            quota=quota,
        )

    def _all_failed(
        self, ask: Ask, event: CallEvent, exhausted: Exhausted, clock: float
    ) -> GatewayError:
        """Publish the failed call's event; the error to raise (router/call_outcomes.py)."""
        error, failed = failure(ask.model, event, exhausted, clock)
        self.publisher.publish(failed)
        return error


__all__ = ["CallOutcome", "ChatStream", "Gateway"]
