"""With an HTTP proxy variable set, the providers' calls go through the proxy.

router/providers/http1.py's client does not speak to proxies, so `new_http_client` hands such
providers aiohttp's (router/providers/http_via_proxy.py). The proxy here is a few lines of
asyncio that answers itself and notes the request line: a call through a proxy names the
whole URL (absolute form), a direct call only the path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from router.providers.base import new_http_client
from router.providers.http1 import Http1Client
from router.providers.http_via_proxy import ProxiedClient
from tollway.config.catalogue import ProviderConfig

ANSWER = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{"ok": true}'
)


class Recorder:
    """A server that answers every request itself and keeps each request line."""

    def __init__(self) -> None:
        self.request_lines: list[str] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            lines = head.decode().split("\r\n")
            self.request_lines.append(lines[0])
            length = next(
                int(line.split(":", 1)[1])
                for line in lines
                if line.lower().startswith("content-length")
            )
            await reader.readexactly(length)
            writer.write(ANSWER)
            await writer.drain()
            if reader.at_eof():
                break


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    recorder = Recorder()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await recorder.handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    recorder.port = server.sockets[0].getsockname()[1]
    async with server:
        yield recorder


def _provider() -> ProviderConfig:
    return ProviderConfig(name="p", type="openai_compatible", base_url="http://upstream.test/v1")


async def test_a_proxy_variable_sends_the_calls_through_the_proxy(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{recorder.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = new_http_client(_provider(), "http://upstream.test/v1", {"authorization": "Bearer k"})
    assert isinstance(client, ProxiedClient)
    try:
        answer = await client.post("chat/completions", {"model": "m"})
    finally:
        await client.aclose()
    assert answer.status_code == 200 and answer.json() == {"ok": True}
    # the absolute form: the proxy is asked for the upstream's URL
    assert recorder.request_lines == ["POST http://upstream.test/v1/chat/completions HTTP/1.1"]


async def test_without_a_proxy_variable_the_calls_go_direct(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    base_url = f"http://127.0.0.1:{recorder.port}/v1"
    client = new_http_client(_provider(), base_url, {})
    assert isinstance(client, Http1Client)
    try:
        answer = await client.post("chat/completions", {"model": "m"})
    finally:
        await client.aclose()
    assert answer.json() == {"ok": True}
    assert recorder.request_lines == ["POST /v1/chat/completions HTTP/1.1"]
