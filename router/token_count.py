"""How long a prompt is, without a call (Anthropic's `/v1/messages/count_tokens`, which coding
tools ask before they send)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from router.attribution import Attribution
from router.needs import needs_of
from router.providers import ProviderError
from router.schemas import ChatCompletionRequest
from router.tokens import estimate_request_tokens

if TYPE_CHECKING:
    from router.gateway import Gateway

log = logging.getLogger(__name__)


async def prompt_tokens(gateway: Gateway, request: ChatCompletionRequest, who: Attribution) -> int:
    """The prompt's input tokens on the model the request resolves to (a route: its first
    choice): counted by the provider where it can (Anthropic), else estimated. Free, and no
    call: nothing is billed or published. The provider sees the prompt, so the guardrails
    screen it as they screen a call's (a block is the same 400)."""
    screening = gateway.guarded.prompt(request, who)
    if screening.refusal is not None:
        raise screening.refusal
    request = screening.request
    plan = gateway.policy.plan(request.model, needs_of(request))
    model = plan.models[0]
    provider = gateway.providers[model.provider]
    count = getattr(provider, "count_tokens", None)
    if count is not None:
        try:
            return int(await count(request, model))
        except ProviderError as exc:
            log.warning("counting tokens on %s failed, estimating: %s", model.name, exc)
    return estimate_request_tokens(request)
