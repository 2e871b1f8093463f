"""What does HTTP/2 to a provider cost or save? The same calls through `tollway serve --role
proxy` to one local upstream, once with the provider on HTTP/1.1 (router/providers/http1.py,
the default) and once with `http2: true` (httpx + h2, prior knowledge over cleartext).

Baseline: the HTTP/1.1 provider, measured in the same run; the upstream alone (HTTP/1.1, the
same load generator) is printed for its capacity. Concurrency 64, plain and streamed, an
upstream answering at once: the case where the client's per-call CPU shows, not the network.
Reported per run: calls/s, p50/p99, the ratio to HTTP/1.1, the proxy's CPU per call, and the
connections and requests the upstream saw (HTTP/2 should carry every call on one connection).

The upstream (`python -m benchmarks.upstream_http2 --serve PORT`) is benchmarks/upstream.py's
HTTP/1.1 protocol plus an HTTP/2 one on the `h2` library, told apart by the connection's first
bytes (the HTTP/2 preface). `h2` is pure Python, so the HTTP/2 upstream spends more CPU a call
than the httptools one — on a 2-core machine shared by the load generator, the upstream and
the proxy, that shows in the HTTP/2 figures too (the direct figure bounds what it can serve).

Run: `python -m benchmarks upstream_http2` (about 40 s), or
`python -m benchmarks.upstream_http2 --seconds 5 --concurrency 64`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import aiohttp
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import orjson
import yaml

from benchmarks.load_generators import FAST_MODEL, AiohttpLoad, Cell, Result, Wrk
from benchmarks.proxy_overhead import _cpu_seconds, _stop, _wait_http, start_proxy
from benchmarks.upstream import COMPLETION, UpstreamProtocol, _response, _stream_body
from tollway.broker import EmbeddedBroker, free_port
from tollway.ids import hash_key, new_key_secret

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PLAIN_BODY = orjson.dumps(COMPLETION)
STREAM_BODY = _stream_body()
MODES = {"HTTP/1.1": False, "HTTP/2 (httpx)": True}


# --- the upstream ------------------------------------------------------------------------------


class _Http1(UpstreamProtocol):
    """benchmarks/upstream.py's protocol, counting requests, with `GET /stats` added."""

    def __init__(self, stats: Counter[str]) -> None:
        super().__init__(0.0)
        self.stats = stats

    def on_message_complete(self) -> None:
        if self.url.startswith(b"/stats"):
            self._write(_response(b"application/json", orjson.dumps(self.stats)))
            return
        self.stats["http1_requests"] += 1
        super().on_message_complete()


