"""Who may spend what: the organisation, virtual keys, budgets, webhooks, logging policy."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from tollway.config.types import (
    BudgetActionName,
    Name,
    Period,
    RateLimits,
    Role,
    WebhookEvent,
    _Strict,
)


class BusinessLine(_Strict):
    name: Name
    projects: list[Name] = Field(default_factory=list)
    limits: RateLimits | None = Field(
        default=None, description="Requests and tokens a minute for all the line's keys together."
    )


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
    limits: RateLimits | None = None
    log_content: bool | None = Field(
        default=None,
        description="Content logging for this key's calls: true logs them even when "
        "logging.content is off, false never; unset: as logging.content says.",
    )
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    created_at: datetime | None = None
    # a rotation's overlap: the secret it replaced still works until `previous_valid_until`
    previous_hash: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    previous_valid_until: datetime | None = None

    @field_validator("expires_at", "revoked_at", "created_at", "previous_valid_until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Naive times in tollway.yaml mean UTC."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _rotation_complete(self) -> KeyConfig:
        if (self.previous_hash is None) != (self.previous_valid_until is None):
            raise ValueError("previous_hash and previous_valid_until go together")
        return self

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


class BudgetSpec(_Strict):
    """A budget without its id: what `PUT /v1/admin/budgets/{id}` takes."""

    scope: BudgetScope = Field(default_factory=BudgetScope)
    period: Period = "monthly"
    timezone: str = "UTC"
    limit_usd: Annotated[Decimal, Field(gt=0)]
    alerts: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [0.5, 0.8, 1.0]
    )
    action: BudgetActionName = "alert_only"
    downgrade_to: str | None = Field(
        default=None,
        description="downgrade: the model or route to use instead, when the requested route "
        "has no economy tier of its own.",
    )
    downgrade_at: float = Field(
        default=1.0, gt=0, le=1, description="downgrade: share of the limit where it starts."
    )

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


class BudgetConfig(BudgetSpec):
    id: Name


class WebhookConfig(_Strict):
    id: Name | None = Field(default=None, description="Names the endpoint; `wh-<n>` by default.")
    url: Annotated[str, Field(pattern=r"^https?://")]
    secret_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    events: list[WebhookEvent] = Field(min_length=1)
    max_concurrency: int = Field(default=4, ge=1, le=100)
    max_attempts: int = Field(default=8, ge=1, le=50)
    timeout_s: float = Field(default=10.0, gt=0)


class SessionPolicy(_Strict):
    """What sessions (the calls that named one `x-tollway-session-id`, or a coding tool's own
    session header) may cost before someone hears of it, before they are served by cheaper
    models, and before they are stopped."""

    alert_usd: Decimal | None = Field(
        default=None,
        gt=0,
        description="A session whose calls have cost this much raises session.expensive, "
        "once (default: no alert).",
    )
    limit_usd: Decimal | None = Field(
        default=None,
        gt=0,
        description="A session whose calls have cost this much gets its further calls "
        "refused with a 429 on every proxy replica (default: no limit).",
    )
    downgrade_usd: Decimal | None = Field(
        default=None,
        gt=0,
        description="A session whose calls have cost this much is served by cheaper models "
        "from then on: its route's economy tier, else downgrade_to (default: never).",
    )
    downgrade_to: str | None = Field(
        default=None,
        description="The model or route for a session past downgrade_usd whose call has no "
        "economy tier to move to (a model asked for by name, or a route without one).",
    )

    idle_hours: float = Field(
        default=24,
        gt=0,
        le=24 * 7,
        description="A session with no call for this long is forgotten by the proxies: its "
        "spend counts from zero again (and their memory of it is freed).",
    )

    @model_validator(mode="after")
    def _downgrade_before_the_limit(self) -> SessionPolicy:
        if self.downgrade_usd and self.limit_usd and self.downgrade_usd >= self.limit_usd:
            raise ValueError("downgrade_usd must be below limit_usd")
        return self

    @property
    def counted(self) -> bool:
        """Whether the proxies count what each session costs (a limit or a downgrade needs it)."""
        return self.limit_usd is not None or self.downgrade_usd is not None


class LoggingPolicy(_Strict):
    """Zero data retention by default: prompts and completions stay out of the ledger."""

    content: bool = False
    content_max_chars: int = Field(
        default=65_536, ge=1_024, description="Each of a call's prompt and answer, clipped here."
    )
    content_retention_days: int = Field(default=30, ge=1)
    ledger_retention_days: int | None = Field(default=None, ge=1)
