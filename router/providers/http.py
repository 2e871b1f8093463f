"""The upstream HTTP/1.1 client: one pooled keep-alive connection pool per provider.

The proxy's hot path is one upstream request per call, so this client is built for that:
aiohttp's pool (C-accelerated HTTP/1.1 parser, a per-host deque of idle connections) costs
about 80 µs of CPU a request on the development machine, where httpx/httpcore cost 0.7 to 2 ms
(its pool scans every connection on every request and closes surplus idle ones, so under
concurrency it re-connects constantly) — measured with `benchmarks/proxy_overhead.py`.

The pool holds up to `max_connections` connections per provider (default 1024, above any
concurrency the proxy serves on one process) and keeps idle ones for `keepalive_s`.
Request bodies are encoded once with orjson; answers are returned as bytes for the adapter
to decode once. Transport failures (refused, reset, timed out) raise `TransportError`, which
names only the exception type: URLs and headers could carry a secret.

A provider with `http2: true` gets router/providers/http2.py's client instead; both satisfy
`Upstream` below, so the adapters never know which one carries their calls.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import ssl
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson
from yarl import URL

from tollway.eager import eagerly

#: connections per provider: above the concurrency one proxy process serves
DEFAULT_MAX_CONNECTIONS = 1024
#: how long an idle upstream connection is kept for reuse
DEFAULT_KEEPALIVE_S = 60.0

_JSON = {"content-type": "application/json", "user-agent": "tollway"}
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")


class TransportError(Exception):
    """The request did not get an HTTP answer: connection refused or reset, or a timeout."""

    def __init__(self, kind: str, *, timeout: bool = False) -> None:
        super().__init__(kind)
        self.kind = kind
        self.timeout = timeout


@dataclass
class UpstreamAnswer:
    """A buffered answer: status, headers, body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return orjson.loads(self.content)


class StreamedAnswer:
    """An answer whose body is read as it arrives (server-sent events)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers

    async def aread(self) -> bytes:
        try:
            return await self._response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc) from None

    async def aiter_bytes(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives, one read at a time."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc) from None

    async def aiter_lines(self) -> AsyncGenerator[str, None]:
        """The body's lines without their endings (`\\n`, `\\r\\n` or `\\r`), like httpx."""
        async with contextlib.aclosing(iter_lines(self.aiter_bytes())) as lines:
            async for line in lines:
                yield line


class StreamedBody(Protocol):
    """What a streamed answer offers the adapters, whichever client produced it."""

    status_code: int
    headers: Mapping[str, str]

    async def aread(self) -> bytes: ...

    def aiter_lines(self) -> AsyncGenerator[str, None]: ...

    def aiter_bytes(self) -> AsyncGenerator[bytes, None]: ...


class Upstream(Protocol):
    """A provider's upstream client: `UpstreamClient` (HTTP/1.1, aiohttp) or
    `Http2UpstreamClient` (HTTP/2, httpx). Transport failures raise `TransportError`. A call's
    `headers` are sent beside (and over) the client's own."""

    async def post(
        self, path: str, payload: object, headers: Mapping[str, str] | None = None
    ) -> UpstreamAnswer: ...

    def stream(
        self, path: str, payload: object, headers: Mapping[str, str] | None = None
    ) -> AbstractAsyncContextManager[StreamedBody]: ...

    async def aclose(self) -> None: ...


