"""The upstream HTTP/2 client, for providers with `http2: true`: httpx with h2.

HTTP/1.1 carries one call per connection at a time, so a provider serving 500 concurrent calls
holds 500 connections (and a TLS handshake each when the pool grows). HTTP/2 multiplexes them
as streams over a few connections — about one per 100 concurrent calls, the streams each side
allows on a connection. aiohttp has no HTTP/2, hence httpx here; its pool's per-request cost
(a scan of every pooled connection, router/providers/http.py) stays small because the pool
holds a handful of connections, not hundreds.

Which HTTP/2: over `https://` the version is negotiated by ALPN, and a server that offers only
HTTP/1.1 is still served (over httpx's HTTP/1.1). Over `http://` there is no negotiation, so
the client speaks HTTP/2 from the first byte ("prior knowledge", h2c): the upstream must accept
that, as nginx, Envoy or Hypercorn can.

Abandoning a response — a caller who went away mid-stream, an attempt timeout cancelling a
call — must stop the upstream's work on it. httpcore (httpx's transport) forgets such a stream
without telling the server (encode/httpcore#943): the upstream keeps generating, billed tokens
included, and h2 keeps counting the stream as open until the connection refuses new ones
("Max outbound streams is 100, 100 open"). `_reset_then_close` fixes that, for every
httpx HTTP/2 connection in the process once this module is imported: a stream closed before
its end is reset with RST_STREAM(CANCEL), as browsers and other HTTP/2 clients do.

A server closes a connection that has been idle a while (hypercorn and uvicorn after 5 s, most
load balancers after a minute). httpcore reads an HTTP/2 connection only while a stream waits
on it, so it learns of the close only when the next calls write to it, and every call sent
on it fails with `WriteError`. `_handle_checking_idle` looks first: before an idle connection
takes a call, whatever it has received is read and handed to h2 — a GOAWAY or the end of the
stream closes it, and the pool opens a new one for the call; frames that change nothing (the
tail of an abandoned stream, a PING, new settings) leave it in use.
Timeouts, pool size and failures mirror the HTTP/1.1 client: the same `TransportError`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, cast

import h2.errors
import h2.events
import httpcore
import httpx
import orjson

from router.providers.http import (
    _JSON,
    DEFAULT_KEEPALIVE_S,
    DEFAULT_MAX_CONNECTIONS,
    TransportError,
    UpstreamAnswer,
    iter_lines,
    proxy_from_environment,
    tls_context,
)

log = logging.getLogger(__name__)

#: how long the RST_STREAM of an abandoned stream may take to leave
RESET_WRITE_TIMEOUT_S = 5.0
#: how long reading what an idle connection has received may take (it is there already)
IDLE_READ_TIMEOUT_S = 1.0


class Http2StreamedAnswer:
    """A streamed answer over HTTP/2 (or HTTP/1.1 where ALPN chose it)."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self.http_version = response.http_version

    async def aread(self) -> bytes:
        try:
            return await self._response.aread()
        except httpx.RequestError as exc:
            raise _transport_error(exc) from None

    async def aiter_bytes(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives, as the HTTP/1.1 client gives it."""
        try:
            # httpx's aiter_bytes is an async generator, typed as a plain iterator
            body = cast(AsyncGenerator[bytes, None], self._response.aiter_bytes())
            async with contextlib.aclosing(body) as chunks:
                async for chunk in chunks:
                    yield chunk
        except httpx.RequestError as exc:
            raise _transport_error(exc) from None

    def aiter_lines(self) -> AsyncGenerator[str, None]:
        """The body's lines without their endings, split exactly as the HTTP/1.1 client does."""
        return iter_lines(self.aiter_bytes())


class Http2UpstreamClient:
    """One provider's HTTP/2 connection pool, with the HTTP/1.1 clients' interface (`Upstream`)."""

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
        # read: the longest silence between two reads, as aiohttp's sock_read; pool: the wait
        # for a free connection, which aiohttp counts in its connect timeout
        self.timeout = httpx.Timeout(
            connect=connect_timeout_s, read=timeout_s, write=timeout_s, pool=connect_timeout_s
        )
        # the bound matters only where ALPN falls back to HTTP/1.1; over HTTP/2 the pool opens
        # one connection per ~100 concurrent calls
        self.limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_s,
        )
        self.ca_bundle = ca_bundle
        self.prior_knowledge = self.base_url.startswith("http://")
        self._client: httpx.AsyncClient | None = None

    def _open(self) -> httpx.AsyncClient:
        client = self._client
        if client is None or client.is_closed:
            client = self._client = httpx.AsyncClient(
                http1=not self.prior_knowledge,
                http2=True,
                verify=tls_context(self.ca_bundle),
                timeout=self.timeout,
                limits=self.limits,
                headers=self.headers,
                trust_env=proxy_from_environment(),
                # as with aiohttp: one pool serves every caller, so no cookie may carry over
                cookies=_no_cookies(),
                follow_redirects=False,
            )
        return client

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    async def post(
        self, path: str, payload: object, headers: Mapping[str, str] | None = None
    ) -> UpstreamAnswer:
        """POST `payload` as JSON and read the whole answer."""
        try:
            body = orjson.dumps(payload)
            response = await self._open().post(self.url(path), content=body, headers=headers)
        except httpx.RequestError as exc:
            raise _transport_error(exc) from None
        return UpstreamAnswer(response.status_code, response.headers, response.content)

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, payload: object, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Http2StreamedAnswer]:
        """POST `payload` as JSON; the caller reads the body as it arrives. Leaving the block
        before the end resets the stream (the connection and its other streams carry on)."""
        client = self._open()
        body = orjson.dumps(payload)
        request = client.build_request("POST", self.url(path), content=body, headers=headers)
        try:
            response = await client.send(request, stream=True)
        except httpx.RequestError as exc:
            raise _transport_error(exc) from None
        try:
            yield Http2StreamedAnswer(response)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _transport_error(exc: httpx.RequestError) -> TransportError:
    return TransportError(type(exc).__name__, timeout=isinstance(exc, httpx.TimeoutException))


