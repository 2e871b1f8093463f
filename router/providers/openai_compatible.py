"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, DeepSeek, Groq, Together…).

The request is forwarded as the caller sent it (unknown fields included), with the model
replaced by the provider's own model id. Usage comes from the provider's `usage` object,
including cached prompt tokens and reasoning tokens where reported. Streams always ask the
upstream for the final usage chunk (`stream_options.include_usage`), whatever the caller
asked, because that chunk is what the call is billed on. Embeddings go to `/embeddings` as sent,
billed on the answer's `usage.prompt_tokens` (estimated, and marked so, when a server gives none).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import orjson

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
from router.schemas import ChatCompletionRequest, EmbeddingsRequest, Usage
from router.tokens import embedding_input_tokens
from router.translate.reasoning import openai_effort
from tollway.config.schema import ModelConfig, ProviderConfig

DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1"}


def usage_from_openai(usage: dict[str, Any] | None) -> Usage:
    if not usage:
        return Usage(estimated=True)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cached_input_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def _drop_anthropic_extras(payload: dict[str, Any]) -> None:
    """Remove what only Anthropic understands (router/translate/anthropic.py): the `thinking`
    setting, the thinking blocks of earlier answers, and the prompt-caching marks of content
    parts and tools. OpenAI caches long prompts by itself and refuses fields it does not know."""
    payload.pop("thinking", None)
    for message in payload["messages"]:
        message.pop("thinking_blocks", None)
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                part.pop("cache_control", None)
    for tool in payload.get("tools") or ():
        tool.pop("cache_control", None)


class OpenAICompatibleProvider:
    def __init__(self, config: ProviderConfig, client: Upstream | None = None) -> None:
        self.config = config
        base_url = config.base_url or DEFAULT_BASE_URLS.get(config.type)
        if not base_url:
            raise ValueError(f"provider {config.name!r} has no base_url")
        self._secret = provider_secret(config)
        headers = {"authorization": f"Bearer {self._secret}"} if self._secret else {}
        self._client = client or new_http_client(config, base_url, headers)

    def _payload(self, request: ChatCompletionRequest, model: ModelConfig) -> dict[str, Any]:
        payload = request.model_dump(exclude_none=True)  # copies: the request stays as it was
        payload["model"] = model.upstream_name or model.name
        _drop_anthropic_extras(payload)
        payload.pop("reasoning_effort", None)
        effort = openai_effort(request, model)
        if effort is not None:
            payload["reasoning_effort"] = effort
        return payload

    async def chat(self, request: ChatCompletionRequest, model: ModelConfig) -> ChatResult:
        payload = self._payload(request, model)
        payload["stream"] = False
        payload.pop("stream_options", None)
        body = await post_json(self._client, self.config, "chat/completions", payload, self._secret)
        return ChatResult(body, usage_from_openai(body.get("usage")))

    async def stream(
        self, request: ChatCompletionRequest, model: ModelConfig
    ) -> AsyncIterator[ChatChunk]:
        payload = self._payload(request, model)
        payload["stream"] = True
        payload["stream_options"] = {**payload.get("stream_options", {}), "include_usage": True}
        try:
            async with self._client.stream("chat/completions", payload) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    raise status_error(
                        self.config, response.status_code, body, self._secret, response.headers
                    )
                async with aclosing(sse_data(response)) as events:
                    async for _, data in events:
                        if data.strip() == "[DONE]":
                            return
                        # one SSE data payload: the choices, then the usage if present
                        chunk = self._chunk(data)
                        usage = chunk.pop("usage", None)
                        if chunk.get("choices"):
                            yield ChatChunk(data=chunk)
                        if usage:
                            yield ChatChunk(usage=usage_from_openai(usage), final=True)
        except TransportError as exc:
            raise transport_error(self.config, exc) from None

    async def embed(self, request: EmbeddingsRequest, model: ModelConfig) -> EmbeddingResult:
        payload = request.model_dump(exclude_unset=True, exclude_none=True)
        payload["model"] = model.upstream_name or model.name
        body = await post_json(self._client, self.config, "embeddings", payload, self._secret)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ProviderError(f"{self.config.name}: the answer holds no embeddings", status=502)
        counted = (body.get("usage") or {}).get("prompt_tokens")
        if isinstance(counted, int):
            usage = Usage(input_tokens=counted)
        else:
            usage = Usage(input_tokens=sum(embedding_input_tokens(request.inputs)), estimated=True)
        return EmbeddingResult(body, usage)

    def _chunk(self, data: str) -> dict[str, Any]:
        """One SSE data payload decoded; a malformed one or an error object raises."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProviderError(f"{self.config.name}: malformed stream chunk", status=502) from None
        if not isinstance(chunk, dict):
            raise ProviderError(f"{self.config.name}: malformed stream chunk", status=502)
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise ProviderError(
                f"{self.config.name} failed mid-stream: {redact(str(message), self._secret)[:300]}",
                status=502,
            )
        return chunk

    async def close(self) -> None:
        await self._client.aclose()