class _Http2(asyncio.Protocol):
    """The same answers over HTTP/2: one per stream, as soon as its request has ended."""

    def __init__(self, stats: Counter[str]) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.connection = h2.connection.H2Connection(config)
        self.bodies: dict[int, list[bytes]] = {}
        self.stats = stats
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connection.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.connection.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.bodies[event.stream_id] = []
            elif isinstance(event, h2.events.DataReceived):
                self.bodies.setdefault(event.stream_id, []).append(event.data)
                self.connection.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
            elif isinstance(event, h2.events.StreamEnded):
                self._answer(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.bodies.pop(event.stream_id, None)
        self._flush()

    def _answer(self, stream_id: int) -> None:
        try:
            request = orjson.loads(b"".join(self.bodies.pop(stream_id, [])))
        except orjson.JSONDecodeError:
            request = {}
        streamed = isinstance(request, dict) and request.get("stream")
        kind, body = (
            (b"text/event-stream", STREAM_BODY) if streamed else (b"application/json", PLAIN_BODY)
        )
        self.stats["http2_requests"] += 1
        headers = [(b":status", b"200"), (b"content-type", kind)]
        self.connection.send_headers(stream_id, [*headers, (b"content-length", b"%d" % len(body))])
        size = self.connection.max_outbound_frame_size
        for start in range(0, len(body), size):
            last = start + size >= len(body)
            self.connection.send_data(stream_id, body[start : start + size], end_stream=last)

    def _flush(self) -> None:
        data = self.connection.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class _Either(asyncio.Protocol):
    """HTTP/2 when the connection opens with the HTTP/2 preface, else HTTP/1.1."""

    def __init__(self, stats: Counter[str]) -> None:
        self.stats = stats
        self.buffer = b""
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            self.buffer += data
            if len(self.buffer) < len(PREFACE) and PREFACE.startswith(self.buffer):
                return  # not enough bytes to tell yet
            http2 = self.buffer.startswith(PREFACE)
            self.stats["http2_connections" if http2 else "http1_connections"] += 1
            self.inner = _Http2(self.stats) if http2 else _Http1(self.stats)
            assert self.transport is not None
            self.inner.connection_made(self.transport)
            data, self.buffer = self.buffer, b""
        self.inner.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.inner is not None:
            self.inner.connection_lost(exc)


async def serve(port: int) -> None:
    stats: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Either(stats), "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


# --- the run -----------------------------------------------------------------------------------


def _config(upstream_port: int, key_hash: str, http2: bool) -> dict[str, object]:
    return {
        "providers": [
            {
                "name": "upstream",
                "type": "openai_compatible",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "http2": http2,
            }
        ],
        "models": [
            {
                "name": FAST_MODEL,
                "provider": "upstream",
                "family": "custom",
                "input_per_mtok": 0.15,
                "output_per_mtok": 0.60,
            }
        ],
        "keys": [{"id": "k_bench", "hash": key_hash, "business_line": "bench", "project": "p"}],
    }


async def _stats(port: int) -> Counter[str]:
    url = f"http://127.0.0.1:{port}/stats"
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return Counter(orjson.loads(await answer.read()))


async def run(seconds: float = 5.0, concurrency: int = 64) -> list[str]:
    secret = new_key_secret()
    upstream_port = free_port()
    cells = [Cell(0, stream, concurrency) for stream in (False, True)]
    rows: list[tuple[str, Cell, Result, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        load: Wrk | AiohttpLoad = (
            Wrk(Path(tmp) / "bench.lua") if shutil.which("wrk") else AiohttpLoad()
        )
        upstream = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.upstream_http2", "--serve", str(upstream_port)]
        )
        try:
            await _wait_http(f"http://127.0.0.1:{upstream_port}/")
            direct = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
            for cell in cells:
                rows.append(
                    (
                        "upstream alone, HTTP/1.1",
                        cell,
                        await load.run(direct, secret, cell, seconds),
                        "",
                    )
                )
            async with EmbeddedBroker() as broker:
                for mode, http2 in MODES.items():
                    config = Path(tmp) / f"tollway-{http2}.yaml"
                    config.write_text(
                        yaml.safe_dump(_config(upstream_port, hash_key(secret), http2))
                    )
                    for cell, result, seen in await _through_tollway(
                        load,
                        broker.bootstrap,
                        config,
                        Path(tmp),
                        secret,
                        cells,
                        seconds,
                        upstream_port,
                    ):
                        rows.append((mode, cell, result, seen))
        finally:
            _stop(upstream)
    return _lines(load.name, rows, seconds, concurrency)


async def _through_tollway(
    load: Wrk | AiohttpLoad,
    bootstrap: str,
    config_path: Path,
    tmp: Path,
    secret: str,
    cells: list[Cell],
    seconds: float,
    upstream_port: int,
) -> list[tuple[Cell, Result, str]]:
    proxy, port = start_proxy(bootstrap, config_path, tmp / f"proxy-{config_path.stem}")
    results = []
    try:
        await _wait_http(f"http://127.0.0.1:{port}/healthz")
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        await load.run(url, secret, cells[0], 1.0)  # connections and caches, not measured
        for cell in cells:
            before, cpu_before = await _stats(upstream_port), _cpu_seconds(proxy.pid)
            result = await load.run(url, secret, cell, seconds)
            cpu_after, after = _cpu_seconds(proxy.pid), await _stats(upstream_port)
            if cpu_before is not None and cpu_after is not None and result.calls:
                result.cpu_us_per_call = (cpu_after - cpu_before) / result.calls * 1e6
            results.append((cell, result, _seen(after - before)))
    finally:
        _stop(proxy)
    return results


def _seen(delta: Counter[str]) -> str:
    """New upstream connections and requests during a run, by protocol."""
    parts = []
    for version in ("http1", "http2"):
        requests = delta.get(f"{version}_requests", 0)
        if requests:
            connections = delta.get(f"{version}_connections", 0)
            label = "HTTP/1.1" if version == "http1" else "HTTP/2"
            parts.append(f"{requests} {label} requests, {connections} new connections")
    return "; ".join(parts)


def _lines(
    generator: str, rows: list[tuple[str, Cell, Result, str]], seconds: float, concurrency: int
) -> list[str]:
    lines = [
        "upstream HTTP/2: tollway (1 proxy process) in front of one local upstream, the provider "
        f"on HTTP/1.1 (tollway's client) then HTTP/2 (httpx, h2c); {concurrency} clients, {seconds:g} s a "
        f"run; load generator: {generator}",
        f"  {'path':<26} {'stream':>6} | {'calls/s':>8} {'p50':>7} {'p99':>7} | {'vs 1.1':>6}"
        f" | {'cpu/call':>8} | upstream saw",
    ]
    baseline = {cell: r for mode, cell, r, _ in rows if mode == "HTTP/1.1"}
    for mode, cell, r, seen in rows:
        base = baseline.get(cell)
        ratio = f"{r.rps / base.rps:5.2f}x" if base and base.rps and mode in MODES else "     -"
        cpu = f"{r.cpu_us_per_call:6.0f}µs" if r.cpu_us_per_call is not None else "       -"
        failed = f" ({r.failures} failed)" if r.failures else ""
        lines.append(
            f"  {mode:<26} {'yes' if cell.stream else 'no':>6} | {r.rps:8.0f} {r.p50_ms:7.2f}"
            f" {r.p99_ms:7.2f} | {ratio} | {cpu} | {seen or '-'}{failed}"
        )
    lines.append(
        "  (latencies in ms; vs 1.1: calls/s against the HTTP/1.1 provider in the same run; "
        "cpu/call: the proxy process's CPU time per answered call)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, metavar="PORT", help="run the upstream on PORT")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if args.serve:
        try:  # as benchmarks/upstream.py: uvloop when installed
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        except ImportError:
            runner = asyncio.Runner()
        with runner, contextlib.suppress(KeyboardInterrupt):
            runner.run(serve(args.serve))
        return
    print("\n".join(asyncio.run(run(args.seconds, args.concurrency))))


if __name__ == "__main__":
    main()
