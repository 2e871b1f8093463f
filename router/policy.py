"""The route policy: which models may serve a request, in the order to try them.

A caller asks for a catalogue model or a route name. A model asked for by name is tried alone.
A route picks its candidate set (the task type's own, when the route has a rule for it; its
economy tier when a budget has pushed it down), drops the models that cannot serve the request
(a missing capability, a context window too small), orders the rest by its strategy
(router/strategies.py) and appends its fallbacks. The reason for the order goes into the
CallEvent's `route_reason`, so every decision can be explained after the fact.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from router import strategies
from router.choice import Constraints, CostOf, Needs, unfit
from router.errors import Forbidden, InvalidRequest, ModelNotFound
from router.routing_feed import RoutingView
from tollway.auth import Principal
from tollway.config.schema import ModelConfig, RouteConfig, TollwayConfig
from tollway.pricing import PriceCatalogue, PriceError

Tier = Literal["standard", "economy"]


@dataclass(frozen=True)
class RoutePlan:
    route: str
    reason: str
    models: list[ModelConfig]
    explored: bool = False


class RoutePolicy:
    def __init__(
        self,
        config: Callable[[], TollwayConfig],
        view: RoutingView | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.view = view or RoutingView()
        self.rng = rng or random.Random()
        self._prices: tuple[TollwayConfig, PriceCatalogue] | None = None
        #: per route and task type, the models the last decision excluded on quality
        self._held_out: dict[tuple[str, str], frozenset[str]] = {}

    def plan(self, requested: str, needs: Needs, tier: Tier = "standard") -> RoutePlan:
        config = self.config()
        model = config.model(requested)
        if model is not None:
            wrong = _wrong_kind(model, needs) or _one_choice_only(config, model, needs)
            if wrong:
                raise InvalidRequest(f"model {model.name!r} {wrong}", details={"param": "model"})
            return RoutePlan(route="", reason="model requested directly", models=[model])
        route = config.route(requested)
        if route is None:
            raise ModelNotFound(
                f"model {requested!r} is neither a catalogue model nor a route; "
                "GET /v1/models lists what this key may use"
            )
        return self._route_plan(config, route, needs, tier)

    def _route_plan(
        self, config: TollwayConfig, route: RouteConfig, needs: Needs, tier: Tier
    ) -> RoutePlan:
        rule = route.rule_for(needs.task_type)
        economy = tier == "economy" and bool(route.economy)
        names = route.economy if economy else None
        names = names or (rule.candidates if rule and rule.candidates else route.candidates)
        candidates = _models(config, names)
        if needs.choices > 1:  # a model whose provider cannot give `n` choices is no candidate
            candidates = [m for m in candidates if not _one_choice_only(config, m, needs)]
        fit = [m for m in candidates if unfit(m, needs) is None]
        observed = self.view.observed(route.name, needs.task_type)
        if route.strategy == "cost_aware":
            constraints = Constraints(
                latency_target_ms=(rule.latency_target_ms if rule else None)
                or route.latency_target_ms,
                quality_floor=(rule.quality_floor if rule else None) or route.quality_floor,
                min_calls=route.min_calls,
                min_scores=route.min_scores,
                held_out=self._held_out.get((route.name, needs.task_type), frozenset()),
            )
            order = strategies.cost_aware(
                candidates,
                needs,
                self._cost_of(config),
                observed,
                constraints,
                route.exploration,
                self.rng,
            )
            self._held_out[(route.name, needs.task_type)] = order.held_out
        elif route.strategy == "weighted":
            order = strategies.weighted(fit, route.weights, self.rng)
        elif route.strategy == "lowest_latency":
            order = strategies.lowest_latency(fit, observed, route.min_calls)
        else:
            order = strategies.priority(fit)
        chosen = {m.name for m in order.models}
        fallbacks = [
            m
            for m in _models(config, route.fallbacks)
            if m.name not in chosen
            and unfit(m, needs) is None
            and not _one_choice_only(config, m, needs)
        ]
        models = [*order.models, *fallbacks]
        if not models:
            unable = "; ".join(f"{m.name} {unfit(m, needs)}" for m in candidates)
            if not candidates:
                unable = f"none of its models gives {needs.choices} choices in one call"
            raise InvalidRequest(
                f"no model of route {route.name!r} can serve this request ({unable})",
                details={"param": "model"},
            )
        reason = f"economy tier: {order.reason}" if economy else order.reason
        if rule:
            reason = f"task {needs.task_type}: {reason}"
        return RoutePlan(route.name, reason, models, order.explored)

    def _cost_of(self, config: TollwayConfig) -> CostOf:
        if self._prices is None or self._prices[0] is not config:
            self._prices = (config, PriceCatalogue.from_config(config))
        return cost_function(self._prices[1])


def cost_function(prices: PriceCatalogue) -> CostOf:
    """Expected cost of a call at the catalogue's current prices (unpriced: free)."""
    now = datetime.now(UTC)

    def cost_of(model: ModelConfig, prompt: int, output: int) -> Decimal:
        try:
            return prices.cost(model.name, now, input_tokens=prompt, output_tokens=output).cost_usd
        except PriceError:
            return Decimal(0)

    return cost_of


#: provider types whose API answers with one choice a call (no `n`)
ONE_CHOICE_PROVIDERS = frozenset({"anthropic"})


def _wrong_kind(model: ModelConfig, needs: Needs) -> str | None:
    """A model asked for by name is trusted with the request's features (the upstream has the
    last word on those), but not across kinds: an embeddings model does not chat, and a chat
    model does not embed."""
    embeds = "embeddings" in model.capabilities
    if "embeddings" in needs.capabilities and not embeds:
        return (
            "does not create embeddings (a model that does has the `embeddings` capability "
            "in tollway.yaml)"
        )
    if embeds and "embeddings" not in needs.capabilities:
        return "is an embeddings model: use POST /v1/embeddings"
    return None


def _one_choice_only(config: TollwayConfig, model: ModelConfig, needs: Needs) -> str | None:
    """Why `model` cannot give the `n` choices asked for, or None."""
    if needs.choices <= 1:
        return None
    provider = config.provider(model.provider)
    if provider is not None and provider.type in ONE_CHOICE_PROVIDERS:
        return f"gives one choice a call ({provider.type} has no `n`): ask with n = 1"
    return None


def _models(config: TollwayConfig, names: list[str]) -> list[ModelConfig]:
    return [m for m in (config.model(n) for n in dict.fromkeys(names)) if m is not None]


def ensure_allowed(principal: Principal, requested: str) -> None:
    """A key limited to some models or routes may ask for those only."""
    if not principal.may_use(requested):
        raise Forbidden(
            f"key {principal.key_id} may not use {requested!r} "
            f"(allowed: {', '.join(sorted(principal.allowed_models))})"
        )
