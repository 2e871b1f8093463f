"""The upstream HTTP/1.1 client (router/providers/http1.py) against a raw server on loopback.

The server here is a few lines of asyncio: it reads each request (head up to the blank line,
then `content-length` bytes) and lets the test's handler write the answer byte for byte, so
every test controls exactly what reaches the client: chunk boundaries, pauses, hang-ups,
garbage. The server counts the connections it accepted and those the client closed, which is
how keep-alive and the closing of abandoned connections are observed from outside.

Covered: the request on the wire; keep-alive and the pool's limit; content-length, chunked,
read-to-close and gzip bodies; streaming piece by piece and line by line; answers that end
the connection; failures (refused, hung up, silent, garbage, cut short) and what their
messages leave out; cancellation; flow control on large answers; header injection; TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import json
import os
import socket
import ssl
import time
import traceback
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from router.providers.http import TransportError
from router.providers.http1 import Http1Client

# --- a raw HTTP/1.1 server ---------------------------------------------------------------------


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


# --- the request on the wire -------------------------------------------------------------------


async def test_the_request_on_the_wire() -> None:
    own = {"Authorization": "a", "X-Team": "blue"}
    async with serving(echo, headers=own) as (server, client):
        payload = {"model": "m", "text": "café"}
        await client.post("chat/completions", payload, headers={"authorization": "b"})
        await client.post("/chat/completions", payload)

    first, second = server.requests
    assert first.line == second.line == "POST /v1/chat/completions HTTP/1.1"
    assert first.header("host") == [f"127.0.0.1:{server.port}"]
    assert first.header("content-type") == ["application/json"]
    assert first.header("content-length") == [str(len(first.body))]
    assert first.header("x-team") == ["blue"]
    assert first.header("authorization") == ["b"]  # the call's, instead of the client's
    assert second.header("authorization") == ["a"]  # and only for that call
    assert first.json() == second.json() == payload


async def test_a_path_is_percent_encoded_where_it_must_be() -> None:
    async with serving(echo) as (server, client):
        await client.post("models/gemini 2.5:streamGenerateContent?alt=sse", {})
    assert (
        server.requests[0].line.split()[1]
        == "/v1/models/gemini%202.5:streamGenerateContent?alt=sse"
    )


async def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError):
        Http1Client("http://127.0.0.1:1", {"x-note": "a\r\nx-injected: 1"}, timeout_s=1)
    async with serving(echo) as (server, client):
        for bad in ({"x-note": "a\r\nx-injected: 1"}, {"x-note\nx-injected": "1"}):
            with pytest.raises(ValueError):
                await client.post("x", {}, headers=bad)
            with pytest.raises(ValueError):
                async with client.stream("x", {}, headers=bad):
                    pass
        assert server.accepted == 0
        assert (await client.post("x", {"n": 1})).json() == {"n": 1}


# --- keep-alive --------------------------------------------------------------------------------


async def test_sequential_calls_share_one_connection() -> None:
    async with serving(echo) as (server, client):
        for n in range(5):
            assert (await client.post("x", {"n": n})).json() == {"n": n}
    assert server.accepted == 1


async def test_concurrent_calls_open_several_connections_and_get_their_own_answers() -> None:
    async def slow_echo(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.02)
        writer.write(answer(request.body))

    async with serving(slow_echo) as (server, client):
        for _ in range(2):  # the second burst reuses the first one's connections
            answers = await asyncio.gather(*(client.post("x", {"n": n}) for n in range(20)))
            assert [a.json() for a in answers] == [{"n": n} for n in range(20)]
    assert server.accepted == 20


@pytest.mark.parametrize(
    ("status", "headers"),
    [("HTTP/1.1 200 OK", ["Connection: close"]), ("HTTP/1.0 200 OK", [])],
    ids=["connection-close", "http-1.0"],
)
async def test_an_answer_that_ends_its_connection_is_followed_by_a_new_one(
    status: str, headers: list[str]
) -> None:
    async def last_word(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(request.body, *headers, status=status))  # and leaves it to the client

    async with serving(last_word) as (server, client):
        assert (await client.post("x", {"n": 1})).json() == {"n": 1}
        await eventually(lambda: server.hangups == 1)  # the client closed it
        assert (await client.post("x", {"n": 2})).json() == {"n": 2}
    assert server.accepted == 2


async def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    async def answer_and_hang_up(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(request.body))
        await writer.drain()
        writer.close()

    async with serving(answer_and_hang_up) as (server, client):
        for n in range(3):
            assert (await client.post("x", {"n": n})).json() == {"n": n}
            await asyncio.sleep(0.05)  # the loop sees the close
    assert server.accepted == 3


async def test_a_connection_idle_longer_than_keepalive_is_not_reused() -> None:
    async with serving(echo, keepalive_s=0.1) as (server, client):
        await client.post("x", {})
        await asyncio.sleep(0.3)
        await client.post("x", {})
    assert server.accepted == 2


async def test_aclose_closes_the_idle_connections() -> None:
    async with serving(echo) as (server, client):
        await client.post("x", {})
        await client.aclose()
        await eventually(lambda: server.hangups == 1)


async def test_a_call_out_when_the_client_closes_leaves_no_connection_behind() -> None:
    release = asyncio.Event()
    held = held_until(release)

    async with serving(held) as (server, client):
        call = asyncio.create_task(client.post("x", {}))
        await eventually(lambda: server.accepted == 1)
        await client.aclose()
        release.set()
        assert (await call).status_code == 200  # the call still gets its answer
        await eventually(lambda: server.hangups == 1)  # then its connection is closed


# --- bodies ------------------------------------------------------------------------------------


async def test_a_chunked_answer_split_across_writes() -> None:
    async def chunked(request: Request, writer: asyncio.StreamWriter) -> None:
        wire = CHUNKED + chunk(b"Hello, ") + chunk(b"chunked ") + chunk(b"world") + LAST_CHUNK
        await send_slowly(writer, wire[:30], wire[30:52], wire[52:57], wire[57:])

    async with serving(chunked) as (server, client):
        assert (await client.post("x", {})).content == b"Hello, chunked world"
        assert (await client.post("x", {})).content == b"Hello, chunked world"
    assert server.accepted == 1


async def test_an_answer_without_length_ends_with_its_connection() -> None:
    async def until_close(request: Request, writer: asyncio.StreamWriter) -> None:
        await send_slowly(writer, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of ", b"it")
        writer.close()

    async with serving(until_close) as (server, client):
        assert (await client.post("x", {})).content == b"all of it"
        assert (await client.post("x", {})).content == b"all of it"
    assert server.accepted == 2


@pytest.mark.parametrize(
    ("encoding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
)
async def test_a_compressed_answer_is_decompressed(
    encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    text = b'{"choices": [{"text": "compressible "}]}' * 200
    packed = compress(text)

    async def compressed(request: Request, writer: asyncio.StreamWriter) -> None:
        wire = answer(packed, f"Content-Encoding: {encoding}")
        await send_slowly(writer, wire[:100], wire[100:])

    async with serving(compressed) as (_, client):
        assert (await client.post("x", {})).content == text


async def test_a_body_that_does_not_decompress_is_a_transport_error() -> None:
    async def corrupt_first(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.json() == {"n": 1}:
            writer.write(answer(b"not gzip at all", "Content-Encoding: gzip"))
        else:
            await echo(request, writer)

    async with serving(corrupt_first) as (server, client):
        with pytest.raises(TransportError) as failure:
            await client.post("x", {"n": 1})
        assert failure.value.kind == "error"  # zlib's error, named by its type only
        assert (await client.post("x", {"n": 2})).json() == {"n": 2}
    assert server.accepted == 2  # the broken answer's connection was not reused


async def test_status_and_headers_come_as_sent_with_lower_case_names_and_repeats_joined() -> None:
    async def too_many(request: Request, writer: asyncio.StreamWriter) -> None:
        status = "HTTP/1.1 429 Too Many Requests"
        writer.write(
            answer(b"slow down", "Retry-After: 3", "X-Note: a", "x-note: b", status=status)
        )

    async with serving(too_many) as (_, client):
        got = await client.post("x", {})
    assert (got.status_code, got.content) == (429, b"slow down")
    assert got.headers["retry-after"] == "3"
    assert got.headers["x-note"] == "a, b"


async def test_a_large_answer_arrives_whole_through_post() -> None:
    body = os.urandom(3 * 1024 * 1024)  # above the client's 256 KiB high-water mark

    async def large(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(body))

    async with serving(large) as (_, client):
        assert (await client.post("x", {})).content == body


# --- streaming ---------------------------------------------------------------------------------


async def test_aiter_bytes_yields_each_piece_as_it_arrives() -> None:
    go = asyncio.Event()

    async def two_pieces(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED + chunk(b"one"))
        await writer.drain()
        await go.wait()  # the second piece leaves only once the test has the first
        writer.write(chunk(b"two") + LAST_CHUNK)

    async with serving(two_pieces) as (_, client), client.stream("x", {}) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["transfer-encoding"] == "chunked"
        pieces = streamed.aiter_bytes()
        async with asyncio.timeout(2):
            assert await anext(pieces) == b"one"
        go.set()
        assert b"".join([piece async for piece in pieces]) == b"two"


async def test_aiter_lines_splits_lines_across_pieces() -> None:
    async def events(request: Request, writer: asyncio.StreamWriter) -> None:
        body = "data: a\n\ndata: café\r\nlast".encode()
        cuts = [0, 6, 12, 19, 21, len(body)]  # mid-line, mid-"é", between "\r" and "\n"
        pieces = [chunk(body[a:b]) for a, b in itertools.pairwise(cuts)]
        await send_slowly(writer, CHUNKED, *pieces, LAST_CHUNK)

    async with serving(events) as (_, client), client.stream("x", {}) as streamed:
        lines = [line async for line in streamed.aiter_lines()]
    assert lines == ["data: a", "", "data: café", "last"]


async def test_a_stream_read_to_its_end_leaves_its_connection_for_the_next_call() -> None:
    async with serving(echo) as (server, client):
        async with client.stream("x", {"n": 1}) as streamed:
            assert json.loads(await streamed.aread()) == {"n": 1}
        assert (await client.post("x", {"n": 2})).json() == {"n": 2}
    assert server.accepted == 1


async def test_leaving_a_stream_early_closes_its_connection() -> None:
    async def endless_or_echo(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.json().get("endless"):
            writer.write(CHUNKED + chunk(b"one"))  # and never the end
        else:
            await echo(request, writer)

    async with serving(endless_or_echo) as (server, client):
        async with client.stream("x", {"endless": True}) as streamed:
            assert await anext(streamed.aiter_bytes()) == b"one"
        await eventually(lambda: server.hangups == 1)
        assert (await client.post("x", {"n": 2})).json() == {"n": 2}
    assert server.accepted == 2


# --- failures ----------------------------------------------------------------------------------

SECRET = {"authorization": "Bearer sk-secret-123"}  #: the client's own
CALL_SECRET = {"x-api-key": "sk-secret-456"}  #: a call's


def assert_names_no_secret(error: TransportError, port: int) -> None:
    """Neither the message nor a logged traceback may carry the URL or a header value."""
    logged = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), logged):
        assert "sk-secret" not in text
        assert "127.0.0.1" not in text and str(port) not in text


async def test_a_refused_connection_is_a_transport_error() -> None:
    port = free_port()
    client = Http1Client(f"http://127.0.0.1:{port}", SECRET, timeout_s=5)
    with pytest.raises(TransportError) as caught:
        await client.post("x", {}, headers=CALL_SECRET)
    assert not caught.value.timeout
    assert_names_no_secret(caught.value, port)
    await client.aclose()


async def hang_up(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def speak_garbage(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


async def stay_silent(request: Request, writer: asyncio.StreamWriter) -> None:
    await asyncio.Event().wait()


@pytest.mark.parametrize("way", ["post", "stream"])
@pytest.mark.parametrize(
    ("handler", "timeout"),
    [(hang_up, False), (speak_garbage, False), (stay_silent, True)],
    ids=["hang-up", "garbage", "silence"],
)
async def test_a_call_without_an_http_answer_is_a_transport_error(
    handler: Handler, timeout: bool, way: str
) -> None:
    async with serving(handler, headers=SECRET, timeout_s=0.2) as (server, client):
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            if way == "post":
                await client.post("x", {}, headers=CALL_SECRET)
            else:
                async with client.stream("x", {}, headers=CALL_SECRET):
                    pass
        elapsed = time.monotonic() - started
    assert caught.value.timeout is timeout
    assert (0.15 < elapsed < 2) if timeout else elapsed < 1
    assert_names_no_secret(caught.value, server.port)


@pytest.mark.parametrize(
    "cut_short",
    [
        answer(b'{"choices": []}')[:-5],
        CHUNKED + chunk(b'{"choices": '),
        CHUNKED.replace(b"chunked", b"Chunked") + chunk(b'{"choices": '),
    ],
    ids=["content-length", "chunked", "Chunked"],
)
async def test_a_body_cut_short_is_an_error_not_a_shorter_body(cut_short: bytes) -> None:
    async def hang_up_mid_body(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(cut_short)
        await writer.drain()
        writer.close()

    async with serving(hang_up_mid_body) as (_, client):
        with pytest.raises(TransportError):
            await client.post("x", {})
        with pytest.raises(TransportError):
            async with client.stream("x", {}) as streamed:
                await streamed.aread()


async def test_a_stream_silent_mid_body_times_out() -> None:
    async def one_piece_then_silence(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED + chunk(b"one"))
        await asyncio.Event().wait()

    async with serving(one_piece_then_silence, timeout_s=0.2) as (_, client):
        pieces: list[bytes] = []
        async with client.stream("x", {}) as streamed:
            started = time.monotonic()
            with pytest.raises(TransportError) as caught:
                async for piece in streamed.aiter_bytes():
                    pieces.append(piece)
            elapsed = time.monotonic() - started
    assert pieces == [b"one"]
    assert caught.value.timeout and elapsed < 2


# --- cancellation and the pool's limit ---------------------------------------------------------


async def test_a_cancelled_call_leaves_no_late_answer_for_the_next_call() -> None:
    release = asyncio.Event()

    async def first_held(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.json()["n"] == 1:
            await release.wait()
        await echo(request, writer)

    async with serving(first_held) as (server, client):
        first = asyncio.create_task(client.post("x", {"n": 1}))
        await eventually(lambda: len(server.requests) == 1)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        second = asyncio.create_task(client.post("x", {"n": 2}))
        await asyncio.sleep(0.05)  # the second request is on its way
        release.set()  # and the first one's answer now goes out, late
        assert (await second).json() == {"n": 2}
        await eventually(lambda: server.hangups == 1)  # the cancelled call's connection
    assert server.accepted == 2


async def test_a_call_beyond_max_connections_waits_for_one_to_be_free() -> None:
    release = asyncio.Event()
    held = held_until(release)

    async with serving(held, max_connections=2) as (server, client):
        calls = [asyncio.create_task(client.post("x", {"n": n})) for n in range(3)]
        await eventually(lambda: len(server.requests) == 2)
        await asyncio.sleep(0.1)
        assert len(server.requests) == 2 and not any(call.done() for call in calls)
        release.set()
        answers = await asyncio.gather(*calls)
    assert [a.json() for a in answers] == [{"n": n} for n in range(3)]
    assert server.accepted == 2


async def test_a_call_waiting_for_a_connection_times_out_after_connect_timeout() -> None:
    release = asyncio.Event()
    held = held_until(release)

    async with serving(held, max_connections=2, connect_timeout_s=0.2) as (server, client):
        calls = [asyncio.create_task(client.post("x", {"n": n})) for n in range(2)]
        await eventually(lambda: len(server.requests) == 2)
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            await client.post("x", {"n": 2})
        assert caught.value.timeout and 0.15 < time.monotonic() - started < 2
        release.set()
        assert [a.json() for a in await asyncio.gather(*calls)] == [{"n": 0}, {"n": 1}]
        assert (await client.post("x", {"n": 3})).json() == {"n": 3}  # no slot was lost
    assert server.accepted == 2


# --- flow control ------------------------------------------------------------------------------

LARGE = os.urandom(4 * 1024 * 1024)


async def send_large(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(CHUNKED)
    for start in range(0, len(LARGE), 64 * 1024):
        writer.write(chunk(LARGE[start : start + 64 * 1024]))
        await writer.drain()
    writer.write(LAST_CHUNK)


async def test_a_large_stream_read_slowly_arrives_whole_and_in_order() -> None:
    async with serving(send_large) as (server, client):
        received = bytearray()
        async with client.stream("x", {}) as streamed:
            async for piece in streamed.aiter_bytes():
                received += piece
                await asyncio.sleep(0.01)  # a slow reader: the client stops reading meanwhile
        assert received == LARGE
        assert (await client.post("x", {})).content == LARGE
    assert server.accepted == 1


async def test_a_large_stream_left_unread_then_read_at_once_arrives_whole() -> None:
    async with serving(send_large) as (_, client), client.stream("x", {}) as streamed:
        await asyncio.sleep(0.1)  # the client fills its buffer and stops reading
        assert await streamed.aread() == LARGE


async def test_a_reader_slower_than_timeout_s_is_not_a_silent_upstream() -> None:
    async with serving(send_large, timeout_s=0.3) as (_, client):
        received = bytearray()
        async with client.stream("x", {}) as streamed:
            async for piece in streamed.aiter_bytes():
                received += piece
                if len(received) == len(piece):
                    await asyncio.sleep(0.6)  # the reader is busy, the upstream is not silent
        assert received == LARGE


# --- TLS ---------------------------------------------------------------------------------------


async def test_https_with_a_private_ca_bundle(tmp_path: Path) -> None:
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(tls)

    async with serving(echo, tls=tls, ca_bundle=str(bundle)) as (server, client):
        for n in range(2):
            assert (await client.post("x", {"n": n})).json() == {"n": n}
        untrusting = Http1Client(server.url, {}, timeout_s=5)  # the default bundle
        with pytest.raises(TransportError, match="SSLCertVerificationError"):
            await untrusting.post("x", {})
        await untrusting.aclose()
    assert server.accepted == 1  # the refused handshake never reached the server's handler
