"""Request shape of OpenAI's Responses API (`POST /v1/responses`): the fields tollway reads.

Unknown fields are allowed (and ignored), so newer SDKs keep working. tollway keeps no
conversation state (zero data retention), so a request that continues a stored response
(`previous_response_id`, `conversation`) is refused with a 400 rather than answered without
its history.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ResponsesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, examples=["gpt-4o-mini"])
    input: str | list[dict[str, Any]] = Field(examples=["Say hello"])
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool = False
    text: dict[str, Any] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    previous_response_id: str | None = None
    parallel_tool_calls: bool | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    truncation: Literal["auto", "disabled"] | None = None

    @field_validator("input")
    @classmethod
    def _not_empty(cls, value: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        if not value:
            raise ValueError("input must be a non-empty string or list of items")
        return value
