"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, DeepSeek, Groq, Together…).

The request is forwarded as the caller sent it (unknown fields included), with the model
replaced by the provider's own model id. Usage comes from the provider's `usage` object,
including cached prompt tokens and reasoning tokens where reported.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from router.providers.base import ChatResult, ProviderError
from router.schemas import ChatCompletionRequest, Usage
from tollway.config.schema import ModelConfig, ProviderConfig

DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1"}
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


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


class OpenAICompatibleProvider:
    def __init__(self, config: ProviderConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        base_url = config.base_url or DEFAULT_BASE_URLS.get(config.type)
        if not base_url:
            raise ValueError(f"provider {config.name!r} has no base_url")
        headers = {}
        if config.api_key_env:
            secret = os.environ.get(config.api_key_env)
            if secret:
                headers["authorization"] = f"Bearer {secret}"
        self._client = client or httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=10.0),
        )

    async def chat(self, request: ChatCompletionRequest, model: ModelConfig) -> ChatResult:
        payload = request.model_dump(exclude_none=True)
        payload["model"] = model.upstream_name or model.name
        payload["stream"] = False
        try:
            response = await self._client.post("chat/completions", json=payload)
        except httpx.TimeoutException:
            raise ProviderError(f"{self.config.name}: upstream timed out", status=504) from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"{self.config.name}: {type(exc).__name__}", status=502) from None
        if response.status_code >= 400:
            raise ProviderError(
                f"{self.config.name} answered HTTP {response.status_code}: {_upstream_message(response)}",
                status=response.status_code,
                retryable=response.status_code in RETRYABLE_STATUS,
            )
        body = response.json()
        return ChatResult(body, usage_from_openai(body.get("usage")))

    async def close(self) -> None:
        await self._client.aclose()


def _upstream_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return str(message)[:300]
    except ValueError:
        return response.text[:300]
