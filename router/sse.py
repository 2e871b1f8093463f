"""Server-sent events out: frame encoding and a response that always settles its call.

`EventStreamResponse` runs an `on_close` callback when the response ends for ANY reason — the
body finished, the client disconnected, the server is stopping — shielded from cancellation
(`tollway.eager.shielded`: in place, without a task, when it does not have to wait).
That callback is where an abandoned stream gets billed: the async generator feeding the body
cannot be trusted for it, because a generator suspended at `yield` when its task is cancelled
never runs its `finally` until garbage collection.

The body is relayed in the request's own task while a plain asyncio task waits for the
client's `http.disconnect` and, if it comes first, cancels the relay where it waits (most
often on the upstream): the caller's departure is noticed at once, not at the next chunk.
Starlette's `StreamingResponse` does the same with an anyio task group per response, whose
cancel scopes cost about a tenth of a streamed call's CPU (py-spy, benchmarks/proxy_overhead.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tollway.eager import shielded

log = logging.getLogger(__name__)

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def data_frame(payload: dict[str, Any] | str) -> bytes:
    """`data: …` — the OpenAI framing (no event names; `[DONE]` ends the stream). Built as
    bytes: orjson's output goes into the frame as it is, with no round trip through str."""
    data = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
    return b"data: " + data + b"\n\n"


def event_frame(event: str, payload: dict[str, Any]) -> bytes:
    """`event: …` + `data: …` — the Anthropic framing."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[None]],
        headers: dict[str, str] | None = None,
    ) -> None:
        self.body_iterator = content
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await _unless_disconnected(self._relay(send), receive)
        finally:
            await shielded(self._settle())

    async def _settle(self) -> None:
        try:
            await self._on_close()
        except Exception:
            log.exception("settling a stream failed")

    async def _relay(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for frame in self.body_iterator:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _unless_disconnected(relay: Awaitable[None], receive: Receive) -> None:
    """Run `relay` in this task until it ends or the client disconnects, whichever is first.

    A disconnect cancels this task where `relay` waits; that cancellation (and only that one:
    a cancellation from elsewhere, say a stopping server, still propagates) ends the call
    quietly. A send to a closed connection (OSError, ASGI 2.4 servers) also means the client
    left. What `relay` raises otherwise propagates.

    The listener task starts at the event loop's next turn, which comes only once the relay
    waits: a stream whose upstream had sent it all by the first chunk (a short answer, a slow
    upstream that answers at once) is relayed in one go and needs no listener, which saves
    creating, running and cancelling a task (about 2 % of such a call's CPU)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    relaying = True
    left = False
    listener: asyncio.Task[None] | None = None

    async def listen() -> None:
        nonlocal left
        while (await receive())["type"] != "http.disconnect":
            pass
        if relaying:  # the relay waits inside its own awaits: the cancellation lands there
            left = True
            task.cancel()

    def start_listening() -> None:
        nonlocal listener
        listener = loop.create_task(listen())

    starting = loop.call_soon(start_listening)
    try:
        await relay
    except asyncio.CancelledError:
        if not left or task.uncancel() > 0:
            raise
    except OSError:
        pass  # the caller left; on_close bills what was streamed
    finally:
        relaying = False
        starting.cancel()
        if listener is not None:
            listener.cancel()
            done = listener.done() and not listener.cancelled()
            failed = listener.exception() if done else None
            if failed is not None:  # the server's `receive` itself failed
                raise failed
