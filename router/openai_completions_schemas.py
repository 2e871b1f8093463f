"""Request shape of OpenAI's legacy completions API (`POST /v1/completions`): the fields tollway
reads. Unknown fields are allowed (and ignored), so newer clients keep working."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, examples=["gpt-4o-mini"])
    prompt: str | list[str] | list[int] | list[list[int]] = Field(examples=["Say hello"])
    max_tokens: int | None = Field(default=16, ge=1)  # OpenAI's default for this API
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=128)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    suffix: str | None = None
    echo: bool = False
    logprobs: int | None = None
    best_of: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
