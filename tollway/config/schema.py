"""The `tollway.yaml` model: policy as code, validated before anything starts.

Each section is a pydantic model (`catalogue.py`: providers, models, routes; `governance.py`:
organisation, keys, budgets, webhooks, logging; `guardrails.py`; `types.py`: the shared building blocks).
Cross-references between sections (a model's provider, a route's candidates, a key's business
line, a budget's scope) are checked here in `TollwayConfig`, so a bad file fails at load with
the field path that is wrong. Everything is re-exported here: import from this module.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from tollway.config.catalogue import (
    ModelConfig,
    PricePoint,
    ProviderConfig,
    ProxyLimits,
    ResponseCache,
    RouteConfig,
    SimBehaviour,
    TaskRule,
)
from tollway.config.governance import (
    HEADER_OVERRIDES,
    BudgetConfig,
    BudgetScope,
    BudgetSpec,
    BusinessLine,
    HeaderOverride,
    KeyConfig,
    LoggingPolicy,
    Organisation,
    SessionPolicy,
    WebhookConfig,
)
from tollway.config.guardrails import (
    DetectorName,
    GuardrailAction,
    GuardrailConfig,
    GuardrailTarget,
)
from tollway.config.types import (
    BudgetActionName,
    Capability,
    ConfigReferenceError,
    Issue,
    Loc,
    Name,
    Period,
    Price,
    ProviderType,
    RateLimits,
    Role,
    WebhookEvent,
    _Strict,
)

__all__ = [
    "HEADER_OVERRIDES",
    "BudgetActionName",
    "BudgetConfig",
    "BudgetScope",
    "BudgetSpec",
    "BusinessLine",
    "Capability",
    "ConfigReferenceError",
    "DetectorName",
    "GuardrailAction",
    "GuardrailConfig",
    "GuardrailTarget",
    "HeaderOverride",
    "Issue",
    "KeyConfig",
    "Loc",
    "LoggingPolicy",
    "ModelConfig",
    "Name",
    "Organisation",
    "Period",
    "Price",
    "PricePoint",
    "ProviderConfig",
    "ProviderType",
    "ProxyLimits",
    "RateLimits",
    "ResponseCache",
    "Role",
    "RouteConfig",
    "SessionPolicy",
    "SimBehaviour",
    "TaskRule",
    "TollwayConfig",
    "WebhookConfig",
    "WebhookEvent",
]


class TollwayConfig(_Strict):
    providers: list[ProviderConfig] = Field(default_factory=list)
    models: list[ModelConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    organisation: Organisation = Field(default_factory=Organisation)
    keys: list[KeyConfig] = Field(default_factory=list)
    budgets: list[BudgetConfig] = Field(default_factory=list)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    guardrails: list[GuardrailConfig] = Field(default_factory=list)
    logging: LoggingPolicy = Field(default_factory=LoggingPolicy)
    sessions: SessionPolicy = Field(default_factory=SessionPolicy)
    limits: ProxyLimits = Field(default_factory=ProxyLimits)
    cache: ResponseCache = Field(default_factory=ResponseCache)

    @model_validator(mode="after")
    def _webhook_ids(self) -> TollwayConfig:
        hooks = [
            h if h.id else h.model_copy(update={"id": f"wh-{i + 1}"})
            for i, h in enumerate(self.webhooks)
        ]
        object.__setattr__(self, "webhooks", hooks)
        return self

    @model_validator(mode="after")
    def _references(self) -> TollwayConfig:
        issues = self.reference_issues()
        if issues:
            raise ConfigReferenceError(issues)
        return self

    def reference_issues(self) -> list[Issue]:
        """Every dangling or duplicate name, not just the first, so one edit fixes them all."""
        issues: list[Issue] = []
        issues += _unique("providers", [p.name for p in self.providers])
        issues += _unique("models", [m.name for m in self.models])
        issues += _unique("routes", [r.name for r in self.routes])
        issues += _unique("keys", [k.id for k in self.keys])
        issues += _unique("budgets", [b.id for b in self.budgets])
        issues += _unique("guardrails", [g.id for g in self.guardrails])
        providers = {p.name for p in self.providers}
        models = {m.name for m in self.models}
        for i, model in enumerate(self.models):
            if model.provider not in providers:
                issues.append(
                    (
                        ("models", i, "provider"),
                        f"unknown provider {model.provider!r}{_known(providers)}",
                    )
                )
        for i, route in enumerate(self.routes):
            if route.name in models:
                issues.append((("routes", i, "name"), f"{route.name!r} is already a model name"))
            issues += _route_model_issues(("routes", i), route, models)
        for i, key in enumerate(self.keys):
            issues += self._attribution_issues(
                ("keys", i), key.business_line, key.project, key.task_type
            )
        targets = models | {r.name for r in self.routes}
        tiered = any(route.economy for route in self.routes)
        for i, budget in enumerate(self.budgets):
            if budget.action == "downgrade" and not (budget.downgrade_to or tiered):
                issues.append(
                    (
                        ("budgets", i),
                        "action 'downgrade' needs downgrade_to (a model or route name), "
                        "or routes with an economy tier",
                    )
                )
            if budget.downgrade_to and budget.downgrade_to not in targets:
                issues.append(
                    (
                        ("budgets", i, "downgrade_to"),
                        f"unknown model or route {budget.downgrade_to!r}{_known(targets)}",
                    )
                )
            scope = budget.scope
            if scope.model and scope.model not in models:
                issues.append(
                    (
                        ("budgets", i, "scope", "model"),
                        f"unknown model {scope.model!r}{_known(models)}",
                    )
                )
            issues += self._attribution_issues(
                ("budgets", i, "scope"), scope.business_line, scope.project, scope.task_type
            )
        sessions = self.sessions
        if sessions.downgrade_usd and not (sessions.downgrade_to or tiered):
            issues.append(
                (
                    ("sessions", "downgrade_usd"),
                    "needs downgrade_to (a model or route name), or routes with an economy tier",
                )
            )
        if sessions.downgrade_to and sessions.downgrade_to not in targets:
            issues.append(
                (
                    ("sessions", "downgrade_to"),
                    f"unknown model or route {sessions.downgrade_to!r}{_known(targets)}",
                )
            )
        for i, guardrail in enumerate(self.guardrails):
            scope = guardrail.scope
            if scope.model and scope.model not in targets:  # the model or route asked for
                issues.append(
                    (
                        ("guardrails", i, "scope", "model"),
                        f"unknown model or route {scope.model!r}{_known(targets)}",
                    )
                )
            issues += self._attribution_issues(
                ("guardrails", i, "scope"), scope.business_line, scope.project, scope.task_type
            )
        return issues

    def _attribution_issues(
        self, at: Loc, business_line: str | None, project: str | None, task_type: str | None
    ) -> list[Issue]:
        """Attribution names must exist in the organisation, when it declares them.

        A typo here would otherwise make a key's spend land in a phantom business line, or a
        budget silently match nothing.
        """
        issues: list[Issue] = []
        lines = {b.name: set(b.projects) for b in self.organisation.business_lines}
        if lines and business_line and business_line not in lines:
            issues.append(
                ((*at, "business_line"), f"unknown business line {business_line!r}{_known(lines)}")
            )
        elif (
            business_line
            and project
            and lines.get(business_line)
            and project not in lines[business_line]
        ):
            issues.append(
                (
                    (*at, "project"),
                    f"unknown project {project!r} in business line {business_line!r}"
                    f"{_known(lines[business_line])}",
                )
            )
        task_types = set(self.organisation.task_types)
        if task_types and task_type and task_type not in task_types:
            issues.append(
                ((*at, "task_type"), f"unknown task type {task_type!r}{_known(task_types)}")
            )
        return issues

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)

    def provider(self, name: str) -> ProviderConfig | None:
        return next((p for p in self.providers if p.name == name), None)

    def route(self, name: str) -> RouteConfig | None:
        return next((r for r in self.routes if r.name == name), None)


def _unique(section: str, names: list[str]) -> list[Issue]:
    seen: set[str] = set()
    issues: list[Issue] = []
    for i, name in enumerate(names):
        if name in seen:
            issues.append(((section, i), f"duplicate name {name!r}"))
        seen.add(name)
    return issues


def _known(names: set[str] | dict[str, set[str]]) -> str:
    return f" (declared: {', '.join(sorted(names))})" if names else " (none declared)"


def _route_model_issues(at: Loc, route: RouteConfig, models: set[str]) -> list[Issue]:
    """Every model a route names (candidates, fallbacks, tiers, weights, task rules) exists."""
    named: list[tuple[Loc, str]] = []
    for field in ("candidates", "fallbacks", "economy"):
        named += [((*at, field, j), name) for j, name in enumerate(getattr(route, field))]
    named += [((*at, "weights", name), name) for name in route.weights]
    for r, rule in enumerate(route.tasks):
        named += [
            ((*at, "tasks", r, "candidates", j), n) for j, n in enumerate(rule.candidates or [])
        ]
    return [
        (loc, f"unknown model {name!r}{_known(models)}")
        for loc, name in named
        if name not in models
    ]
