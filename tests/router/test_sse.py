"""`EventStreamResponse` on its own, as an ASGI server drives it: the frames in order, and the
call settled exactly once however the response ends — finished, the client gone while the
relay waits on the upstream, a send to a closed connection, a failure, a stopping server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.types import Message

from router.sse import EventStreamResponse


class Client:
    """The server's side of one connection: what `send` got, and a `receive` that answers
    `http.disconnect` once the client is told to leave (never, unless told)."""

    def __init__(self, *, closed: bool = False) -> None:
        self.sent: list[Message] = []
        self.gone = asyncio.Event()
        self.closed = closed  # the connection refuses writes (OSError), as ASGI 2.4 has it

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.closed:
            raise OSError("connection closed")
        self.sent.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


class Upstream:
    """The frames of a stream; after `frames` it waits (a slow upstream) unless `ends`."""

    def __init__(self, frames: list[bytes], *, ends: bool = True) -> None:
        self.frames = frames
        self.ends = ends
        self.waiting = asyncio.Event()
        self.cancelled = False
        self.closed = False

    async def __call__(self) -> AsyncIterator[bytes]:
        try:
            for frame in self.frames:
                yield frame
            if not self.ends:
                self.waiting.set()
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.closed = True


def response(upstream: Upstream, settled: list[str]) -> EventStreamResponse:
    async def on_close() -> None:
        await asyncio.sleep(0)  # settling awaits (the upstream's close), shielded
        settled.append("settled")

    return EventStreamResponse(upstream(), on_close=on_close, headers={"x-tollway-model": "m"})


def scope(spec_version: str = "2.3") -> dict[str, Any]:  # uvicorn's httptools: 2.3
    return {"type": "http", "asgi": {"spec_version": spec_version}}


async def waiting_on_the_upstream() -> tuple[Client, list[str], Upstream, asyncio.Task[None]]:
    """A streamed call that sent its first frame and now waits on a slow upstream."""
    client, settled = Client(), []
    upstream = Upstream([b"data: 1\n\n"], ends=False)
    call = asyncio.create_task(response(upstream, settled)(scope(), client.receive, client.send))
    await upstream.waiting.wait()
    return client, settled, upstream, call


async def test_a_finished_stream_sends_every_frame_then_settles_once() -> None:
    client, settled = Client(), []
    upstream = Upstream([b"data: 1\n\n", b"data: [DONE]\n\n"])
    await response(upstream, settled)(scope(), client.receive, client.send)

    start = client.sent[0]
    assert start["type"] == "http.response.start" and start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert headers[b"cache-control"] == b"no-cache" and headers[b"x-tollway-model"] == b"m"
    assert client.body == b"data: 1\n\ndata: [DONE]\n\n"
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert settled == ["settled"]
    await asyncio.sleep(0)  # the disconnect listener is gone, not left waiting
    assert not [t for t in asyncio.all_tasks() if "listen" in repr(t.get_coro())]


async def test_a_stream_relayed_without_waiting_starts_no_listener() -> None:
    # the upstream had sent everything by the first chunk: nothing to wait for, so nobody
    # needs to listen for the client leaving meanwhile (no task is created for it)
    client = Client()
    settled: list[str] = []
    tasks: list[int] = []

    async def frames() -> AsyncIterator[bytes]:
        for frame in (b"data: 1\n\n", b"data: [DONE]\n\n"):
            tasks.append(len(asyncio.all_tasks()))
            yield frame

    async def on_close() -> None:
        settled.append("settled")

    before = len(asyncio.all_tasks())
    await EventStreamResponse(frames(), on_close=on_close)(scope(), client.receive, client.send)
    assert client.body == b"data: 1\n\ndata: [DONE]\n\n" and settled == ["settled"]
    assert tasks == [before, before]


async def test_a_client_leaving_mid_stream_cancels_the_wait_and_settles() -> None:
    client, settled, upstream, call = await waiting_on_the_upstream()
    client.gone.set()
    await asyncio.wait_for(call, 1.0)  # returns quietly: the caller left, nothing failed

    assert upstream.cancelled and upstream.closed
    assert client.body == b"data: 1\n\n"
    assert settled == ["settled"]
    assert call.cancelling() == 0  # the cancellation it used is not left counted on the task


async def test_a_send_to_a_closed_connection_is_a_client_that_left() -> None:
    client, settled = Client(closed=True), []
    answer = response(Upstream([b"data: 1\n\n"]), settled)
    await answer(scope("2.4"), client.receive, client.send)
    assert settled == ["settled"]


async def test_a_failing_stream_raises_and_still_settles() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        raise RuntimeError("boom")

    client, settled = Client(), []

    async def on_close() -> None:
        settled.append("settled")

    answer = EventStreamResponse(broken(), on_close=on_close)
    with pytest.raises(RuntimeError, match="boom"):
        await answer(scope(), client.receive, client.send)
    assert settled == ["settled"]


async def test_a_stopping_server_cancels_the_stream_and_it_still_settles() -> None:
    _, settled, upstream, call = await waiting_on_the_upstream()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert upstream.cancelled and settled == ["settled"]


async def test_a_stop_that_coincides_with_a_disconnect_is_not_swallowed() -> None:
    client, settled, _, call = await waiting_on_the_upstream()
    client.gone.set()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert settled == ["settled"]