async def iter_lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[str, None]:
    """Lines of a body arriving in chunks, without their endings; shared by both clients'
    `aiter_lines` so a body splits the same way over HTTP/1.1 and HTTP/2. (The adapters read
    server-sent events from `aiter_bytes` instead, parsed without a generator per line.)

    The streamed-body generators close the generators they read from with
    `contextlib.aclosing`. A reader that stops early (the adapters stop at `[DONE]`) would
    otherwise leave each one to the event loop's async-generator finalizer: per streamed call,
    three `call_soon_threadsafe` wake-ups (a self-pipe write each) and three `aclose` tasks,
    measured at 9 % of a streamed call's CPU (1 worker, 64 clients, 0 ms upstream: 551 against
    502 µs a call)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    async for chunk in chunks:
        text = pending + decoder.decode(chunk)
        lines = text.splitlines(keepends=True)
        # the last piece may be a line still arriving (or a `\r` of a `\r\n`)
        pending = lines.pop() if lines and not lines[-1].endswith("\n") else ""
        for line in lines:
            yield line.rstrip("\r\n")
    pending += decoder.decode(b"", final=True)
    for line in pending.splitlines():
        yield line


class _EagerBodyRequest(aiohttp.ClientRequest):
    """aiohttp's request, sending its body at once.

    On Python before 3.12 aiohttp writes a request's body (and the headers it buffers with
    it) in a task of its own, which runs only after every callback already due in this turn
    of the loop: in a burst of calls, each upstream request leaves only once the handlers of
    all the others have run, and the upstream's answers come back in the same clumps. Here
    the writing starts at once, as aiohttp itself does on 3.12 with an eager task."""

    if sys.version_info < (3, 12):

        def write_bytes(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, None]:
            return eagerly(super().write_bytes(*args, **kwargs))


class UpstreamClient:
    """One provider's connection pool; the session opens on first use (inside the loop)."""

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
        self.base_url = base_url.rstrip("/") + "/"
        self.headers = {**headers, **_JSON}
        # sock_read: the longest silence between two reads (a stream may run for minutes);
        # connect includes the wait for a free pooled connection
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout_s, sock_read=timeout_s
        )
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self.ca_bundle = ca_bundle
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}

    def _open(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=0,
                keepalive_timeout=self.keepalive_s,
                ssl=tls_context(self.ca_bundle),
                ttl_dns_cache=300,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self.headers,
                timeout=self.timeout,
                trust_env=proxy_from_environment(),
                # no cookie jar: one provider's pool serves every caller, so a cookie an
                # upstream sets for one call must not ride along on the next caller's
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
                request_class=_EagerBodyRequest,
            )
        return session

    def url(self, path: str) -> URL:
        """The URL of `path` under the base URL, parsed once per path (yarl's parse costs more
        than the rest of building a request)."""
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= 1024:  # paths with a model name in them are still few
                self._urls.clear()
            url = self._urls[path] = URL(self.base_url + path.lstrip("/"))
        return url

    async def post(
        self, path: str, payload: object, headers: Mapping[str, str] | None = None
    ) -> UpstreamAnswer:
        """POST `payload` as JSON and read the whole answer."""
        try:
            body = orjson.dumps(payload)
            async with self._open().post(self.url(path), data=body, headers=headers) as response:
                content = await response.read()
                return UpstreamAnswer(response.status, response.headers, content)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc) from None

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, payload: object, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[StreamedAnswer]:
        """POST `payload` as JSON; the answer's body is read by the caller as it arrives.
        Leaving the block early (the caller went away) closes the connection."""
        try:
            body = orjson.dumps(payload)
            response = await self._open().post(self.url(path), data=body, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc) from None
        try:
            yield StreamedAnswer(response)
        finally:
            if response.content.at_eof():
                response.release()  # read to the end: the connection goes back to the pool
            else:
                response.close()  # abandoned mid-body: the connection cannot be reused

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _transport_error(exc: BaseException) -> TransportError:
    return TransportError(type(exc).__name__, timeout=isinstance(exc, TimeoutError))


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Certificate checks against the provider's own `ca_bundle` when it names one (an internal
    CA in front of a self-hosted server), else against `_ca_file()`'s bundle."""
    return ssl.create_default_context(cafile=ca_bundle or _ca_file())


def proxy_from_environment() -> bool:
    """Whether a proxy variable is set: only then do the clients read the environment."""
    return any(os.environ.get(v) for v in _PROXY_VARIABLES)


def _ca_file() -> str | None:
    """`SSL_CERT_FILE` if set, else certifi's bundle (what httpx used), else the system's."""
    override = os.environ.get("SSL_CERT_FILE")
    if override:
        return override
    try:
        import certifi

        return str(certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return None
