"""The provider adapter contract: one OpenAI-shaped chat request in, a completion (or a stream
of completion chunks) out, always in OpenAI shape — the gateway's one internal shape; and one
OpenAI-shaped embeddings request in, OpenAI's embeddings `list` out.

Adapters for other wire formats (Anthropic, Gemini) translate at their edge, so the gateway,
the accounting and the caller-facing protocols never see a provider's own format.
"""

from __future__ import annotations

import email.utils
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from router.providers.http import TransportError, Upstream, proxy_from_environment
from router.providers.http1 import Http1Client
from router.providers.sse_events import Event, events_of
from router.schemas import ChatCompletionRequest, EmbeddingsRequest
from router.upstream import ChatChunk, ChatResult, EmbeddingResult, ProviderError
from tollway.config.schema import ModelConfig, ProviderConfig

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}


class Provider(Protocol):
    config: ProviderConfig

    async def chat(self, request: ChatCompletionRequest, model: ModelConfig) -> ChatResult: ...

    def stream(
        self, request: ChatCompletionRequest, model: ModelConfig
    ) -> AsyncIterator[ChatChunk]:
        """An async generator of chunks; raises ProviderError (before or during the stream)."""
        ...

    async def embed(self, request: EmbeddingsRequest, model: ModelConfig) -> EmbeddingResult:
        """Vectors in the request's `encoding_format`; raises ProviderError."""
        ...

    async def close(self) -> None: ...


def provider_secret(config: ProviderConfig) -> str | None:
    """The provider's secret, read from the variable the config names (never from the file)."""
    if not config.api_key_env:
        return None
    return os.environ.get(config.api_key_env) or None


def redact(text: str, secret: str | None) -> str:
    """`text` without the secret: upstreams sometimes echo the key they refused."""
    return text.replace(secret, "***") if secret else text


def new_http_client(config: ProviderConfig, base_url: str, headers: dict[str, str]) -> Upstream:
    """The provider's pooled keep-alive client: HTTP/1.1 on asyncio and httptools
    (router/providers/http1.py); on aiohttp where an HTTP proxy variable is set
    (router/providers/http_via_proxy.py); with `http2: true`, HTTP/2 on httpx
    (router/providers/http2.py). The last two are imported only when chosen. `headers` (the
    adapter's credentials) go with the provider's own `headers` from the config."""
    headers = {**config.headers, **headers}
    client: type[Upstream]
    if config.http2:
        from router.providers.http2 import Http2UpstreamClient

        client = Http2UpstreamClient
    elif proxy_from_environment():
        from router.providers.http_via_proxy import ProxiedClient

        client = ProxiedClient
    else:
        client = Http1Client
    return client(  # type: ignore[call-arg]
        base_url,
        headers,
        timeout_s=config.timeout_s,
        connect_timeout_s=10.0,
        ca_bundle=config.ca_bundle,
    )


def transport_error(config: ProviderConfig, exc: TransportError) -> ProviderError:
    """A network failure as a ProviderError naming only the exception type (URLs and headers
    could carry a secret)."""
    if exc.timeout:
        return ProviderError(f"{config.name}: upstream timed out", status=504)
    return ProviderError(f"{config.name}: {exc.kind}", status=502)


def status_error(
    config: ProviderConfig,
    status: int,
    body: bytes,
    secret: str | None,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    """An HTTP error answer as a ProviderError with the upstream's own message, redacted, and
    its `Retry-After` (so a 429 or 503 is retried when the upstream says, not sooner)."""
    return ProviderError(
        f"{config.name} answered HTTP {status}: {redact(error_message(body), secret)}",
        status=status,
        retryable=status in RETRYABLE_STATUS,
        retry_after=parse_retry_after(headers.get("retry-after") if headers else None),
    )


async def post_json(
    client: Upstream,
    config: ProviderConfig,
    path: str,
    payload: dict[str, Any],
    secret: str | None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """POST a non-streamed request; the decoded JSON answer, or the `ProviderError` that
    says whether another try may help (with the secret redacted from upstream text)."""
    try:
        response = await client.post(path, payload, headers)
    except TransportError as exc:
        raise transport_error(config, exc) from None
    if response.status_code >= 400:
        raise status_error(config, response.status_code, response.content, secret, response.headers)
    try:
        return response.json()
    except orjson.JSONDecodeError:
        raise ProviderError(
            f"{config.name}: the answer is not JSON (HTTP {response.status_code})", status=502
        ) from None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: delay-seconds or an HTTP date (RFC 9110 §10.2.3);
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_message(body: bytes) -> str:
    """The message of an OpenAI, Anthropic or Google error body, or the raw text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")[:300]
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return str(message if message is not None else data)[:300]


class _ByteBody(Protocol):
    def aiter_bytes(self) -> AsyncGenerator[bytes, None]: ...


def sse_data(response: _ByteBody) -> AsyncGenerator[Event, None]:
    """(event, data) pairs of a server-sent-events body; comments and keep-alives skipped.

    Follows the SSE spec closely enough for the three wire formats tollway speaks: fields
    `event:` and `data:` (several data lines are joined by newlines), a blank line dispatches
    (router/providers/sse_events.py), parsed from each read as it arrives: no generator per line.
    """
    return events_of(response.aiter_bytes())


__all__ = [
    "ChatChunk",
    "ChatResult",
    "EmbeddingResult",
    "Provider",
    "ProviderError",
    "TransportError",
    "Upstream",
    "new_http_client",
    "parse_retry_after",
    "provider_secret",
    "redact",
    "sse_data",
    "status_error",
    "transport_error",
]
