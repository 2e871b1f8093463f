"""A cap on request bodies, answered with a 413 in the caller's protocol before any parsing.

Without it a caller could make the proxy buffer and JSON-parse any amount of data. A declared
`Content-Length` over the limit is refused without reading the body; a body without one
(chunked) is read up to the limit and refused as soon as it passes it. Pure ASGI (no
`BaseHTTPMiddleware`), so streamed responses are untouched and the hot path pays one header
lookup. The limit is `limits.max_body_bytes` in tollway.yaml, read per request so a config
reload applies.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.errors import (
    GatewayError,
    InvalidRequest,
    PayloadTooLarge,
    anthropic_error_body,
    openai_error_body,
)


def error_response(path: str, error: GatewayError) -> JSONResponse:
    """`error` rendered in the protocol of the endpoint at `path`."""
    anthropic = path.startswith("/v1/messages")
    body = anthropic_error_body(error) if anthropic else openai_error_body(error)
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        path = scope["path"]
        declared = _content_length(scope)
        if declared == -1:
            bad = InvalidRequest("the Content-Length header is not a number")
            await error_response(path, bad)(scope, receive, send)
            return
        if declared is not None:
            if declared > limit:
                await error_response(path, _too_large(limit))(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server enforces the declared length
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away: let the app see the disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await error_response(path, _too_large(limit))(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body size; None when absent, -1 when unreadable."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None
