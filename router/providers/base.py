"""The provider adapter contract: one OpenAI-shaped chat request in, one completion out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from router.schemas import ChatCompletionRequest, Usage
from tollway.config.schema import ModelConfig, ProviderConfig


@dataclass
class ChatResult:
    """An OpenAI `chat.completion` body plus the usage tollway bills."""

    body: dict[str, Any]
    usage: Usage


class ProviderError(Exception):
    """An upstream attempt failed; `retryable` says whether another try or model may help."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class Provider(Protocol):
    config: ProviderConfig

    async def chat(self, request: ChatCompletionRequest, model: ModelConfig) -> ChatResult: ...

    async def close(self) -> None: ...
