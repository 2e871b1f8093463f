"""The upstream HTTP/1.1 client: pooled keep-alive connections on asyncio, parsed by httptools.

The proxy's hot path is one upstream request per call, and the client that sends it is most of
what a proxy costs. On the 2-core development machine a do-nothing proxy relaying calls to a
fast upstream made about 5,500 calls/s with aiohttp's client, 7,200 with pyreqwest's and
22,000 with this one (one process, 64 clients, `benchmarks/passthrough.py`): aiohttp spends
about 130 µs of CPU on a request — a `ClientRequest` and a `ClientResponse`, multidicts of
headers, a timer context, a connector lookup and a task for the body — where this client
writes one precomputed head and the body in one `write` and hands the answer to httptools
(the C parser uvicorn uses). What it leaves out, it leaves out on purpose: HTTP proxies
(with a proxy variable set, router/providers/http_via_proxy.py's aiohttp client carries the
calls), cookies, redirects, `Expect: 100-continue`.

- **Pool.** Up to `max_connections` connections per provider (in use, idle or connecting);
  a call finding all of them busy waits for one, within the connect timeout. The most recently
  used idle connection is taken first, so a few stay warm; one idle for `keepalive_s` is
  closed, and one the server closed is forgotten as soon as the loop sees it go.
- **Timeouts.** Connecting (the wait for a pooled connection included) takes at most
  `connect_timeout_s`; `timeout_s` is the longest silence while an answer is awaited — before
  its first byte or between two reads, so a stream may run for minutes.
- **Failures.** A refused, reset or silent connection raises `TransportError` naming only the
  exception type: URLs and headers could carry a secret. A connection is reused only after an
  answer was read to its end with keep-alive; an answer abandoned part-way (a caller who left,
  a cancelled attempt) closes its connection, which stops the upstream's work on it.
- **Bodies.** Answers come as bytes for the adapter to decode once, decompressed when the
  upstream gzipped them. A streamed answer the reader does not keep up with stops the socket
  being read past `_HIGH_WATER` bytes, and resumes once it is read.
"""

from __future__ import annotations

import asyncio
import collections
import zlib
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from urllib.parse import quote, urlsplit

import httptools
import orjson

from router.providers.http import (
    _JSON,
    DEFAULT_KEEPALIVE_S,
    DEFAULT_MAX_CONNECTIONS,
    TransportError,
    UpstreamAnswer,
    iter_lines,
    tls_context,
)

#: a streamed answer buffered beyond this stops the socket being read until the reader catches up
_HIGH_WATER = 256 * 1024
#: characters a request target keeps as they are (the rest are percent-encoded)
_TARGET_SAFE = "/:@!$&'()*+,;=?%~-._"


class _Answer:
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

    def __init__(self, connection: _Connection, high_water: int | None) -> None:
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


class _Connection(asyncio.Protocol):
    """One keep-alive connection: writes a request, feeds its answer to an `_Answer`."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: _Answer | None = None
        self.closed = False
        self.counted = False  # in the pool's count: set once connected
        self.reused = False
        self.idle_since = 0.0
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def send(self, request: bytes, high_water: int | None) -> _Answer:
        assert self.transport is not None and self.answer is None
        answer = self.answer = _Answer(self, high_water)
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
        except httptools.HttpParserError as exc:
            self._fail(TransportError(type(exc).__name__))
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


class _Pool:
    """One origin's connections: idle ones in a deque (newest at the right), a count of all."""

    def __init__(self, client: Http1Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.timeout_s = client.timeout_s
        self.idle: collections.deque[_Connection] = collections.deque()
        self.waiting: collections.deque[asyncio.Future[_Connection]] = collections.deque()
        self.count = 0  # in use, idle or connecting
        self.closed = False

    async def acquire(self) -> _Connection:
        idle = self.idle
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            if self.loop.time() - connection.idle_since > self.client.keepalive_s:
                connection.abort()  # and every one older than it
                while idle:
                    idle.pop().abort()
                break
            connection.reused = True
            return connection
        if self.count < self.client.max_connections:
            return await self._connect()
        waiter: asyncio.Future[_Connection] = self.loop.create_future()
        self.waiting.append(waiter)
        try:
            async with asyncio.timeout(self.client.connect_timeout_s):
                return await waiter
        except BaseException as exc:
            if not waiter.done():
                waiter.cancel()
                self.waiting.remove(waiter)
            elif not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())  # handed over just as this call gave up
            if isinstance(exc, TimeoutError):
                raise TransportError("PoolTimeout", timeout=True) from None
            raise

    async def _connect(self) -> _Connection:
        client = self.client
        self.count += 1
        try:
            async with asyncio.timeout(client.connect_timeout_s):
                _, connection = await self.loop.create_connection(
                    lambda: _Connection(self),
                    client.host,
                    client.port,
                    ssl=client.tls,
                    server_hostname=client.host if client.tls is not None else None,
                )
        except BaseException:
            self.count -= 1
            self._hand_over_slot()
            raise
        connection.counted = True
        return connection

    def release(self, connection: _Connection) -> None:
        """A connection whose answer was read to its end, with keep-alive."""
        if self.closed:  # the client closed while this call was out
            connection.abort()
            return
        now = self.loop.time()
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                connection.reused = True
                waiter.set_result(connection)
                return
        connection.idle_since = now
        self.idle.append(connection)
        oldest = self.idle[0]
        if now - oldest.idle_since > self.client.keepalive_s:
            self.idle.popleft()
            oldest.abort()

    def forget(self, connection: _Connection) -> None:
        """A connection that closed: no longer counted, no longer idle."""
        if not connection.counted:
            return  # lost while connecting: `_connect` has uncounted it
        connection.counted = False
        self.count -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        self._hand_over_slot()

    def _hand_over_slot(self) -> None:
        """A slot freed while calls wait for one: the first of them connects anew."""
        while self.waiting and self.count < self.client.max_connections:
            waiter = self.waiting.popleft()
            if not waiter.done():
                task = self.loop.create_task(self._connect())
                task.add_done_callback(lambda t, w=waiter: self._settle(w, t))  # type: ignore[misc]
                return

    def _settle(self, waiter: asyncio.Future[_Connection], task: asyncio.Task[_Connection]) -> None:
        """A connection opened for a waiting call: to it, or to the idle ones if it gave up."""
        if task.cancelled():
            waiter.cancel()
        elif (error := task.exception()) is not None:
            if not waiter.done():
                waiter.set_exception(error)
        elif waiter.done():
            self.release(task.result())
        else:
            task.result().reused = True
            waiter.set_result(task.result())

    def close(self) -> None:
        self.closed = True
        while self.idle:
            self.idle.pop().abort()


