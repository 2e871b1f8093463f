"""A minimal, fast OpenAI-compatible upstream: the baseline every proxy measurement is compared to.

Run as `python -m benchmarks.upstream PORT [--slow-ms MS]`. It answers
`POST /v1/chat/completions` with a fixed completion and usage — a `chat.completion`, or with
`"stream": true` the SSE `chat.completion.chunk` frames, the usage chunk and `data: [DONE]` —
after no delay for any model except `bench-slow`, which answers after `--slow-ms` (default
1,500 ms, a typical LLM call). `GET /peak` answers `{"peak": n}`, the most `bench-slow` calls it
held at once since the last `GET /peak` (what a limit on calls in flight is measured by).

It is a bare asyncio protocol on httptools and uvloop (when installed), with keep-alive and
no framework, so it costs far less CPU per call than the proxy it is compared with: on a
2-core machine where the load generator, the upstream, the proxy and the broker share the
cores, an upstream as heavy as the proxy would halve what the proxy can show. The direct
measurement in `benchmarks/proxy_overhead.py` shows its capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import orjson

COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 0,
    "model": "bench-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok " * 40},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
}

SLOW_MODEL = "bench-slow"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


def _stream_body() -> bytes:
    frames = [_chunk({"role": "assistant", "content": ""})]
    frames += [_chunk({"content": "ok " * 5}) for _ in range(8)]
    frames.append(_chunk({}, "stop"))
    usage = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "bench-model",
        "choices": [],
        "usage": COMPLETION["usage"],
    }
    frames.append(b"data: " + orjson.dumps(usage) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return b"".join(frames)


def _response(content_type: bytes, body: bytes) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )
    return head + body


PLAIN = _response(b"application/json", orjson.dumps(COMPLETION))
STREAM = _response(b"text/event-stream", _stream_body())
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


class SlowCalls:
    """The `bench-slow` calls being held, and the most there were at once."""

    held = 0
    peak = 0


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: parse a request, answer it (now or after the delay)."""

    def __init__(self, slow_s: float) -> None:
        import httptools

        self.slow_s = slow_s
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.url == b"/peak":
            peak, SlowCalls.peak = SlowCalls.peak, SlowCalls.held
            self._write(_response(b"application/json", orjson.dumps({"peak": peak})))
            return
        if not self.url.startswith(b"/v1/chat/completions"):
            self._write(NOT_FOUND)
            return
        try:
            request = orjson.loads(b"".join(self.body))
        except orjson.JSONDecodeError:
            request = {}
        answer = STREAM if request.get("stream") else PLAIN
        if request.get("model") == SLOW_MODEL and self.slow_s > 0:
            SlowCalls.held += 1
            SlowCalls.peak = max(SlowCalls.peak, SlowCalls.held)
            self.loop.call_later(self.slow_s, self._answer_slow, answer)
        else:
            self._write(answer)

    def _answer_slow(self, answer: bytes) -> None:
        SlowCalls.held -= 1
        self._write(answer)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(port: int, slow_ms: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(slow_ms / 1000), "127.0.0.1", port, backlog=4096
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--slow-ms", type=float, default=1500.0)
    args = parser.parse_args()
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(serve(args.port, args.slow_ms))


if __name__ == "__main__":
    main()
