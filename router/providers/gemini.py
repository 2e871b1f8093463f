"""Google's Gemini API: `models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.

The key goes in the `x-goog-api-key` header — never in the `?key=` query parameter, which
would put the secret into URLs that proxies and error messages repeat. Usage comes from
`usageMetadata` (see router/translate/gemini.py for how its counts map to tollway's).
Embeddings use `models/{model}:batchEmbedContents`, which takes texts and reports no token
counts: they are estimated, and the event says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from urllib.parse import quote

import orjson

from router.errors import InvalidRequest
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
from router.translate.embeddings import gemini_embed_request, gemini_vectors, openai_embeddings
from router.translate.gemini import GeminiStreamDecoder, chat_to_gemini_request, gemini_to_chat
from tollway.config.schema import ModelConfig, ProviderConfig

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"


class GeminiProvider:
    def __init__(self, config: ProviderConfig, client: Upstream | None = None) -> None:
        self.config = config
        self._secret = provider_secret(config)
        headers = {"x-goog-api-key": self._secret} if self._secret else {}
        base_url = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._client = client or new_http_client(config, base_url, headers)

    def _path(self, model: ModelConfig, method: str) -> str:
        return f"models/{quote(_name(model), safe='.-_')}:{method}"

    async def chat(self, request: ChatCompletionRequest, model: ModelConfig) -> ChatResult:
        payload = chat_to_gemini_request(request, model)
        answer = await post_json(
            self._client, self.config, self._path(model, "generateContent"), payload, self._secret
        )
        body, usage = gemini_to_chat(answer, model.name)
        return ChatResult(body, usage)

    async def stream(
        self, request: ChatCompletionRequest, model: ModelConfig
    ) -> AsyncIterator[ChatChunk]:
        payload = chat_to_gemini_request(request, model)
        decoder = GeminiStreamDecoder(model.name, choices=request.n or 1)
        path = self._path(model, "streamGenerateContent")
        try:
            async with self._client.stream(f"{path}?alt=sse", payload) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    raise status_error(
                        self.config, response.status_code, body, self._secret, response.headers
                    )
                async with aclosing(sse_data(response)) as events:
                    async for _, data in events:
                        try:
                            parsed = orjson.loads(data)
                        except orjson.JSONDecodeError:
                            raise ProviderError(
                                f"{self.config.name}: malformed stream chunk", status=502
                            ) from None
                        if isinstance(parsed, dict) and parsed.get("error"):
                            error = parsed["error"]
                            message = error.get("message") if isinstance(error, dict) else error
                            raise ProviderError(
                                f"{self.config.name} failed mid-stream: "
                                f"{redact(str(message), self._secret)[:300]}",
                                status=502,
                            )
                        for item in decoder.feed(parsed if isinstance(parsed, dict) else {}):
                            yield item
        except TransportError as exc:
            raise transport_error(self.config, exc) from None

    async def embed(self, request: EmbeddingsRequest, model: ModelConfig) -> EmbeddingResult:
        texts = request.texts
        if texts is None:  # the caller's to change, whichever provider would be tried
            raise InvalidRequest(
                f"{model.name} is served by Gemini, which embeds texts, not token ids",
                details={"param": "input"},
            )
        payload = gemini_embed_request(texts, _name(model), request.dimensions)
        path = self._path(model, "batchEmbedContents")
        answer = await post_json(self._client, self.config, path, payload, self._secret)
        try:
            vectors = gemini_vectors(answer)
        except ValueError as exc:
            raise ProviderError(f"{self.config.name}: {exc}", status=502) from None
        if len(vectors) != len(texts):
            raise ProviderError(
                f"{self.config.name}: {len(vectors)} embeddings for {len(texts)} texts", status=502
            )
        usage = Usage(input_tokens=sum(embedding_input_tokens(texts)), estimated=True)
        body = openai_embeddings(vectors, model.name, usage, request.encoding_format)
        return EmbeddingResult(body, usage)

    async def close(self) -> None:
        await self._client.aclose()


def _name(model: ModelConfig) -> str:
    return (model.upstream_name or model.name).removeprefix("models/")
