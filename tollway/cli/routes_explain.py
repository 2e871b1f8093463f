"""The body of `tollway routes explain`: one routing decision, with what it was made from.

`Explanation` runs the proxy's own `RoutePolicy.plan` (exploration off, so the same inputs give
the same answer) and lays out every candidate: expected cost per call, context window,
capabilities, recorded performance and the verdict.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from router.choice import (
    Constraints,
    Needs,
    Observed,
    output_estimate,
    rank,
    unfit,
)
from router.errors import GatewayError
from router.policy import RoutePlan, RoutePolicy, Tier, cost_function
from router.routing_feed import RoutingView
from tollway.cli.api_client import fail
from tollway.config.schema import ModelConfig, RouteConfig, TollwayConfig
from tollway.pricing import PriceCatalogue


def _without_exploration(cfg: TollwayConfig) -> TollwayConfig:
    routes = [r.model_copy(update={"exploration": 0.0}) for r in cfg.routes]
    return cfg.model_copy(update={"routes": routes})


@dataclass
class Row:
    model: ModelConfig
    expected: Decimal
    seen: Observed | None
    verdict: str


class Explanation:
    """One `RoutePolicy.plan` decision, with what it was made from."""

    def __init__(
        self,
        cfg: TollwayConfig,
        requested: str,
        needs: Needs,
        tier: Tier,
        view: RoutingView,
        source: str,
    ) -> None:
        self.cfg = cfg
        self.requested = requested
        self.needs = needs
        self.tier = tier
        self.view = view
        self.source = source
        self.route = cfg.route(requested) if cfg.model(requested) is None else None
        self.cost_of = cost_function(PriceCatalogue.from_config(cfg))
        self.problem: str | None = None
        self.notes: list[str] = []
        frozen = _without_exploration(cfg)  # explain the exploit decision, deterministically
        policy = RoutePolicy(lambda: frozen, view, random.Random(0))
        if tier == "economy" and (self.route is None or not self.route.economy):
            # as the gateway's downgrade: only a route's own economy tier moves a routed call
            self.tier = "standard"
            self.notes.append(f"{requested} has no economy tier: the standard plan serves")
        self.plan: RoutePlan | None
        try:
            self.plan = policy.plan(requested, needs, self.tier)
        except GatewayError as exc:
            self.plan, self.problem = None, exc.message
        if self.plan is None and self.tier == "economy":
            # the gateway leaves a call its economy tier cannot serve on its standard plan
            self.notes.append(f"the economy tier cannot serve this request ({self.problem})")
            self.tier, self.problem = "standard", None
            try:
                self.plan = policy.plan(requested, needs, self.tier)
            except GatewayError as exc:
                self.plan, self.problem = None, exc.message

    # the candidate set and constraints, as RoutePolicy._route_plan forms them

    def _candidates(self, route: RouteConfig) -> tuple[list[ModelConfig], str]:
        rule = route.rule_for(self.needs.task_type)
        if self.tier == "economy" and route.economy:
            names, origin = route.economy, "economy tier"
        elif rule and rule.candidates:
            names, origin = rule.candidates, f"task rule for {self.needs.task_type}"
        else:
            names, origin = route.candidates, "route candidates"
        return _models(self.cfg, names), origin

    def _constraints(self, route: RouteConfig) -> tuple[Constraints, str]:
        rule = route.rule_for(self.needs.task_type)
        floor = (rule.quality_floor if rule else None) or route.quality_floor
        target = (rule.latency_target_ms if rule else None) or route.latency_target_ms
        floor_from = "task rule" if rule and rule.quality_floor else "route"
        target_from = "task rule" if rule and rule.latency_target_ms else "route"
        text = [
            f"quality floor {floor:.2f} ({floor_from})"
            if floor is not None
            else "no quality floor",
            f"p95 target {target:.0f} ms ({target_from})"
            if target is not None
            else "no latency target",
            f"statistics count from {route.min_calls} calls / {route.min_scores} scores",
        ]
        constraints = Constraints(
            latency_target_ms=target,
            quality_floor=floor,
            min_calls=route.min_calls,
            min_scores=route.min_scores,
        )
        return constraints, "; ".join(text)

    def _cost(self, model: ModelConfig, seen: Observed | None) -> Decimal:
        output = output_estimate(self.needs, seen or Observed())
        return self.cost_of(model, self.needs.prompt_tokens, output)

    def _rows(self) -> list[Row]:
        plan_names = [m.name for m in self.plan.models] if self.plan else []
        route = self.route
        if route is None:  # a model requested directly
            model = self.cfg.model(self.requested)
            assert model is not None
            observed = self.view.observed("", self.needs.task_type)
            why = unfit(model, self.needs)
            if why:
                self.notes.append(f"{model.name} cannot serve this request: {why}")
            seen = observed.get(model.name)
            return [Row(model, self._cost(model, seen), seen, "chosen (requested directly)")]
        candidates, _ = self._candidates(route)
        observed = self.view.observed(route.name, self.needs.task_type)
        constraints = (
            self._constraints(route)[0] if route.strategy == "cost_aware" else Constraints()
        )
        ranking = rank(candidates, self.needs, self.cost_of, observed, constraints)
        candidate_names = {m.name for m in candidates}
        fallbacks = [m for m in _models(self.cfg, route.fallbacks) if m.name not in candidate_names]
        rows = []
        for model in [*candidates, *fallbacks]:
            name = model.name
            why = ranking.excluded.get(name) or unfit(model, self.needs)
            if name in plan_names:
                place = plan_names.index(name) + 1
                if place == 1:
                    verdict = "chosen" + (f" (relaxed: {why})" if why else "")
                elif name not in candidate_names or (why and name in route.fallbacks):
                    verdict = f"fallback #{place}" + (f" (as a candidate: {why})" if why else "")
                else:
                    verdict = f"eligible #{place}" + (f" (relaxed: {why})" if why else "")
            else:
                verdict = f"excluded: {why}" if why else "not tried"
            cost = ranking.expected.get(name)
            if cost is None:  # unable to serve: rank() does not cost it
                cost = self._cost(model, observed.get(name))
            rows.append(Row(model, cost, observed.get(name), verdict))
        order = {name: i for i, name in enumerate(plan_names)}
        rows.sort(key=lambda r: order.get(r.model.name, len(order)))  # stable: the rest in order
        return rows

    def show(self, out: Console) -> None:
        needs = self.needs
        output = (
            f"{needs.output_tokens} output tokens (--max-tokens)"
            if needs.output_capped
            else f"{needs.output_tokens} output tokens (assumed: no --max-tokens)"
        )
        route = self.route
        what = f"route {route.name} ({route.strategy})" if route else f"model {self.requested}"
        out.print(
            f"[bold]{escape(what)}[/] · task type {escape(needs.task_type or '(none)')} · "
            f"{needs.prompt_tokens} prompt + {output} · capabilities: "
            f"{', '.join(sorted(needs.capabilities)) or 'none'} · {self.tier} tier"
        )
        style = "yellow" if self.source.startswith("no statistics") else "dim"
        out.print(f"[{style}]{escape(self.source)}[/]")
        task_types = self.cfg.organisation.task_types
        if needs.task_type and task_types and needs.task_type not in task_types:
            self.notes.append(
                f"task type {needs.task_type!r} is not in organisation.task_types "
                f"({', '.join(task_types)})"
            )
        rows = self._rows()
        if route is not None:
            candidates, origin = self._candidates(route)
            out.print(f"candidates: {origin} ({', '.join(m.name for m in candidates)})")
            if route.strategy == "cost_aware":
                out.print(f"constraints: {self._constraints(route)[1]}")
        if self.plan is not None:
            out.print(f"[bold green]chosen: {escape(self.plan.models[0].name)}[/]")
            out.print("order to try: " + " → ".join(m.name for m in self.plan.models))
            out.print(f"reason: {escape(self.plan.reason)}")
        out.print(self._table(rows))
        if route is not None and route.exploration > 0:
            self.notes.append(
                f"exploration {route.exploration:.0%}: that share of calls is routed by Thompson "
                "sampling over the able models instead (router/exploration.py); shown here is "
                "the exploit decision"
            )
        if route is not None and route.strategy == "weighted":
            self.notes.append("weighted: every call draws its own order; shown is one draw")
        if any(
            r.seen is not None and r.seen.calls and r.seen.mean_output_tokens is None for r in rows
        ):
            self.notes.append(
                f"expected costs assume {needs.output_tokens} output tokens: the statistics "
                "carry no output token counts"
            )
        for note in dict.fromkeys(self.notes):
            out.print(f"[dim]note: {escape(note)}[/]")
        if self.problem is not None:
            raise fail(self.problem)

    def _table(self, rows: list[Row]) -> Table:
        table = Table(header_style="bold")
        table.add_column("model", no_wrap=True)
        table.add_column("$/call", justify="right", no_wrap=True)
        table.add_column("context", justify="right", no_wrap=True)
        table.add_column("capabilities")
        table.add_column("observed")
        table.add_column("verdict")
        for row in rows:
            verdict = escape(row.verdict)
            if row.verdict.startswith("chosen"):
                verdict = f"[bold green]{verdict}[/]"
            elif row.verdict.startswith("excluded"):
                verdict = f"[red]{verdict}[/]"
            table.add_row(
                row.model.name,
                f"${row.expected:.6f}" if row.model.priced else "unpriced",
                f"{row.model.context_window:,}",
                " ".join(row.model.capabilities),
                _observed_text(row.seen),
                verdict,
            )
        return table


def _observed_text(seen: Observed | None) -> str:
    """Calls, p95 latency, mean score and score count, or '-'."""
    if seen is None:
        return "-"
    parts = [f"{seen.calls} calls"]
    if seen.p95_latency_ms is not None:
        parts.append(f"p95 {seen.p95_latency_ms:.0f} ms")
    if seen.mean_score is not None and seen.score_count > 0:
        parts.append(f"score {seen.mean_score:.2f} (n={seen.score_count})")
    return ", ".join(parts)


def _models(cfg: TollwayConfig, names: list[str]) -> list[ModelConfig]:
    return [m for m in (cfg.model(n) for n in dict.fromkeys(names)) if m is not None]
