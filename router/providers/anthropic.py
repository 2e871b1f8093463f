"""Anthropic's Messages API (`POST {base_url}/v1/messages`).

The gateway's OpenAI-shaped request is translated to a Messages request (router/translate),
sent with `x-api-key` and `anthropic-version: 2023-06-01`, and the answer translated back.
Usage comes from `input_tokens`, `output_tokens`, `cache_read_input_tokens` and
`cache_creation_input_tokens`; in a stream from `message_start` (the prompt) and
`message_delta` (the cumulative output), so an abandoned stream still knows its prompt size.
Anthropic has no embeddings API: a model on this provider cannot be an embeddings model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import orjson

from router.anthropic_betas import HEADER as BETA_HEADER
from router.anthropic_betas import beta_headers
from router.providers.base import (
    ChatChunk,
    ChatResult,
    EmbeddingResult,
    ProviderError,
    TransportError,
    Upstream,
    new_http_client,
    post_json,
    provider_secret,
    redact,
    sse_data,
    status_error,
    transport_error,
)
from router.schemas import ChatCompletionRequest, EmbeddingsRequest
from router.translate.anthropic_stream import AnthropicStreamDecoder
from router.translate.anthropic_upstream import chat_to_anthropic_request, message_to_chat
from tollway.config.schema import ModelConfig, ProviderConfig

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


#: what `/v1/messages/count_tokens` takes of a Messages request
COUNTED_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking"})


class AnthropicProvider:
    def __init__(self, config: ProviderConfig, client: Upstream | None = None) -> None:
        self.config = config
        self._secret = provider_secret(config)
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self._secret:
            headers["x-api-key"] = self._secret
        base_url = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._client = client or new_http_client(config, base_url, headers)
        configured = {k.lower(): v for k, v in config.headers.items()}
        self._betas = configured.get(BETA_HEADER)

    def _headers(self, request: ChatCompletionRequest) -> dict[str, str] | None:
        """The call's `anthropic-beta`, when the caller asked for betas (the provider's own
        ride on the client's headers otherwise)."""
        if not request.anthropic_betas:
            return None
        return beta_headers(self._betas, request.anthropic_betas)

    async def chat(self, request: ChatCompletionRequest, model: ModelConfig) -> ChatResult:
        payload = chat_to_anthropic_request(request, model)
        answer = await post_json(
            self._client, self.config, "v1/messages", payload, self._secret, self._headers(request)
        )
        body, usage = message_to_chat(answer, model.name)
        return ChatResult(body, usage)

    async def stream(
        self, request: ChatCompletionRequest, model: ModelConfig
    ) -> AsyncIterator[ChatChunk]:
        payload = {**chat_to_anthropic_request(request, model), "stream": True}
        decoder = AnthropicStreamDecoder(model.name, self.config.name)
        try:
            async with self._client.stream(
                "v1/messages", payload, self._headers(request)
            ) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    raise status_error(
                        self.config, response.status_code, body, self._secret, response.headers
                    )
                async with aclosing(sse_data(response)) as events:
                    async for event, data in events:
                        try:
                            parsed = orjson.loads(data)
                            items = decoder.feed(event, parsed if isinstance(parsed, dict) else {})
                        except orjson.JSONDecodeError:
                            raise ProviderError(
                                f"{self.config.name}: malformed stream event", status=502
                            ) from None
                        except ProviderError as exc:
                            raise ProviderError(
                                redact(str(exc), self._secret), status=502
                            ) from None
                        for item in items:
                            yield item
                        if decoder.done:
                            return
        except TransportError as exc:
            raise transport_error(self.config, exc) from None

    async def count_tokens(self, request: ChatCompletionRequest, model: ModelConfig) -> int:
        """The prompt's input tokens, counted by Anthropic (`/v1/messages/count_tokens`)."""
        payload = chat_to_anthropic_request(request, model)
        counted = {k: v for k, v in payload.items() if k in COUNTED_FIELDS}
        path = "v1/messages/count_tokens"
        answer = await post_json(
            self._client, self.config, path, counted, self._secret, self._headers(request)
        )
        tokens = answer.get("input_tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, int):
            raise ProviderError(f"{self.config.name}: no input_tokens in the count", status=502)
        return tokens

    async def embed(self, request: EmbeddingsRequest, model: ModelConfig) -> EmbeddingResult:
        raise ProviderError(
            f"{self.config.name}: Anthropic has no embeddings API", status=400, retryable=False
        )

    async def close(self) -> None:
        await self._client.aclose()
