"""What the fakes share: the answer they give, the usage they report, and recording."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

WORDS = ["fake", "upstream", "answers", "in", "its", "own", "wire", "format"]
TEXT = " ".join(WORDS)
TOOL_ARGS = {"city": "Paris"}
BREAK_MID_STREAM = "please fail after two words"

OPENAI_USAGE = {"prompt": 21, "cached": 5, "reasoning": 2}
ANTHROPIC_USAGE = {"input": 12, "cache_read": 8, "cache_write": 3}
ANTHROPIC_COUNT = 1234  # what the fake's count_tokens answers
#: what the Anthropic fake thinks before it answers, when the request enables thinking
THINKING_BLOCK = {
    "type": "thinking",
    "thinking": "The user wants a short answer.",
    "signature": "sig-fake-1",
}


GEMINI_USAGE = {"prompt": 30, "cached": 10, "thoughts": 4}
OPENAI_EMBEDDING_TOKENS = 7  # per input
EMBEDDING_DIMENSIONS = 8


def fake_vector(index: int, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The vector a fake upstream returns for its `index`-th input (exact in float32)."""
    return [index + d / 8 for d in range(dimensions)]


async def record(request: Request) -> dict[str, Any]:
    body = await request.json()
    request.app.state.requests.append(
        {"path": request.url.path, "headers": dict(request.headers), "body": body}
    )
    return body  # type: ignore[no-any-return]


def sse(frames: AsyncIterator[bytes] | list[bytes]) -> StreamingResponse:
    async def iterate() -> AsyncIterator[bytes]:
        if isinstance(frames, list):
            for frame in frames:
                yield frame
        else:
            async for frame in frames:
                yield frame

    return StreamingResponse(iterate(), media_type="text/event-stream")
