"""A proxy that does nothing: the floor under tollway's latency on the same machine.

`proxy_overhead` measures the upstream directly and through tollway; between the two sits the
cost of any Python proxy at all — a uvicorn server accepting the calls and an aiohttp client
forwarding them. This ASGI app is that and nothing more: it relays each call's body to the
upstream on a pooled aiohttp session and the upstream's answer (streamed as it arrives) back.
No keys, routing, pricing or events; run with uvicorn's own `--workers`, defaults otherwise.

    TOLLWAY_PASSTHROUGH_UPSTREAM=http://127.0.0.1:PORT/v1/chat/completions \
        python -m uvicorn benchmarks.passthrough:app --workers 2 --http httptools --no-access-log
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

Scope = dict[str, Any]
Message = dict[str, Any]

UPSTREAM_ENV = "TOLLWAY_PASSTHROUGH_UPSTREAM"

_session: aiohttp.ClientSession | None = None


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "http":
        await _relay(receive, send)


async def _lifespan(receive: Any, send: Any) -> None:
    global _session
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            # no connection limit: every waiting call holds one, as in tollway's client
            _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _session is not None:
                await _session.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _relay(receive: Any, send: Any) -> None:
    assert _session is not None, "started without its lifespan"
    body = b""
    while True:
        message: Message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {"content-type": "application/json"}
    async with _session.post(os.environ[UPSTREAM_ENV], data=body, headers=headers) as answer:
        content_type = answer.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-type", content_type)],
            }
        )
        async for chunk in answer.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
