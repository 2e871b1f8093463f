"""Which models may serve a request, in the order to try them.

A caller asks for a catalogue model or a route name. A model is tried alone; a route yields
its candidates, then its fallbacks (each once). Cost-aware choice among candidates is the
routing issue's work; here the order is the route's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.errors import ModelNotFound
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
