"""The upstream HTTP/1.1 client (router/providers/http1.py) on a working upstream: the request
on the wire, keep-alive, content-length, chunked, read-to-close and gzip bodies, streaming
piece by piece and line by line, flow control on large answers, and TLS. Its failures are in
test_http1_failures.py; the raw upstream both use is tests/router/raw_upstream.py.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import os
import ssl
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from router.providers.http import TransportError
from router.providers.http1 import Http1Client
from tests.router.raw_upstream import (
    CHUNKED,
    LAST_CHUNK,
    Request,
    answer,
    chunk,
    echo,
    eventually,
    held_until,
    send_slowly,
    serving,
)

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
