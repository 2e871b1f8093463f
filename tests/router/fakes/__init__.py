"""Fake upstreams speaking each provider's real wire format, for tests without a network.

Each fake is a small Starlette app shaped after the provider's published API reference:
- OpenAI `POST /v1/chat/completions` — `chat.completion` bodies and SSE `chat.completion.chunk`
  frames ending in `data: [DONE]`, the usage chunk (empty `choices`) only with
  `stream_options.include_usage`; `Authorization: Bearer`. `POST /v1/embeddings` — a `list` of
  `embedding` objects, floats or (`encoding_format: base64`) little-endian float32 in base64.
- Anthropic `POST /v1/messages` — `message` bodies and the SSE event sequence message_start,
  content_block_start, ping, content_block_delta, content_block_stop, message_delta,
  message_stop; `POST /v1/messages/count_tokens` — `{"input_tokens": n}`; `x-api-key` plus
  `anthropic-version: 2023-06-01`.
- Gemini `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`
  (`data:` frames of `GenerateContentResponse`, running `usageMetadata`), `:batchEmbedContents`
  (`{"embeddings": [{"values": [...]}]}`, no token counts); `x-goog-api-key`.

A wrong key is refused the way each provider does it, with the presented key echoed in the
message (worse than the real services, on purpose: tollway must redact it). Every request is
recorded on `app.state.requests` (headers and JSON body) for assertions.
"""

from .anthropic import anthropic_app
from .common import (
    ANTHROPIC_COUNT,
    ANTHROPIC_USAGE,
    BREAK_MID_STREAM,
    EMBEDDING_DIMENSIONS,
    GEMINI_USAGE,
    OPENAI_EMBEDDING_TOKENS,
    OPENAI_USAGE,
    TEXT,
    THINKING_BLOCK,
    TOOL_ARGS,
    WORDS,
    fake_vector,
)
from .gemini import gemini_app
from .openai import openai_app

__all__ = [
    "ANTHROPIC_COUNT",
    "ANTHROPIC_USAGE",
    "BREAK_MID_STREAM",
    "EMBEDDING_DIMENSIONS",
    "GEMINI_USAGE",
    "OPENAI_EMBEDDING_TOKENS",
    "OPENAI_USAGE",
    "TEXT",
    "THINKING_BLOCK",
    "TOOL_ARGS",
    "WORDS",
    "anthropic_app",
    "fake_vector",
    "gemini_app",
    "openai_app",
]