def _no_cookies() -> Any:
    """A cookie jar that keeps nothing (httpx has no switch for it)."""
    from http.cookiejar import CookieJar, DefaultCookiePolicy

    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


# --- two fixes to httpcore's HTTP/2 connection, each wrapping one of its methods --------------

_Connection = httpcore.AsyncHTTP2Connection


def _wrap(name: str, replacement: Any) -> Any:
    """Put `replacement` in place of httpcore's `AsyncHTTP2Connection.<name>`, once per process
    however often this module is imported; the original, for the replacement to call.
    tests/router/test_http2.py fails if an httpcore upgrade changes either method's shape."""
    current = getattr(_Connection, name)
    original = getattr(current, "_tollway_wraps", current)
    replacement._tollway_wraps = original
    setattr(_Connection, name, replacement)
    return original


async def _reset_then_close(self: Any, stream_id: int) -> None:
    """encode/httpcore#943: httpcore's `_response_closed`, preceded by RST_STREAM(CANCEL) when
    h2 still has the stream open — the response was abandoned (a fully read one is closed)."""
    try:
        stream = self._h2_state.streams.get(stream_id)
        if stream is not None and not stream.closed and self._write_exception is None:
            self._h2_state.reset_stream(stream_id, error_code=h2.errors.ErrorCodes.CANCEL)
            async with self._write_lock:
                data = self._h2_state.data_to_send()
                await self._network_stream.write(data, RESET_WRITE_TIMEOUT_S)
    except Exception as exc:  # a failing connection: httpcore finds out on its next read
        log.debug("could not reset HTTP/2 stream %d: %s", stream_id, type(exc).__name__)
    finally:
        await _response_closed(self, stream_id)


async def _handle_checking_idle(self: Any, request: httpcore.Request) -> httpcore.Response:
    """httpcore's `handle_async_request`, after taking in what an idle connection has received
    since its last call: the server's GOAWAY or close (then the connection is closed and the
    pool opens another) or harmless frames (settings, pings, the tail of an abandoned stream)."""
    if self.is_idle() and _readable(self):
        await _take_pending_frames(self, request)
        if self._connection_terminated is not None or self._connection_error:
            await self.aclose()
            raise httpcore.ConnectionNotAvailable()
    return await _handle_async_request(self, request)  # type: ignore[no-any-return]


def _readable(connection: Any) -> bool:
    return bool(connection._network_stream.get_extra_info("is_readable"))


async def _take_pending_frames(self: Any, request: httpcore.Request) -> None:
    async with self._read_lock:
        if not _readable(self):  # another call took them meanwhile
            return
        try:
            data = await self._network_stream.read(self.READ_NUM_BYTES, IDLE_READ_TIMEOUT_S)
        except Exception:
            data = b""
        if data == b"":
            self._connection_error = True  # closed by the server
            return
        for event in self._h2_state.receive_data(data):
            if isinstance(event, h2.events.ConnectionTerminated):
                self._connection_terminated = event
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                await self._receive_remote_settings_change(event)
    with contextlib.suppress(Exception):  # acknowledgements; a dead connection shows at once
        await self._write_outgoing_data(request)


_response_closed = _wrap("_response_closed", _reset_then_close)
_handle_async_request = _wrap("handle_async_request", _handle_checking_idle)
