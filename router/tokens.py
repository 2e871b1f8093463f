"""Token estimates for when no provider count exists.

tiktoken needs to download its encodings, which a gateway in a closed network cannot do, and
its counts are only exact for OpenAI models anyway. tollway therefore uses one cheap heuristic
everywhere — about four characters per token — and marks every figure it produced this way
with `usage_estimated`, so the ledger tells a counted call from an estimated one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

CHARS_PER_TOKEN = 4
PROMPT_FRAMING_TOKENS = 3
MESSAGE_FRAMING_TOKENS = 4


def text_of(content: object) -> str:
    """The text of an OpenAI message content: a string, or the `text` of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def tokens_for_chars(chars: int) -> int:
    """About four characters per token (rounded up); 0 for no text."""
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def estimate_text_tokens(text: str) -> int:
    return tokens_for_chars(len(text))


def estimate_prompt_tokens(messages: Iterable[Any]) -> int:
    """Prompt tokens of OpenAI-shaped messages (objects with `.content`), plus the framing
    OpenAI counts per message and per prompt."""
    count = 0
    chars = 0
    for message in messages:
        count += 1
        chars += len(text_of(message.content))
    return PROMPT_FRAMING_TOKENS + MESSAGE_FRAMING_TOKENS * count + tokens_for_chars(chars)


def embedding_input_tokens(inputs: Iterable[str] | Iterable[list[int]]) -> list[int]:
    """Tokens of each embeddings input: counted for token ids, estimated for texts."""
    return [len(i) if isinstance(i, list) else estimate_text_tokens(i) for i in inputs]


def estimate_request_tokens(request: Any) -> int:
    """Prompt tokens of a chat request (an object with `.messages` and `.tools`): its messages
    and its tool definitions, which count towards the prompt too."""
    tools = request.tools or []
    return estimate_prompt_tokens(request.messages) + tokens_for_chars(
        len(json.dumps(tools)) if tools else 0
    )
