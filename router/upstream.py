"""What provider adapters hand the gateway: a completion, stream chunks, or a failure.

Kept apart from router/providers so the pure translators (router/translate) can build these
without importing the adapters that use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.schemas import Usage


@dataclass
class ChatResult:
    """An OpenAI `chat.completion` body plus the usage tollway bills."""

    body: dict[str, Any]
    usage: Usage


@dataclass
class ChatChunk:
    """One item of a streamed completion.

    `data` is an OpenAI `chat.completion.chunk` with at least one choice (no `usage` key), or
    None; `usage` is what the upstream reported so far. `final` marks the usage that closes
    the stream (a partial one, e.g. Anthropic's `message_start`, is not final).
    """

    data: dict[str, Any] | None = None
    usage: Usage | None = None
    final: bool = False


class ProviderError(Exception):
    """An upstream attempt failed; `retryable` says whether another try or model may help.

    The message never contains the provider's secret (see `redact`). `retry_after` is the
    upstream's `Retry-After` in seconds, when it sent one: the resilience loop waits that long
    (up to a cap) before trying the same model again."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass
class EmbeddingResult:
    """An OpenAI embeddings `list` body (vectors in the caller's `encoding_format`) plus the
    usage tollway bills: input tokens only."""

    body: dict[str, Any]
    usage: Usage
