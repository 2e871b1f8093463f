"""The upstream HTTP/1.1 client (router/providers/http1.py) when a call goes wrong: refused,
hung up, silent, garbage and cut-short answers (and what their messages leave out),
cancellation, and the pool's limit on connections. The raw upstream is
tests/router/raw_upstream.py.
"""

from __future__ import annotations

import asyncio
import time
import traceback

import pytest

from router.providers.http import TransportError
from router.providers.http1 import Http1Client
from tests.router.raw_upstream import (
    CHUNKED,
    Handler,
    Request,
    answer,
    chunk,
    echo,
    eventually,
    free_port,
    held_until,
    serving,
)

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
