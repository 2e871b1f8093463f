"""Which models may serve a request, in the order to try them.

A caller asks for a catalogue model or a route name. A model is tried alone; a route yields
its candidates, then its fallbacks (each once). Cost-aware choice among candidates is the
routing issue's work; here the order is the route's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.errors import Forbidden, ModelNotFound
from tollway.auth import Principal
from tollway.config.schema import ModelConfig, TollwayConfig


@dataclass(frozen=True)
class RoutePlan:
    route: str
    reason: str
    models: list[ModelConfig]


def plan_for(config: TollwayConfig, requested: str) -> RoutePlan:
    model = config.model(requested)
    if model is not None:
        return RoutePlan(route="", reason="model requested directly", models=[model])
    route = config.route(requested)
    if route is None:
        raise ModelNotFound(
            f"model {requested!r} is neither a catalogue model nor a route; "
            "GET /v1/models lists what this key may use"
        )
    names = list(dict.fromkeys([*route.candidates, *route.fallbacks]))
    models = [m for m in (config.model(n) for n in names) if m is not None]
    return RoutePlan(
        route=route.name, reason=f"route {route.name}: {route.strategy} order", models=models
    )


def ensure_allowed(principal: Principal, requested: str) -> None:
    """A key limited to some models or routes may ask for those only."""
    if not principal.may_use(requested):
        raise Forbidden(
            f"key {principal.key_id} may not use {requested!r} "
            f"(allowed: {', '.join(sorted(principal.allowed_models))})"
        )
