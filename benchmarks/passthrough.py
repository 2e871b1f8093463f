"""A proxy that does nothing: the floor under tollway's latency on the same machine.

`proxy_overhead` measures the upstream directly and through tollway; between the two sits the
cost of any Python proxy at all — a uvicorn server accepting the calls and an HTTP client
forwarding them, the same two tollway uses. This ASGI app is that and nothing more: it relays
each call's body to the upstream on tollway's pooled client (router/providers/http1.py) and
the upstream's answer (streamed as it arrives) back.
No keys, routing, pricing or events; uvicorn's own multi-process supervisor, defaults
otherwise, with one fix: the listening socket is created as TCP. uvicorn's `--workers` creates
it with protocol 0, so asyncio leaves Nagle's algorithm on for every connection and each
keep-alive call after the first waits about 40 ms for the client's delayed acknowledgement
(Kludex/uvicorn#3149; tollway's own `--workers` had the same bug, tollway/server.py).

    TOLLWAY_PASSTHROUGH_UPSTREAM=http://127.0.0.1:PORT/v1/chat/completions \
        python -m benchmarks.passthrough 8001 --workers 2
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

import orjson
import uvicorn
from uvicorn.supervisors import Multiprocess

from router.providers.http1 import Http1Client

Scope = dict[str, Any]
Message = dict[str, Any]

UPSTREAM_ENV = "TOLLWAY_PASSTHROUGH_UPSTREAM"

_client: Http1Client | None = None
#: the path under the upstream's `/v1` that every call is relayed to
RELAYED_PATH = "chat/completions"


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "http":
        await _relay(receive, send)


async def _lifespan(receive: Any, send: Any) -> None:
    global _client
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            origin, _, _ = os.environ[UPSTREAM_ENV].partition("/v1/")
            _client = Http1Client(origin + "/v1", {}, timeout_s=60)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _client is not None:
                await _client.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _relay(receive: Any, send: Any) -> None:
    assert _client is not None, "started without its lifespan"
    body = b""
    while True:
        message: Message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    # the client sends a payload as JSON: decoding it is the one step a relay of bytes skips
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:  # the benchmark's readiness probe sends no body
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    async with _client.stream(RELAYED_PATH, payload) as answer:
        content_type = answer.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": answer.status_code,
                "headers": [(b"content-type", content_type)],
            }
        )
        async for chunk in answer.aiter_bytes():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def main() -> None:
    parser = argparse.ArgumentParser(description="a do-nothing proxy (benchmarks/passthrough.py)")
    parser.add_argument("port", type=int)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    config = uvicorn.Config(
        "benchmarks.passthrough:app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        http="httptools",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(config.backlog)
    sock.set_inheritable(True)
    if args.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