class Http1StreamedAnswer:
    """An answer whose body is read as it arrives (server-sent events)."""

    def __init__(self, answer: _Answer) -> None:
        self._answer = answer
        self.status_code = answer.status_code
        self.headers: Mapping[str, str] = answer.headers

    async def aread(self) -> bytes:
        return await self._answer.whole_body()

    def aiter_bytes(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives: everything read since the last piece, joined."""
        return self._answer.pieces()

    def aiter_lines(self) -> AsyncGenerator[str, None]:
        """The body's lines without their endings (`\\n`, `\\r\\n` or `\\r`), like httpx."""
        return iter_lines(self.aiter_bytes())


class _Streaming:
    """`async with client.stream(...) as answer:` — the answer once its head has arrived;
    leaving the block before its end closes the connection."""

    def __init__(self, client: Http1Client, request: tuple[str, object, Mapping[str, str] | None]):
        self._client = client
        self._request = request
        self._answer: _Answer | None = None

    async def __aenter__(self) -> Http1StreamedAnswer:
        answer = self._answer = await self._client._send(*self._request, _HIGH_WATER)
        try:
            await answer.head()
        except BaseException:
            answer.abandon()
            raise
        return Http1StreamedAnswer(answer)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._answer is not None:
            self._answer.abandon()  # left mid-body: stop the upstream's work on it


class Http1Client:
    """One provider's keep-alive pool for HTTP/1.1 (`http://` or `https://`); it opens on first
    use, inside the loop, and satisfies `router.providers.http.Upstream`."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout_s: float,
        connect_timeout_s: float = 10.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_s: float = DEFAULT_KEEPALIVE_S,
        ca_bundle: str | None = None,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("an upstream base URL is http:// or https:// and names a host")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.tls = tls_context(ca_bundle) if url.scheme == "https" else None
        self.base_path = url.path.rstrip("/") + "/"
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal in brackets
        if url.port not in (None, 443 if url.scheme == "https" else 80):
            host = f"{host}:{url.port}"
        self.headers = _lowered(
            {"host": host, **headers, **_JSON, "accept-encoding": "gzip, deflate"}
        )
        self._head = _encode_headers(self.headers)
        self._targets: dict[str, bytes] = {}
        self._pool: _Pool | None = None

    async def post(
        self, path: str, payload: object, headers: Mapping[str, str] | None = None
    ) -> UpstreamAnswer:
        """POST `payload` as JSON and read the whole answer."""
        answer = await self._send(path, payload, headers, None)
        try:
            content = await answer.whole_body()
        except BaseException:
            answer.abandon()
            raise
        return UpstreamAnswer(answer.status_code, answer.headers, content)

    def stream(
        self, path: str, payload: object, headers: Mapping[str, str] | None = None
    ) -> _Streaming:
        """POST `payload` as JSON; the answer's body is read by the caller as it arrives."""
        return _Streaming(self, (path, payload, headers))

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    async def _send(
        self,
        path: str,
        payload: object,
        headers: Mapping[str, str] | None,
        high_water: int | None,
    ) -> _Answer:
        body = orjson.dumps(payload)
        head = _encode_headers({**self.headers, **_lowered(headers)}) if headers else self._head
        request = b"".join(
            (self._target(path), head, b"content-length: %d\r\n\r\n" % len(body), body)
        )
        pool = self._pool
        if pool is None:
            pool = self._pool = _Pool(self, asyncio.get_running_loop())
        try:
            connection = await pool.acquire()
        except TransportError:
            raise
        except (OSError, TimeoutError) as exc:
            raise TransportError(
                type(exc).__name__, timeout=isinstance(exc, TimeoutError)
            ) from None
        return connection.send(request, high_water)

    def _target(self, path: str) -> bytes:
        """The request line of `path` under the base URL, built once per path."""
        line = self._targets.get(path)
        if line is None:
            if len(self._targets) >= 1024:  # paths with a model name in them are still few
                self._targets.clear()
            target = quote(self.base_path + path.lstrip("/"), safe=_TARGET_SAFE)
            line = self._targets[path] = b"POST %s HTTP/1.1\r\n" % target.encode("ascii")
        return line


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    """`name: value` lines; a name or value that would end a line early is refused."""
    lines = []
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n\0") or not name or ":" in name:
            raise ValueError(f"the upstream header {name!r} contains a line break or is malformed")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode()
