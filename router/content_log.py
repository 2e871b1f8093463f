"""What a call's event keeps of its content when `logging.content` turns content logging on.

Off by default (zero data retention): events then carry no prompt or completion at all. On, a
call a provider answered (or the response cache did) carries, in `request_content`, the request
as tollway sent it — the gateway's internal OpenAI shape, after the guardrails' redactions, as
JSON — and in `response_content` the answer's messages as JSON (a stream: what had streamed when
it ended, however it ended; embeddings: none, vectors are not content anyone reads). Each is
clipped to `logging.content_max_chars`, so one huge prompt cannot outgrow a Kafka message; a
clipped text ends with a note of how much was left out. Refused calls (a guardrail, a budget, a
rate limit) never carry content: nothing was sent, and a guardrail's refusal is about what the
prompt contains. `logging.content_retention_days` clears the text in the ledger later
(analytics/retention.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from router.schemas import ChatCompletionRequest, EmbeddingsRequest
from tollway.config.schema import LoggingPolicy


def content_fields(
    policy: LoggingPolicy,
    request: ChatCompletionRequest | EmbeddingsRequest,
    messages: Sequence[dict[str, Any]] | None,
) -> dict[str, str | None]:
    """The event's content fields under `policy`: none when content logging is off.
    `messages`: the answer's messages (None for embeddings)."""
    if not policy.content:
        return {}
    limit = policy.content_max_chars
    response = clipped(orjson.dumps(list(messages)).decode(), limit) if messages else None
    return {
        "request_content": clipped(request.model_dump_json(exclude_none=True), limit),
        "response_content": response,
    }


def content_of(
    policy: LoggingPolicy,
    request: ChatCompletionRequest | EmbeddingsRequest,
    body: dict[str, Any],
) -> dict[str, str | None]:
    """`content_fields` of a call answered whole, from its answer's body."""
    if not policy.content:
        return {}
    if not isinstance(request, ChatCompletionRequest):
        return content_fields(policy, request, None)
    messages = [choice.get("message") or {} for choice in body.get("choices") or []]
    return content_fields(policy, request, messages)


def clipped(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[clipped: {len(text) - limit:,} more characters]"
