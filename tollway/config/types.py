"""Building blocks of the `tollway.yaml` model: names, prices, enumerations, field paths."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    "session.expensive",
    "session.limit_reached",
    "provider.circuit_opened",
    "guardrail.triggered",
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


class RateLimits(_Strict):
    """Requests and tokens a minute, over a sliding minute, and calls in flight at once, across
    every proxy replica: a key's limits, a business line's, or a model's quota at its provider
    (router/rate_limits.py)."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(
        default=None, ge=1, description="Input plus output tokens, the prompt counted on arrival."
    )
    max_parallel_requests: int | None = Field(
        default=None, ge=1, description="Calls in flight at once; a stream counts until it ends."
    )
