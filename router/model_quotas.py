"""Provider quotas: a model's requests and tokens a minute at its provider, kept by tollway.

A provider limits each account per model (OpenAI's RPM and TPM tiers, Anthropic's rate limits,
Gemini's quotas) and answers 429 past them. A catalogue model's `quota` states those limits,
and tollway counts every attempt it sends the model, across replicas as it counts keys' limits
(router/rate_limits.py, router/rate_sharing.py: the counts travel under the subject
`#model:<name>`, which no key id can be). A model at its quota is skipped, as a model whose
circuit is open is: the call goes to the next candidate or fallback at once, instead of
collecting a 429, waiting out its `Retry-After` and retrying first. When every candidate is at
its quota, the call is refused with a 429 whose `retry-after` says when the first has room.

Each attempt counts one request and the prompt's estimated tokens. A failed attempt gives the
tokens back (the provider saw the request, so it stays counted); the answered attempt's actual
input and output tokens replace the estimate once the call's event is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from prometheus_client import Counter

from router.errors import RateLimited
from router.rate_limits import RateLimiter, quota_ticket
from tollway.config.schema import ModelConfig

QUOTA_SKIPS = Counter(
    "tollway_quota_skips_total",
    "Candidates skipped because they were at their provider quota",
    ["provider", "model"],
)


def quota_subject(model: str) -> str:
    """The subject a model's counts are kept and shared under (key ids start alphanumeric)."""
    return f"#model:{model}"


@dataclass(frozen=True)
class CallQuota:
    """One call's hold on the provider quotas, for the attempt loop (router/resilience.py)."""

    limiter: RateLimiter
    call_id: UUID
    prompt_tokens: int

    def take(self, model: ModelConfig) -> float | None:
        """Count one attempt on `model`: None, or (counting nothing) the seconds until the
        model has room."""
        if model.quota is None:
            return None
        try:
            self.limiter.admit(
                quota_subject(model.name),
                model.quota,
                self.prompt_tokens,
                quota_ticket(self.call_id),
            )
        except RateLimited as refusal:
            QUOTA_SKIPS.labels(model.provider, model.name).inc()
            return float(refusal.details["retry_after_s"])
        return None

    def failed(self) -> None:
        """The attempt was not answered: its request stays counted, its tokens go back."""
        self.limiter.release(quota_ticket(self.call_id))
