"""Providers with `http2: true` against a real HTTP/2 upstream on loopback (Hypercorn serving the
OpenAI fake): cleartext with prior knowledge (h2c) and TLS with ALPN under a throwaway CA given
as the provider's `ca_bundle`. Through the whole stack (OpenAI SDK → tollway → upstream →
ledger row), then the HTTP/2 client alone for what only it can get wrong: an abandoned stream
must be reset (not left generating), and many of them must not wear the connection out."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from starlette.types import Receive, Scope, Send

from router.providers.http import TransportError
from router.providers.http2 import Http2UpstreamClient
from tollway.broker import free_port
from tollway.config.schema import ProviderConfig, TollwayConfig

from .conftest import SECRETS, Stack, run_stack
from .fakes import OPENAI_USAGE, TEXT, WORDS, openai_app


@dataclass
class Upstream:
    """An HTTP/2 server and what it saw: (HTTP version, client address) per request, and the
    requests whose client went away (`http.disconnect` before the app finished)."""

    base_url: str = ""
    seen: list[tuple[str, tuple[str, int]]] = field(default_factory=list)
    disconnected: list[str] = field(default_factory=list)

    def connections(self) -> set[tuple[str, int]]:
        return {client for _, client in self.seen}


def _app(upstream: Upstream) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The OpenAI fake, plus `/endless` (an SSE stream that never ends) and `/silent` (no
    answer at all), recording every request's HTTP version and connection."""
    fake = openai_app(SECRETS["FAKE_OPENAI_KEY"])

    async def endless(receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

        async def pump() -> None:
            for i in range(100_000):
                body = f"data: {i}\n\n".encode()
                await send({"type": "http.response.body", "body": body, "more_body": True})
                await asyncio.sleep(0.005)

        task = asyncio.create_task(pump())
        try:
            await _until_disconnect(receive)
        finally:
            task.cancel()

    async def _until_disconnect(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await fake(scope, receive, send)  # lifespan
            return
        upstream.seen.append((scope["http_version"], tuple(scope["client"])))
        path = scope["path"]
        if path in ("/endless", "/silent"):
            with contextlib.suppress(Exception):
                if path == "/endless":
                    await endless(receive, send)
                else:
                    await _until_disconnect(receive)
            upstream.disconnected.append(path)
            return
        await fake(scope, receive, send)

    return app


@contextlib.asynccontextmanager
async def h2_upstream(
    tls: tuple[Path, Path] | None = None, idle_timeout_s: float = 300
) -> AsyncIterator[Upstream]:
    """Hypercorn on a free loopback port: h2c (and HTTP/1.1) without `tls`, else TLS with
    ALPN offering h2 (`tls`: certificate chain and key files); it closes a connection idle for
    `idle_timeout_s`."""
    upstream = Upstream()
    port = free_port()
    config = HypercornConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "WARNING"
    # hypercorn's own default is 5 s; most tests check that one pooled connection serves every
    # call, with waits for the ledger in between that can take longer on a loaded machine
    config.keep_alive_timeout = idle_timeout_s
    if tls is not None:
        config.certfile, config.keyfile = (str(p) for p in tls)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(_app(upstream), config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    for _ in range(200):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            break
        await asyncio.sleep(0.02)
    upstream.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        yield upstream
    finally:
        stop.set()
        await task


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[Path, Path]]:
    """A throwaway CA: its certificate (the providers' `ca_bundle`), and the server's chain and
    key for 127.0.0.1."""
    folder = tmp_path_factory.mktemp("ca")
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1", "localhost")
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    authority.cert_pem.write_to_path(str(paths[0]))
    server.cert_chain_pems[0].write_to_path(str(paths[1]))
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(str(paths[1]), append=True)
    server.private_key_pem.write_to_path(str(paths[2]))
    return paths[0], (paths[1], paths[2])


@dataclass
class H2Stack:
    stack: Stack
    upstreams: dict[str, Upstream]  # by model name


@pytest.fixture(scope="module")
async def h2_stack(
    kafka_bootstrap: str,
    chdb_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    ca: tuple[Path, tuple[Path, Path]],
) -> AsyncIterator[H2Stack]:
    bundle, server_files = ca
    async with h2_upstream() as cleartext, h2_upstream(server_files) as tls:
        upstreams = {"gpt-4o-h2c": cleartext, "gpt-4o-h2tls": tls}

        def config(_: dict[str, str]) -> TollwayConfig:
            providers: list[dict[str, Any]] = [
                {"name": "h2c", "type": "openai_compatible", "http2": True},
                {"name": "h2tls", "type": "openai_compatible", "http2": True},
            ]
            providers[0]["base_url"] = cleartext.base_url + "/v1"
            providers[1] |= {"base_url": tls.base_url + "/v1", "ca_bundle": str(bundle)}
            for provider in providers:
                provider["api_key_env"] = "FAKE_OPENAI_KEY"
            price = {"input_per_mtok": 2.5, "output_per_mtok": 10.0, "cached_input_per_mtok": 1.25}
            models = [
                {"name": f"gpt-4o-{p['name']}", "provider": p["name"], "family": "custom", **price}
                for p in providers
            ]
            return TollwayConfig.model_validate({"providers": providers, "models": models})

        data_dir = tmp_path_factory.mktemp("http2")
        async with run_stack(kafka_bootstrap, chdb_path, data_dir, {}, config) as stack:
            yield H2Stack(stack, upstreams)


pytestmark = pytest.mark.integration


@pytest.mark.parametrize("model", ["gpt-4o-h2c", "gpt-4o-h2tls"])
async def test_openai_sdk_through_an_http2_upstream(h2_stack: H2Stack, model: str) -> None:
    stack, upstream = h2_stack.stack, h2_stack.upstreams[model]
    client = openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)
    messages: Any = [{"role": "user", "content": "Hello upstream"}]
    plain = await client.chat.completions.with_raw_response.create(model=model, messages=messages)
    assert plain.parse().choices[0].message.content == TEXT
    streamed = await client.chat.completions.with_raw_response.create(
        model=model, messages=messages, stream=True
    )
    chunks = [chunk async for chunk in streamed.parse()]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT

    # usage and cost land in the ledger as over HTTP/1.1 (test_providers.py)
    for raw in (plain, streamed):
        row = await stack.row(raw.headers["x-tollway-event-id"])
        assert row["provider"] == model.removeprefix("gpt-4o-") and row["status"] == "ok"
        assert int(row["input_tokens"]) == OPENAI_USAGE["prompt"]
        assert int(row["cached_input_tokens"]) == OPENAI_USAGE["cached"]
        assert int(row["output_tokens"]) == len(WORDS)
        assert Decimal(row["cost"]) == stack.expected_cost(
            model, OPENAI_USAGE["prompt"], len(WORDS), OPENAI_USAGE["cached"]
        )

    # concurrent calls, plain and streamed, are streams of the one pooled connection
    async def call(stream: bool) -> str:
        if not stream:
            answer = await client.chat.completions.create(model=model, messages=messages)
            return answer.choices[0].message.content or ""
        parts = await client.chat.completions.create(model=model, messages=messages, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in parts if c.choices])

    texts = await asyncio.gather(*(call(i % 2 == 1) for i in range(16)))
    assert texts == [TEXT] * 16
    assert len(upstream.seen) == 18
    assert {version for version, _ in upstream.seen} == {"2"}
    assert len(upstream.connections()) == 1


