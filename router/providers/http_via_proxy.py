"""The upstream HTTP/1.1 client behind an HTTP proxy: aiohttp, which speaks to proxies.

Where `HTTP_PROXY`, `HTTPS_PROXY` or `ALL_PROXY` is set (and `NO_PROXY` does not exempt the
provider's host), the calls must go through the proxy: a `CONNECT` tunnel for `https://`,
absolute-form requests for `http://`. router/providers/http1.py's client leaves that out, so
with a proxy variable set this one carries the providers' HTTP/1.1 calls instead, at about
130 µs more CPU a call (see http1.py). Its pool, timeouts and failures mirror http1.py's.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

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
from tollway.eager import eagerly


class ProxiedStreamedAnswer:
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

    def aiter_lines(self) -> AsyncGenerator[str, None]:
        """The body's lines without their endings (`\\n`, `\\r\\n` or `\\r`), like httpx."""
        return iter_lines(self.aiter_bytes())


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


class ProxiedClient:
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
                trust_env=proxy_from_environment(),  # why this client is chosen at all
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
    ) -> AsyncIterator[ProxiedStreamedAnswer]:
        """POST `payload` as JSON; the answer's body is read by the caller as it arrives.
        Leaving the block early (the caller went away) closes the connection."""
        try:
            body = orjson.dumps(payload)
            response = await self._open().post(self.url(path), data=body, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc) from None
        try:
            yield ProxiedStreamedAnswer(response)
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
