"""A raw HTTP/1.1 upstream on loopback, for the upstream client's tests.

The server is a few lines of asyncio: it reads each request (head up to the blank line, then
`content-length` bytes) and lets the test's handler write the answer byte for byte, so every
test controls exactly what reaches the client: chunk boundaries, pauses, hang-ups, garbage.
It counts the connections it accepted and those the client closed, which is how keep-alive
and the closing of abandoned connections are observed from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from router.providers.http1 import Http1Client


@dataclass
class Request:
    """One request as the server read it: header names lower-cased, in the order sent."""

    line: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on a connection, or None once the client has closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        line, *fields = head[:-4].decode("latin-1").split("\r\n")
        headers = [
            (name.lower(), value.strip()) for name, value in (f.split(":", 1) for f in fields)
        ]
        body = await reader.readexactly(int(dict(headers).get("content-length", "0")))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return Request(line, headers, body)


@dataclass
class Upstream:
    """What the server saw: requests, connections accepted, connections the client closed."""

    handler: Handler
    port: int = 0
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    accepted: int = 0
    hangups: int = 0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while (request := await read_request(reader)) is not None:
                self.requests.append(request)
                await self.handler(request, writer)
                if writer.is_closing():
                    return  # the handler hung up
                await writer.drain()
            self.hangups += 1
        except ConnectionError:
            self.hangups += 1
        except asyncio.CancelledError:
            pass  # the test is over (ending cancelled, the task would be logged as failed)
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def serving(
    handler: Handler,
    *,
    headers: dict[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
    **options: Any,
) -> AsyncIterator[tuple[Upstream, Http1Client]]:
    """A server answering with `handler`, and a client for its `/v1` (closed on the way out).
    A test is over within 10 s: a deadlock fails it instead of hanging it."""
    upstream = Upstream(handler)
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0, ssl=tls)
    upstream.port = server.sockets[0].getsockname()[1]
    upstream.url = f"{'https' if tls else 'http'}://127.0.0.1:{upstream.port}/v1"
    options.setdefault("timeout_s", 5.0)
    client = Http1Client(upstream.url, headers or {}, **options)
    try:
        async with asyncio.timeout(10):
            yield upstream, client
    finally:
        await client.aclose()
        server.close()
        for task in upstream.tasks:
            task.cancel()
        await asyncio.gather(*upstream.tasks, return_exceptions=True)
        await server.wait_closed()


def answer(body: bytes = b"{}", *headers: str, status: str = "HTTP/1.1 200 OK") -> bytes:
    """An answer with a content-length; `headers` are extra `name: value` lines."""
    head = "".join(f"{line}\r\n" for line in (status, *headers))
    return b"%scontent-length: %d\r\n\r\n%s" % (head.encode(), len(body), body)


CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


def chunk(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece)


async def send_slowly(writer: asyncio.StreamWriter, *pieces: bytes) -> None:
    """Each piece in a TCP write of its own, a moment apart."""
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.01)


async def echo(request: Request, writer: asyncio.StreamWriter) -> None:
    """Answers with the request's own body, so each answer names its request."""
    writer.write(answer(request.body))


def held_until(released: asyncio.Event) -> Handler:
    """A handler that holds each answer until `released` is set, then echoes the request."""

    async def held(request: Request, writer: asyncio.StreamWriter) -> None:
        await released.wait()
        await echo(request, writer)

    return held


async def eventually(condition: Callable[[], bool], within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.005)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
