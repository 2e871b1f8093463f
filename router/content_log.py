"""What a call's event keeps of its content when content logging is on for it.

Off by default (zero data retention): events then carry no prompt or completion at all. It is on
for a call when `logging.content` is on, or its key's `log_content` is true — and off, whatever
the policy, when the key's `log_content` is false or the caller sent `x-tollway-log-content: off`
(`content_limit`). On, a call a provider answered (or the response cache did) carries, in
`request_content`, the request as tollway sent it — the gateway's internal OpenAI shape, after
the guardrails' redactions, as JSON — and in `response_content` the answer's messages as JSON
(a stream: what had streamed when it ended, however it ended; embeddings: none, vectors are not
content anyone reads). Each is
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

from router.attribution import Attribution
from router.schemas import ChatCompletionRequest, EmbeddingsRequest
from tollway.config.schema import LoggingPolicy


def content_limit(policy: LoggingPolicy, who: Attribution) -> int | None:
    """How many characters of each of the call's prompt and answer its event keeps; None: no
    content at all."""
    logged = policy.content if who.log_content is None else who.log_content
    return policy.content_max_chars if logged else None


def content_fields(
    limit: int | None,
    request: ChatCompletionRequest | EmbeddingsRequest,
    messages: Sequence[dict[str, Any]] | None,
) -> dict[str, str | None]:
    """The event's content fields, each clipped to `limit`: none when it is None (content
    logging off). `messages`: the answer's messages (None for embeddings)."""
    if limit is None:
        return {}
    response = clipped(orjson.dumps(list(messages)).decode(), limit) if messages else None
    return {
        "request_content": clipped(request.model_dump_json(exclude_none=True), limit),
        "response_content": response,
    }


def content_of(
    limit: int | None,
    request: ChatCompletionRequest | EmbeddingsRequest,
    body: dict[str, Any],
) -> dict[str, str | None]:
    """`content_fields` of a call answered whole, from its answer's body."""
    if limit is None:
        return {}
    if not isinstance(request, ChatCompletionRequest):
        return content_fields(limit, request, None)
    messages = [choice.get("message") or {} for choice in body.get("choices") or []]
    return content_fields(limit, request, messages)


def clipped(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[clipped: {len(text) - limit:,} more characters]"
