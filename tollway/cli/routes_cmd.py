"""`tollway routes …`: what each route does, and which model a request would go to, and why.

`list` summarises the routes of a config. `explain` describes a request (task type, prompt
size, output cap, capabilities, budget tier), runs the proxy's own `RoutePolicy.plan` on it with
the config and, when a tollway answers, the routing statistics of its analytics API (the figures
the proxy routes on), and shows every candidate: expected cost per call, context window,
capabilities, recorded performance and verdict. Exploration is turned off for the explanation
(its share is noted), so the same inputs always give the same answer: the exploit decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.table import Table

from router.choice import (
    Needs,
)
from router.needs import DEFAULT_OUTPUT_TOKENS
from router.policy import Tier
from router.routing_feed import RoutingView, observed_from
from tollway.cli.api_client import error_message, fail, resolve_key
from tollway.cli.config_cmd import load_or_exit
from tollway.cli.routes_explain import Explanation
from tollway.config.loader import DEMO_CONFIG
from tollway.config.schema import RouteConfig, TollwayConfig
from tollway.settings import Settings

app = typer.Typer(no_args_is_help=True)

STATS_PATH = "/v1/analytics/routing/stats"
STATS_TIMEOUT_S = 10.0


class Capability(StrEnum):
    """What a request can need from a model (router/needs.py reads them off the request)."""

    tools = "tools"
    vision = "vision"
    json = "json"


ConfigOption = typer.Option(
    None,
    "--config",
    envvar="TOLLWAY_CONFIG",
    help="tollway.yaml; default: $TOLLWAY_CONFIG, else the built-in demo config.",
    show_default=False,
)


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _load(file: Path | None) -> TollwayConfig:
    return load_or_exit(file or DEMO_CONFIG)


# --- routes list ---------------------------------------------------------------------------


@app.command("list")
def list_routes(config: Path | None = ConfigOption) -> None:
    """Every route: strategy, candidates, task rules, economy tier and fallbacks."""
    cfg = _load(config)
    out = _console()
    if not cfg.routes:
        out.print("no routes configured: callers name catalogue models directly")
        return
    table = Table(header_style="bold")
    for column in ("route", "strategy", "candidates", "task rules", "economy", "fallbacks"):
        table.add_column(column)
    for route in cfg.routes:
        table.add_row(
            route.name,
            _strategy_text(route),
            ", ".join(route.candidates),
            "\n".join(_rule_text(route, i) for i in range(len(route.tasks))) or "-",
            ", ".join(route.economy) or "-",
            ", ".join(route.fallbacks) or "-",
        )
    out.print(table)


def _strategy_text(route: RouteConfig) -> str:
    details = []
    if route.strategy == "cost_aware":
        if route.quality_floor is not None:
            details.append(f"quality floor {route.quality_floor:.2f}")
        if route.latency_target_ms is not None:
            details.append(f"p95 target {route.latency_target_ms:.0f} ms")
        details.append(f"exploration {route.exploration:.0%}")
    elif route.strategy == "weighted":
        details.append(", ".join(f"{m} {route.weights.get(m, 1.0):g}" for m in route.candidates))
    return "\n".join([route.strategy, *details])


def _rule_text(route: RouteConfig, index: int) -> str:
    rule = route.tasks[index]
    parts = []
    if rule.candidates:
        parts.append(", ".join(rule.candidates))
    if rule.quality_floor is not None:
        parts.append(f"quality floor {rule.quality_floor:.2f}")
    if rule.latency_target_ms is not None:
        parts.append(f"p95 target {rule.latency_target_ms:.0f} ms")
    return f"{', '.join(rule.task_types)}: {'; '.join(parts) or 'route defaults'}"


# --- routes explain ------------------------------------------------------------------------


@app.command()
def explain(
    target: str | None = typer.Argument(
        None,
        metavar="ROUTE",
        help="A route (or a catalogue model); default: the first cost_aware route.",
        show_default=False,
    ),
    task_type: str = typer.Option("", "--task-type", "-t", help="The request's task type."),
    prompt_tokens: int = typer.Option(..., "--prompt-tokens", "-p", min=0, help="Prompt size."),
    max_tokens: int | None = typer.Option(
        None,
        "--max-tokens",
        min=1,
        help=f"The request's output cap; uncapped: {DEFAULT_OUTPUT_TOKENS} tokens are assumed.",
        show_default=False,
    ),
    capabilities: list[Capability] = typer.Option(
        [], "--capability", "-c", help="A capability the request needs (repeatable)."
    ),
    economy: bool = typer.Option(
        False, "--economy", help="Plan in the economy tier, as under a `downgrade` budget."
    ),
    offline: bool = typer.Option(
        False, "--offline", help="Ignore a running tollway: catalogue priors only."
    ),
    days: int = typer.Option(7, "--days", min=1, max=366, help="Statistics window in days."),
    config: Path | None = ConfigOption,
    url: str | None = typer.Option(None, "--url", help="Base URL of tollway."),
    key: str | None = typer.Option(None, "--key", help="A finops or admin key."),
) -> None:
    """Which model a request would be routed to, in what order, and why."""
    cfg = _load(config)
    requested = target or _default_route(cfg)
    if cfg.model(requested) is None and cfg.route(requested) is None:
        raise fail(
            f"unknown route {requested!r}: routes are {_names(r.name for r in cfg.routes)}; "
            f"models are {_names(m.name for m in cfg.models)}"
        )
    needs = Needs(
        capabilities=frozenset(c.value for c in capabilities),
        prompt_tokens=prompt_tokens,
        output_tokens=max_tokens or DEFAULT_OUTPUT_TOKENS,
        output_capped=max_tokens is not None,
        task_type=task_type,
    )
    tier: Tier = "economy" if economy else "standard"
    if offline:
        view, source = RoutingView(), "no statistics (--offline): catalogue priors only"
    else:
        view, source = _statistics(url, key, days)
    Explanation(cfg, requested, needs, tier, view, source).show(_console())


def _default_route(cfg: TollwayConfig) -> str:
    if not cfg.routes:
        raise fail("the config has no routes: name a catalogue model to explain")
    return next((r.name for r in cfg.routes if r.strategy == "cost_aware"), cfg.routes[0].name)


def _names(names: Iterable[str]) -> str:
    return ", ".join(names) or "(none)"


def _statistics(url: str | None, key: str | None, days: int) -> tuple[RoutingView, str]:
    """The running tollway's routing statistics, or why there are none."""
    settings = Settings()
    base = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
    view = RoutingView()
    secret = resolve_key(key, settings)
    if not secret:
        return view, (
            f"no statistics (no key for {base}: pass --key or set TOLLWAY_ADMIN_KEY): "
            "catalogue priors only"
        )
    try:
        response = httpx.get(
            f"{base}{STATS_PATH}",
            params={"days": days},
            headers={"Authorization": f"Bearer {secret}", "Accept": "application/json"},
            timeout=STATS_TIMEOUT_S,
        )
    except httpx.TransportError:
        return view, f"no statistics (server not reachable at {base}): catalogue priors only"
    except httpx.HTTPError as exc:
        return view, f"no statistics (request to {base} failed: {exc}): catalogue priors only"
    if response.status_code >= 400:
        return view, (
            f"no statistics ({base} answered HTTP {response.status_code}: "
            f"{error_message(response)}): catalogue priors only"
        )
    try:
        rows = response.json()["stats"]
        for row in rows:
            view.put(
                str(row["route"]), str(row["task_type"]), str(row["model"]), observed_from(row)
            )
    except (ValueError, KeyError, TypeError):
        return RoutingView(), (
            f"no statistics (unexpected answer from {base}{STATS_PATH}): catalogue priors only"
        )
    return view, f"statistics: {len(rows)} rows over the last {days} days from {base}"
