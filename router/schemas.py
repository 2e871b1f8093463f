"""Request and response shapes of the OpenAI-compatible API (the fields tollway reads).

This is also the gateway's one internal shape: the Anthropic endpoint translates into it, and
every provider adapter translates out of it. Unknown fields are kept (`extra="allow"`) and passed
through to OpenAI-compatible upstreams, so new SDK parameters work without a tollway release.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    # examples: OpenAPI hints that let a schema fuzzer (schemathesis) reach past the 404
    model: str = Field(min_length=1, examples=["gpt-4o-mini"])
    messages: list[ChatMessage] = Field(
        min_length=1, examples=[[{"role": "user", "content": "Say hello"}]]
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    user: str | None = None

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        """Whether the caller asked for the final usage chunk of a stream."""
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class Usage(BaseModel):
    """Token counts as the provider reported them (or as tollway estimated them).

    `input_tokens` includes `cached_input_tokens`; `output_tokens` includes `reasoning_tokens`
    (the semantics `PriceCatalogue.cost` expects; adapters normalise to them).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    def openai(self) -> dict[str, Any]:
        """The OpenAI `usage` object of these counts."""
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }
