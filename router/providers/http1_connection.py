"""One upstream HTTP/1.1 connection and the answer it is reading (router/providers/http1.py).

A `Connection` is an asyncio protocol: it writes a request in one `write`, hands what the
socket delivers to httptools, and turns the parser's callbacks into an `Answer` — status and
headers, the body's pieces, the end or a failure — which the caller awaits. It watches the
silence while an answer is awaited, stops reading while a streamed answer's reader is behind,
and tells its `Pool` when it can carry the next request (read to its end with keep-alive) or
has closed.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncGenerator
from typing import Protocol

import httptools

from router.providers.http import TransportError


class Pool(Protocol):
    """What a connection needs of the pool that owns it."""

    loop: asyncio.AbstractEventLoop
    timeout_s: float  # the longest silence while an answer is awaited

    def release(self, connection: Connection) -> None:
        """An answer was read to its end with keep-alive: the connection is free again."""

    def forget(self, connection: Connection) -> None:
        """The connection closed."""


class Answer:
    """One answer as it arrives: status and headers, then the body's pieces, then the end (or
    a failure). The connection feeds it; one reader awaits it."""

    __slots__ = (
        "body",
        "buffered",
        "connection",
        "decoder",
        "done",
        "error",
        "has_head",
        "headers",
        "high_water",
        "paused",
        "raw_headers",
        "status_code",
        "waiter",
    )

    def __init__(self, connection: Connection, high_water: int | None) -> None:
        self.connection = connection
        self.high_water = high_water  # None: buffered whole, never paused
        self.status_code = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.buffered = 0
        self.decoder: zlib._Decompress | None = None
        self.has_head = False
        self.done = False
        self.paused = False
        self.error: TransportError | None = None
        self.waiter: asyncio.Future[None] | None = None

    # fed by the connection

    def head_arrived(self, status_code: int) -> None:
        self.status_code = status_code
        headers = self.headers
        for raw_name, raw_value in self.raw_headers:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if headers.get("content-encoding") in ("gzip", "deflate"):
            self.decoder = zlib.decompressobj(wbits=47)  # a gzip or a zlib header, detected
        self.has_head = True
        self._wake()

    def body_arrived(self, piece: bytes) -> None:
        if self.decoder is not None:
            piece = self.decoder.decompress(piece)
        self.body.append(piece)
        self.buffered += len(piece)
        high_water = self.high_water
        if high_water is not None and self.buffered > high_water and not self.paused:
            self.paused = True
            self.connection.pause_reading()
        self._wake()

    def ended(self) -> None:
        if self.decoder is not None:
            rest = self.decoder.flush()
            if rest:
                self.body.append(rest)
        self.done = True
        self._wake()

    def failed(self, error: TransportError) -> None:
        if not self.done:
            self.error = error
            self.done = True
            self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # read by the caller

    def abandon(self) -> None:
        """The reader gives up before the end: the connection cannot carry another call."""
        if not self.done:
            self.connection.abort()

    async def _wait(self) -> None:
        waiter = self.waiter = asyncio.get_running_loop().create_future()
        await waiter

    async def head(self) -> None:
        while not self.has_head and not self.done:
            await self._wait()
        if not self.has_head:
            raise self.error or TransportError("ServerDisconnectedError")

    async def whole_body(self) -> bytes:
        self.high_water = None
        if self.paused:
            self.paused = False
            self.connection.resume_reading()
        while not self.done:
            await self._wait()
        if self.error is not None:
            raise self.error
        return self.take()

    def take(self) -> bytes:
        """What has arrived and not been taken yet."""
        body = self.body
        piece = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        self.buffered = 0
        if self.paused:
            self.paused = False
            self.connection.resume_reading()
        return piece

    async def pieces(self) -> AsyncGenerator[bytes, None]:
        while True:
            if self.body:
                yield self.take()
            elif self.error is not None:
                raise self.error
            elif self.done:
                return
            else:
                await self._wait()


class Connection(asyncio.Protocol):
    """One keep-alive connection: writes a request, feeds its answer to an `Answer`."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: Answer | None = None
        self.closed = False
        self.counted = False  # in the pool's count: set once connected
        self.idle_since = 0.0
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def send(self, request: bytes, high_water: int | None) -> Answer:
        assert self.transport is not None and self.answer is None
        answer = self.answer = Answer(self, high_water)
        self.last_read = self.loop.time()
        self.timer = self.loop.call_at(self.last_read + self.pool.timeout_s, self._check_silence)
        self.transport.write(request)
        return answer

    def abort(self) -> None:
        """Close at once: the answer in progress cannot be read to its end on this connection."""
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
        self._fail(TransportError("ConnectionAbortedError"))

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.last_read = self.loop.time()  # the silence counts from here again
            self.transport.resume_reading()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.answer is None:  # bytes nobody asked for: the connection cannot be trusted
            self.abort()
            return
        self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:  # not HTTP, or a callback failed
            # a callback's own error (a body that does not decompress) is the one to name
            cause = exc.__context__ if isinstance(exc, httptools.HttpParserCallbackError) else exc
            self._fail(TransportError(type(cause or exc).__name__))
            self.abort()

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        answer = self.answer
        if answer is not None and answer.has_head and not answer.done and self._reads_to_close():
            self._finish()  # an answer without a length ends when the connection does
        else:
            self._fail(TransportError(type(exc).__name__ if exc else "ServerDisconnectedError"))

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.answer is None:  # an answer nobody asked for, after the last one
            self.abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.answer is not None:
            self.answer.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.answer is not None:
            self.answer.head_arrived(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        if self.answer is not None:
            self.answer.body_arrived(body)

    def on_message_complete(self) -> None:
        self._finish()

    # inside

    def _finish(self) -> None:
        answer, self.answer = self.answer, None
        self._stop_timer()
        keep = not self.closed and self.parser.should_keep_alive()
        if answer is not None:
            answer.ended()
        if keep:
            self.pool.release(self)
        elif not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def _fail(self, error: TransportError) -> None:
        answer, self.answer = self.answer, None
        self._stop_timer()
        if answer is not None:
            answer.failed(error)

    def _reads_to_close(self) -> bool:
        headers = self.answer.headers if self.answer is not None else {}
        return (
            "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
        )

    def _check_silence(self) -> None:
        self.timer = None
        if self.answer is None:
            return
        if self.answer.paused:  # the reader is behind, not the upstream: wait for it
            self.last_read = self.loop.time()
        quiet_until = self.last_read + self.pool.timeout_s
        if self.loop.time() < quiet_until:
            self.timer = self.loop.call_at(quiet_until, self._check_silence)
            return
        self._fail(TransportError("TimeoutError", timeout=True))
        self.abort()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
