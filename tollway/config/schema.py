"""The `tollway.yaml` model: policy as code, validated before anything starts.

Every section of the design's configuration is a pydantic model here. Cross-references
(a model's provider, a route's candidates, a key's business line, a budget's scope) are
checked in `TollwayConfig`, so a bad file fails at load with the field path that is wrong.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$")
]
Price = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=9)]

ProviderType = Literal["openai", "anthropic", "gemini", "openai_compatible", "sim"]
Role = Literal["viewer", "developer", "finops", "admin"]
Capability = Literal["tools", "vision", "json", "streaming", "embeddings", "reasoning"]
Period = Literal["daily", "weekly", "monthly", "quarterly", "total"]
BudgetActionName = Literal["block", "downgrade", "alert_only"]
WebhookEvent = Literal[
    "budget.threshold_reached",
    "budget.exceeded",
    "budget.forecast_breach",
    "spend.anomaly",
    "provider.circuit_opened",
]


Loc = tuple[str | int, ...]
Issue = tuple[Loc, str]
"""A problem at a field path, e.g. (("models", 2, "provider"), "unknown provider 'x'")."""


class ConfigReferenceError(ValueError):
    """Cross-reference problems of a whole config, each with the field path it concerns.

    A ValueError so pydantic reports it as a validation error; the loader reads `issues` back
    from the error context to render one line per problem.
    """

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__(
            "; ".join(f"{'.'.join(str(p) for p in loc)}: {msg}" for loc, msg in issues)
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimBehaviour(_Strict):
    """How the simulated provider answers: deterministic, so tests and demos are repeatable."""

    latency_ms: int = Field(default=20, ge=0, le=60_000)
    ms_per_output_token: float = Field(default=0.0, ge=0)
    output_tokens: int = Field(default=0, ge=0, description="0 derives the length from the prompt")
    error_rate: float = Field(default=0.0, ge=0, le=1)


class ProviderConfig(_Strict):
    name: Name
    type: ProviderType
    base_url: str | None = None
    api_key_env: str | None = Field(
        default=None, pattern=r"^[A-Z_][A-Z0-9_]*$", description="Variable holding the secret."
    )
    timeout_s: float = Field(default=120.0, gt=0)
    sim: SimBehaviour = Field(default_factory=SimBehaviour)
    # resilience (router/resilience.py): retries of one model, then fallback to the next
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries of a model per call.")
    attempt_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="One try (a stream: up to its first chunk); timeout_s if unset.",
    )
    backoff_base_s: float = Field(default=0.2, ge=0, description="First retry waits up to this.")
    backoff_max_s: float = Field(default=5.0, ge=0)
    retry_after_max_s: float = Field(
        default=10.0, ge=0, description="A longer Retry-After falls back instead of waiting."
    )
    breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive failures that open a model's circuit."
    )
    breaker_cooldown_s: float = Field(
        default=30.0, gt=0, description="Open time before one half-open probe is let through."
    )

    @model_validator(mode="after")
    def _needs_endpoint(self) -> ProviderConfig:
        if self.type == "openai_compatible" and not self.base_url:
            raise ValueError("an openai_compatible provider needs base_url")
        return self


class PricePoint(_Strict):
    """Prices in USD per million tokens, in effect from `effective_from` (UTC date)."""

    effective_from: date = date(1970, 1, 1)
    input_per_mtok: Price
    output_per_mtok: Price
    cached_input_per_mtok: Price | None = None
    reasoning_per_mtok: Price | None = None


class ModelConfig(_Strict):
    name: Name
    provider: Name
    upstream_name: str | None = Field(default=None, description="The provider's own model id.")
    family: str | None = Field(default=None, description="Price family; guessed from the name.")
    input_per_mtok: Price | None = None
    output_per_mtok: Price | None = None
    cached_input_per_mtok: Price | None = None
    reasoning_per_mtok: Price | None = None
    price_effective_from: date = date(1970, 1, 1)
    price_history: list[PricePoint] = Field(
        default_factory=list, description="Earlier (or scheduled) prices with their start dates."
    )
    context_window: int = Field(default=128_000, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    capabilities: list[Capability] = Field(default_factory=list)

    @model_validator(mode="after")
    def _price_pairs(self) -> ModelConfig:
        if (self.input_per_mtok is None) != (self.output_per_mtok is None):
            raise ValueError("give both input_per_mtok and output_per_mtok, or neither")
        return self

    @property
    def priced(self) -> bool:
        """True when some price is known (the flat fields, or a price_history point)."""
        return self.input_per_mtok is not None or bool(self.price_history)

    def price_points(self) -> list[PricePoint]:
        """All known prices, oldest first; the flat fields are the newest point."""
        points = list(self.price_history)
        if self.input_per_mtok is not None and self.output_per_mtok is not None:
            points.append(
                PricePoint(
                    effective_from=self.price_effective_from,
                    input_per_mtok=self.input_per_mtok,
                    output_per_mtok=self.output_per_mtok,
                    cached_input_per_mtok=self.cached_input_per_mtok,
                    reasoning_per_mtok=self.reasoning_per_mtok,
                )
            )
        return sorted(points, key=lambda p: p.effective_from)


class RouteConfig(_Strict):
    name: Name
    strategy: Literal["ordered", "cost_aware", "latency_aware", "weighted"] = "ordered"
    candidates: list[Name] = Field(min_length=1)
    fallbacks: list[Name] = Field(default_factory=list)
    deadline_s: float | None = Field(
        default=None, gt=0, description="Whole call, retries and fallbacks included."
    )
    max_retries: int | None = Field(
        default=None, ge=0, le=10, description="Overrides each provider's max_retries."
    )


class ProxyLimits(_Strict):
    """Limits on what the proxy accepts from callers."""

    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    deadline_s: float = Field(
        default=300.0, gt=0, description="Whole-call deadline when the route sets none."
    )


class BusinessLine(_Strict):
    name: Name
    projects: list[Name] = Field(default_factory=list)


class Organisation(_Strict):
    business_lines: list[BusinessLine] = Field(default_factory=list)
    task_types: list[Name] = Field(default_factory=list)
    environments: list[Name] = Field(default_factory=lambda: ["production"])


HeaderOverride = Literal["project", "task_type", "user", "environment", "tags"]
HEADER_OVERRIDES: tuple[HeaderOverride, ...] = (
    "project",
    "task_type",
    "user",
    "environment",
    "tags",
)


class KeyConfig(_Strict):
    id: Name
    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    business_line: str = ""
    project: str = ""
    task_type: str = ""
    environment: str = ""
    role: Role = "developer"
    tags: dict[str, str] = Field(default_factory=dict)
    name: str = Field(default="", max_length=200, description="What the key is for.")
    allowed_models: list[str] = Field(
        default_factory=list, description="Models and routes the key may call; empty: all."
    )
    header_overrides: list[HeaderOverride] = Field(
        default_factory=lambda: list(HEADER_OVERRIDES),
        description="Which x-tollway-* headers may refine this key's attribution.",
    )
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    created_at: datetime | None = None

    @field_validator("expires_at", "revoked_at", "created_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Naive times in tollway.yaml mean UTC."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def active_at(self, moment: datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= moment:
            return False
        return self.expires_at is None or moment < self.expires_at


class BudgetScope(_Strict):
    business_line: str | None = None
    project: str | None = None
    task_type: str | None = None
    key_id: str | None = None
    user: str | None = None
    model: str | None = None
    tag: dict[str, str] | None = None


class BudgetConfig(_Strict):
    id: Name
    scope: BudgetScope = Field(default_factory=BudgetScope)
    period: Period = "monthly"
    timezone: str = "UTC"
    limit_usd: Annotated[Decimal, Field(gt=0)]
    alerts: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [0.5, 0.8, 1.0]
    )
    action: BudgetActionName = "alert_only"
    downgrade_to: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Paris)"
            ) from None
        return value

    @model_validator(mode="after")
    def _downgrade_target(self) -> BudgetConfig:
        if self.action == "downgrade" and not self.downgrade_to:
            raise ValueError("action 'downgrade' needs downgrade_to (a model or route name)")
        return self


class WebhookConfig(_Strict):
    id: Name | None = Field(default=None, description="Names the endpoint; `wh-<n>` by default.")
    url: Annotated[str, Field(pattern=r"^https?://")]
    secret_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    events: list[WebhookEvent] = Field(min_length=1)
    max_concurrency: int = Field(default=4, ge=1, le=100)
    max_attempts: int = Field(default=8, ge=1, le=50)
    timeout_s: float = Field(default=10.0, gt=0)


class LoggingPolicy(_Strict):
    """Zero data retention by default: prompts and completions stay out of the ledger."""

    content: bool = False
    content_retention_days: int = Field(default=30, ge=1)
    ledger_retention_days: int | None = Field(default=None, ge=1)


class TollwayConfig(_Strict):
    providers: list[ProviderConfig] = Field(default_factory=list)
    models: list[ModelConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    organisation: Organisation = Field(default_factory=Organisation)
    keys: list[KeyConfig] = Field(default_factory=list)
    budgets: list[BudgetConfig] = Field(default_factory=list)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    logging: LoggingPolicy = Field(default_factory=LoggingPolicy)
    limits: ProxyLimits = Field(default_factory=ProxyLimits)

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
            for field in ("candidates", "fallbacks"):
                for j, name in enumerate(getattr(route, field)):
                    if name not in models:
                        issues.append(
                            ((("routes", i, field, j)), f"unknown model {name!r}{_known(models)}")
                        )
        for i, key in enumerate(self.keys):
            issues += self._attribution_issues(
                ("keys", i), key.business_line, key.project, key.task_type
            )
        targets = models | {r.name for r in self.routes}
        for i, budget in enumerate(self.budgets):
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
