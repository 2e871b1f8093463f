"""The upstream HTTP/1.1 client: pooled keep-alive connections on asyncio, parsed by httptools.

The proxy's hot path is one upstream request per call, and the client that sends it was most
of what a proxy cost. On the 2-core development machine a bare asyncio server relaying calls
to a fast upstream (one process, 64 wrk clients) made about 5,500 calls/s with aiohttp's
client, 7,200 with pyreqwest's, 2,100-5,700 with aiosonic's and 20,000-23,000 with this one:
aiohttp spends about 130 µs of CPU a request — a `ClientRequest` and a `ClientResponse`,
multidicts of headers, a timer context, a connector lookup, a task for the body — where this
client writes one precomputed head and the body in one `write` and hands the answer to
httptools (the C parser uvicorn uses). What it leaves out, it leaves out on purpose: HTTP
proxies (with a proxy variable set, router/providers/http_via_proxy.py's aiohttp client carries
the calls), cookies, redirects, `Expect: 100-continue`.

The pool and the client are here; one connection and the answer it is reading are in
router/providers/http1_connection.py.

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
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from urllib.parse import quote, urlsplit

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
from router.providers.http1_connection import Answer, Connection

#: a streamed answer buffered beyond this stops the socket being read until the reader catches up
_HIGH_WATER = 256 * 1024
#: characters a request target keeps as they are (the rest are percent-encoded)
_TARGET_SAFE = "/:@!$&'()*+,;=?%~-._"


class _Pool:
    """One origin's connections: idle ones in a deque (newest at the right), a count of all."""

    def __init__(self, client: Http1Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.timeout_s = client.timeout_s
        self.idle: collections.deque[Connection] = collections.deque()
        self.waiting: collections.deque[asyncio.Future[Connection]] = collections.deque()
        self.count = 0  # in use, idle or connecting
        self.closed = False

    async def acquire(self) -> Connection:
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
            return connection
        if self.count < self.client.max_connections:
            return await self._connect()
        waiter: asyncio.Future[Connection] = self.loop.create_future()
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

    async def _connect(self) -> Connection:
        client = self.client
        self.count += 1
        try:
            async with asyncio.timeout(client.connect_timeout_s):
                _, connection = await self.loop.create_connection(
                    lambda: Connection(self),
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

    def release(self, connection: Connection) -> None:
        """A connection whose answer was read to its end, with keep-alive."""
        if self.closed:  # the client closed while this call was out
            connection.abort()
            return
        now = self.loop.time()
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        connection.idle_since = now
        self.idle.append(connection)
        oldest = self.idle[0]
        if now - oldest.idle_since > self.client.keepalive_s:
            self.idle.popleft()
            oldest.abort()

    def forget(self, connection: Connection) -> None:
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

    def _settle(self, waiter: asyncio.Future[Connection], task: asyncio.Task[Connection]) -> None:
        """A connection opened for a waiting call: to it, or to the idle ones if it gave up."""
        if task.cancelled():
            waiter.cancel()
        elif (error := task.exception()) is not None:
            if not waiter.done():
                waiter.set_exception(error)
        elif waiter.done():
            self.release(task.result())
        else:
            waiter.set_result(task.result())

    def close(self) -> None:
        self.closed = True
        while self.idle:
            self.idle.pop().abort()


class Http1StreamedAnswer:
    """An answer whose body is read as it arrives (server-sent events)."""

    def __init__(self, answer: Answer) -> None:
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
        self._answer: Answer | None = None

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
    ) -> Answer:
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
