"""What can serve a call: providers, the priced model catalogue, routes, proxy limits."""

from __future__ import annotations

import os
import re
from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, field_validator, model_validator

from tollway.config.types import Capability, Name, Price, ProviderType, RateLimits, _Strict


class SimBehaviour(_Strict):
    """How the simulated provider answers: deterministic, so tests and demos are repeatable."""

    latency_ms: int = Field(default=20, ge=0, le=60_000)
    ms_per_output_token: float = Field(default=0.0, ge=0)
    output_tokens: int = Field(default=0, ge=0, description="0 derives the length from the prompt")
    error_rate: float = Field(default=0.0, ge=0, le=1)


#: headers a provider's `headers` may not set (compared in lower case)
RESERVED_HEADERS = frozenset(
    {
        "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key",
        "cookie", "host", "content-type", "content-length", "transfer-encoding", "connection",
    }
)  # fmt: skip
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


class ProviderConfig(_Strict):
    name: Name
    type: ProviderType
    base_url: str | None = None
    api_key_env: str | None = Field(
        default=None, pattern=r"^[A-Z_][A-Z0-9_]*$", description="Variable holding the secret."
    )
    timeout_s: float = Field(default=120.0, gt=0)
    # transport (router/providers/http.py, http2.py)
    http2: bool = Field(
        default=False,
        description="HTTP/2 to this provider (ALPN over https, prior knowledge over http).",
    )
    ca_bundle: str | None = Field(
        default=None,
        description="PEM file of the CAs this provider's certificate is checked against "
        "(instead of the public bundle): an internal CA in front of a self-hosted server.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers sent with every request to this provider (OpenAI-Organization, "
        "OpenRouter's HTTP-Referer, a preview flag); never credentials: api_key_env has those.",
    )
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

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, value: dict[str, str]) -> dict[str, str]:
        """Credentials belong in the environment (api_key_env), and the transport's own headers
        to the transport: a config file in a repository must not carry or break either."""
        refused = sorted(name for name in value if name.lower() in RESERVED_HEADERS)
        if refused:
            raise ValueError(
                f"headers may not set {', '.join(refused)}: credentials come from api_key_env, "
                "and the transport sets its own"
            )
        bad = sorted(name for name in value if not HEADER_NAME.fullmatch(name))
        if bad:
            raise ValueError(f"not a header name: {', '.join(bad)}")
        broken = sorted(name for name, text in value.items() if any(c in text for c in "\r\n\0"))
        if broken:  # it would end the header's line early: a header of the value's choosing
            raise ValueError(f"a header value may not contain a line break: {', '.join(broken)}")
        return value

    @field_validator("base_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        """An upstream is reached over http:// or https:// at a named host (the clients' own
        check, made at load so a typo is a config error rather than a failure at start)."""
        if value is not None:
            url = urlsplit(value)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError("base_url must be an http:// or https:// URL naming a host")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _readable_bundle(cls, value: str | None) -> str | None:
        """Checked at load, so a wrong path is a config error, not a failure on every call."""
        if value is not None and not (os.path.isfile(value) and os.access(value, os.R_OK)):
            raise ValueError(f"no readable CA bundle at {value!r}")
        return value


class PricePoint(_Strict):
    """Prices in USD per million tokens, in effect from `effective_from` (UTC date)."""

    effective_from: date = date(1970, 1, 1)
    input_per_mtok: Price
    output_per_mtok: Price
    cached_input_per_mtok: Price | None = None
    cache_write_per_mtok: Price | None = None
    reasoning_per_mtok: Price | None = None


class ModelConfig(_Strict):
    name: Name
    provider: Name
    upstream_name: str | None = Field(default=None, description="The provider's own model id.")
    family: str | None = Field(default=None, description="Price family; guessed from the name.")
    input_per_mtok: Price | None = None
    output_per_mtok: Price | None = None
    cached_input_per_mtok: Price | None = None
    #: prompt tokens written to a provider's prompt cache (Anthropic: 1.25x input for 5 min)
    cache_write_per_mtok: Price | None = None
    reasoning_per_mtok: Price | None = None
    price_effective_from: date = date(1970, 1, 1)
    price_history: list[PricePoint] = Field(
        default_factory=list, description="Earlier (or scheduled) prices with their start dates."
    )
    context_window: int = Field(default=128_000, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    capabilities: list[Capability] = Field(default_factory=list)
    quota: RateLimits | None = Field(
        default=None,
        description="Your account's rate limits for this model at its provider: a model at "
        "its quota is skipped for the next candidate instead of collecting 429s.",
    )

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
                    cache_write_per_mtok=self.cache_write_per_mtok,
                    reasoning_per_mtok=self.reasoning_per_mtok,
                )
            )
        return sorted(points, key=lambda p: p.effective_from)


#: older spellings of the strategies, still accepted
STRATEGY_ALIASES = {"ordered": "priority", "latency_aware": "lowest_latency"}

Strategy = Literal["priority", "weighted", "lowest_latency", "cost_aware"]
Share = Annotated[float, Field(ge=0, le=1)]


def _canonical_strategy(value: object) -> object:
    return STRATEGY_ALIASES.get(value, value) if isinstance(value, str) else value


class TaskRule(_Strict):
    """How a route serves some task types: its own candidates and quality floor."""

    task_types: list[str] = Field(min_length=1)
    candidates: list[Name] | None = Field(
        default=None, description="Models for these task types; the route's when unset."
    )
    quality_floor: Share | None = Field(
        default=None, description="Minimum mean feedback score (0..1) a model must keep."
    )
    latency_target_ms: float | None = Field(default=None, gt=0, description="p95 target.")


class RouteConfig(_Strict):
    name: Name
    strategy: Annotated[Strategy, BeforeValidator(_canonical_strategy)] = "priority"
    candidates: list[Name] = Field(min_length=1)
    fallbacks: list[Name] = Field(default_factory=list)
    deadline_s: float | None = Field(
        default=None, gt=0, description="Whole call, retries and fallbacks included."
    )
    max_retries: int | None = Field(
        default=None, ge=0, le=10, description="Overrides each provider's max_retries."
    )
    # -- how the strategies choose (router/routing.py) ----------------------------------------
    weights: dict[Name, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="weighted: traffic share per candidate (default 1)."
    )
    latency_target_ms: float | None = Field(
        default=None, gt=0, description="cost_aware: skip models whose p95 latency exceeds it."
    )
    quality_floor: Share | None = Field(
        default=None, description="cost_aware: skip models whose feedback is below it."
    )
    tasks: list[TaskRule] = Field(
        default_factory=list, description="Per task type candidates, floors and targets."
    )
    economy: list[Name] = Field(
        default_factory=list,
        description="The cheaper tier a budget at its downgrade threshold moves the route to.",
    )
    exploration: Share = Field(
        default=0.0, le=0.5, description="Share of calls that explore (Thompson sampling)."
    )
    min_calls: int = Field(default=20, ge=1, description="Calls before latency can exclude.")
    min_scores: int = Field(default=10, ge=1, description="Scores before quality can exclude.")

    def rule_for(self, task_type: str) -> TaskRule | None:
        return next((rule for rule in self.tasks if task_type in rule.task_types), None)

    def model_names(self) -> list[str]:
        """Every model the route may use, each once."""
        names = [*self.candidates, *self.fallbacks, *self.economy, *self.weights]
        for rule in self.tasks:
            names += rule.candidates or []
        return list(dict.fromkeys(names))


class ProxyLimits(_Strict):
    """Limits on what the proxy accepts from callers."""

    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    deadline_s: float = Field(
        default=300.0, gt=0, description="Whole-call deadline when the route sets none."
    )


class ResponseCache(_Strict):
    """tollway's own exact-match cache of answers (router/response_cache.py): off by default,
    as zero data retention asks; in memory only, per proxy process, never on disk."""

    enabled: bool = False
    ttl_s: float = Field(default=300.0, gt=0, description="How long an answer is reused.")
    max_entries: int = Field(default=10_000, ge=1)
    max_entry_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Larger answers are not kept."
    )
    scope: Literal["key", "business_line", "global"] = Field(
        default="key", description="Who shares cached answers: one key, a business line, all."
    )
