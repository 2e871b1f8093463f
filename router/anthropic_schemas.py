"""Request shape of the Anthropic-compatible API (`POST /v1/messages`): the fields tollway reads.

Validated at the boundary so a malformed call fails with an Anthropic-style 400 before any
translation; unknown fields are allowed (and ignored) so newer SDKs keep working.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AnthropicMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    # examples: OpenAPI hints that let a schema fuzzer (schemathesis) reach past the 404
    model: str = Field(min_length=1, examples=["gpt-4o-mini"])
    messages: list[AnthropicMessage] = Field(
        min_length=1, examples=[[{"role": "user", "content": "Say hello"}]]
    )
    max_tokens: int = Field(ge=1, examples=[64])
    system: str | list[dict[str, Any]] | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class CountTokensRequest(MessagesRequest):
    """`POST /v1/messages/count_tokens`: a Messages request without `max_tokens`."""

    max_tokens: int = Field(default=1, ge=1)
