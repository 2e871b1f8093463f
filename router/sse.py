"""Server-sent events out: frame encoding and a response that always settles its call.

`EventStreamResponse` runs an `on_close` callback when the response ends for ANY reason — the
body finished, the client disconnected, the server is stopping — shielded from cancellation.
That callback is where an abandoned stream gets billed: the async generator feeding the body
cannot be trusted for it, because a generator suspended at `yield` when its task is cancelled
never runs its `finally` until garbage collection.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def data_frame(payload: dict[str, Any] | str) -> bytes:
    """`data: …` — the OpenAI framing (no event names; `[DONE]` ends the stream)."""
    text = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    return f"data: {text}\n\n".encode()


def event_frame(event: str, payload: dict[str, Any]) -> bytes:
    """`event: …` + `data: …` — the Anthropic framing."""
    return f"event: {event}\ndata: {orjson.dumps(payload).decode()}\n\n".encode()


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[None]],
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(content, headers={**SSE_HEADERS, **(headers or {})})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            pass  # the caller left; on_close bills what was streamed
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self._on_close()
                except Exception:
                    log.exception("settling a stream failed")