async def test_an_abandoned_stream_is_reset_and_the_connection_lives_on() -> None:
    async with h2_upstream() as upstream:
        client = Http2UpstreamClient(upstream.base_url, {}, timeout_s=5.0)
        try:
            # abandoned after its first line: the upstream hears of it and stops
            async with client.stream("endless", {}) as answer:
                assert answer.http_version == "HTTP/2"
                async for line in answer.aiter_lines():
                    assert line == "data: 0"
                    break
            await _until(lambda: upstream.disconnected == ["/endless"])
            # a call cancelled before any answer (an attempt timeout) is reset too
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.post("silent", {}), 0.2)
            await _until(lambda: upstream.disconnected[-1:] == ["/silent"])

            # past the 100 streams h2 allows open at once: without the resets the connection
            # would refuse new streams ("Max outbound streams is 100, 100 open")
            for _ in range(120):
                async with client.stream("endless", {}) as answer:
                    await anext(aiter(answer.aiter_lines()))
            refused = await client.post("v1/chat/completions", _chat())
            assert refused.status_code == 401  # the fake's refusal: no key was sent
            await _until(lambda: len(upstream.disconnected) == 122)
            assert len(upstream.connections()) == 1
        finally:
            await client.aclose()


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    """Servers close idle connections; the calls after the close open a new one instead of
    failing on the dead one (`WriteError`), alone or several at once."""
    key = {"authorization": f"Bearer {SECRETS['FAKE_OPENAI_KEY']}"}
    async with h2_upstream(idle_timeout_s=0.3) as upstream:
        client = Http2UpstreamClient(upstream.base_url, key, timeout_s=5.0)
        try:
            for burst in (1, 4):
                await client.post("v1/chat/completions", _chat())
                first = upstream.connections()
                await asyncio.sleep(0.8)  # the server closes the idle connection
                answers = await asyncio.gather(
                    *(client.post("v1/chat/completions", _chat()) for _ in range(burst))
                )
                assert [a.status_code for a in answers] == [200] * burst
                assert len(upstream.connections() - first) == 1  # one new connection for all
        finally:
            await client.aclose()


async def test_transport_failures_are_transport_errors() -> None:
    refused = Http2UpstreamClient(f"http://127.0.0.1:{free_port()}", {}, timeout_s=1.0)
    with pytest.raises(TransportError) as caught:
        await refused.post("v1/chat/completions", _chat())
    assert caught.value.kind == "ConnectError" and not caught.value.timeout
    await refused.aclose()

    async with h2_upstream() as upstream:
        slow = Http2UpstreamClient(upstream.base_url, {}, timeout_s=0.2)
        with pytest.raises(TransportError) as caught:
            await slow.post("silent", {})
        assert caught.value.timeout
        await slow.aclose()


def test_ca_bundle_must_be_readable(tmp_path: Path) -> None:
    spec = {"name": "internal", "type": "openai_compatible", "base_url": "https://llm.internal"}
    with pytest.raises(ValueError, match="no readable CA bundle"):
        ProviderConfig.model_validate({**spec, "ca_bundle": str(tmp_path / "missing.pem")})
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    config = ProviderConfig.model_validate({**spec, "ca_bundle": str(tmp_path / "ca.pem")})
    assert config.ca_bundle and not config.http2


def _chat() -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def _until(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    assert condition()
