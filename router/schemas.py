"""Request and response shapes of the OpenAI-compatible API (the fields tollway reads).

This is also the gateway's one internal shape: the Anthropic endpoint translates into it, and
every provider adapter translates out of it. Unknown fields are kept (`extra="allow"`) and passed
through to OpenAI-compatible upstreams, so new SDK parameters work without a tollway release.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError


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
    n: int | None = Field(default=None, ge=1, le=128)  # choices to generate
    user: str | None = None
    # the caller's `anthropic-beta` features (router/anthropic_betas.py): set from the header,
    # never from the body, and never sent as a field
    _anthropic_betas: tuple[str, ...] = PrivateAttr(default=())

    @property
    def anthropic_betas(self) -> tuple[str, ...]:
        return self._anthropic_betas

    def ask_betas(self, betas: tuple[str, ...]) -> ChatCompletionRequest:
        self._anthropic_betas = betas
        return self

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

    `input_tokens` includes `cached_input_tokens` and `cache_write_tokens` (prompt tokens read
    from and written to a prompt cache); `output_tokens` includes `reasoning_tokens` (the
    semantics `PriceCatalogue.cost` expects; adapters normalise to them).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    estimated: bool = False

    def event_counts(self) -> dict[str, int]:
        """The CallEvent's token fields, each part no larger than the whole it belongs to."""
        cached = min(self.cached_input_tokens, self.input_tokens)
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": cached,
            "cache_write_tokens": min(self.cache_write_tokens, self.input_tokens - cached),
            "reasoning_tokens": min(self.reasoning_tokens, self.output_tokens),
        }

    def openai(self) -> dict[str, Any]:
        """The OpenAI `usage` object of these counts."""
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


#: OpenAI's limit on the inputs of one embeddings request
MAX_EMBEDDING_INPUTS = 2048
#: the longest vector a caller may ask for (today's largest models give 3,072)
MAX_EMBEDDING_DIMENSIONS = 8192

TokenIds = list[Annotated[int, Field(ge=0)]]


class EmbeddingsRequest(BaseModel):
    """`POST /v1/embeddings`: one text, a list of texts, or token ids (one list or a list of
    lists, as LangChain's `OpenAIEmbeddings` sends), to be turned into vectors."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, examples=["text-embedding-3-small"])
    input: (
        Annotated[str, Field(min_length=1)]
        | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
        | Annotated[TokenIds, Field(min_length=1)]
        | Annotated[list[Annotated[TokenIds, Field(min_length=1)]], Field(min_length=1)]
    ) = Field(examples=["The food was delicious"])
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, le=MAX_EMBEDDING_DIMENSIONS)
    user: str | None = None

    @field_validator("input", mode="wrap")
    @classmethod
    def _one_input_shape(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """One clear message for a bad `input`, not one per shape of the union it missed."""
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError(
                "embeddings_input",
                "input must be a non-empty string, a non-empty list of non-empty strings, "
                "a non-empty list of token ids (integers >= 0), or a list of such lists",
            ) from None

    @model_validator(mode="after")
    def _not_too_many(self) -> EmbeddingsRequest:
        if len(self.inputs) > MAX_EMBEDDING_INPUTS:
            raise ValueError(f"at most {MAX_EMBEDDING_INPUTS} inputs in one request")
        return self

    @property
    def inputs(self) -> list[str] | list[list[int]]:
        """The inputs as a list: of texts, or of token-id lists."""
        given = self.input
        if isinstance(given, str):
            return [given]
        if given and isinstance(given[0], int):
            return [given]  # type: ignore[list-item]
        return given  # type: ignore[return-value]

    @property
    def texts(self) -> list[str] | None:
        """The inputs as texts, or None when they are token ids."""
        inputs = self.inputs
        return inputs if isinstance(inputs[0], str) else None  # type: ignore[return-value]
