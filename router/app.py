"""Mount the proxy on a FastAPI app: its endpoints and the error mapping of the HTTP API.

Every error leaves as JSON in the caller's protocol — OpenAI's `{"error": {...}}`, or
Anthropic's `{"type": "error", ...}` on `/v1/messages` — with a `type` a program can branch
on. Unexpected exceptions are logged here and answered with a generic 500, never a trace.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from router import anthropic_api, openai_api, openai_completions_api, openai_responses_api
from router.body_limit import BodyLimit, error_response
from router.errors import Forbidden, GatewayError, InvalidRequest, Unauthorized
from router.responses import install_body_schemas
from tollway.auth import AuthError, PermissionDenied

log = logging.getLogger(__name__)


#: the caller-facing protocol endpoints, whose every answer (errors included) speaks the protocol
PROTOCOL_PATHS = (
    "/v1/chat/",
    "/v1/messages",
    "/v1/embeddings",
    "/v1/models",
    "/v1/completions",
    "/v1/responses",
)


class GatewayApp(FastAPI):
    """The FastAPI app tollway serves: with the proxy role, a `FastLane` takes the protocol
    endpoints' POSTs before FastAPI's own middleware stack sees them."""

    fast_lane: FastLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.fast_lane
        if lane is not None and lane.takes(scope):
            scope["app"] = self  # as FastAPI sets it, for `request.app`
            await lane(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def install_proxy(app: GatewayApp) -> None:
    """Add the OpenAI- and Anthropic-compatible endpoints and the request body limit;
    `app.state.gateway` must be set before serving."""
    app.include_router(openai_api.router)
    app.include_router(anthropic_api.router)
    app.include_router(openai_responses_api.router)
    app.include_router(openai_completions_api.router)
    install_body_schemas(app)

    def body_limit() -> int:
        gateway = getattr(app.state, "gateway", None)
        config = gateway.config if gateway is not None else app.state.config
        return int(config.limits.max_body_bytes)

    app.add_middleware(BodyLimit, limit=body_limit)  # for every other route
    # the lane's endpoints stay on the routers too, for the OpenAPI document
    app.fast_lane = FastLane(
        {
            "/v1/chat/completions": openai_api.chat_completions,
            "/v1/embeddings": openai_api.embeddings,
            "/v1/messages": anthropic_api.messages,
        },
        handlers=lambda: app.exception_handlers,
        body_limit=body_limit,
    )


Endpoint = Callable[[Request], Awaitable[Response]]


class FastLane:
    """POSTs to the protocol endpoints go straight to their functions, in front of FastAPI's
    middleware stack (server errors, OpenTelemetry's per-request checks, the body limit
    again), routing, exception-handling wrappers and dependency machinery, which cost about
    a tenth of a proxied call's CPU (py-spy, benchmarks/proxy_overhead.py). The endpoints
    take only the `Request` and parse it themselves (router/responses.py); the lane applies
    the body limit, and answers what they raise with the app's own exception handlers,
    exactly as on the routed path — an unexpected exception with the logged generic 500.
    Every other request (other paths, other methods: a GET still gets its 405) is FastAPI's.
    """

    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        handlers: Callable[[], Mapping[Any, Callable[..., Any]]],
        body_limit: Callable[[], int],
    ) -> None:
        self.endpoints = endpoints
        self.handlers = handlers
        self._limited = BodyLimit(self._call, limit=body_limit)

    def takes(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and (scope["path"] in self.endpoints)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._limited(scope, receive, send)

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await self.endpoints[scope["path"]](request)
        except Exception as exc:
            response = await self._handler(exc)(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Callable[..., Any]:
        handlers = self.handlers()
        for cls in type(exc).__mro__:
            if cls in handlers:
                return handlers[cls]
        return _unexpected_error


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)  # type: ignore[arg-type]
    app.add_exception_handler(AuthError, _auth_error)  # type: ignore[arg-type]
    app.add_exception_handler(PermissionDenied, _permission_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


def _render(request: Request, error: GatewayError) -> JSONResponse:
    return error_response(request.url.path, error)


#: (OpenAI type, Anthropic type) of the HTTP errors the framework itself raises
_HTTP_TYPES = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("authentication_error", "authentication_error"),
    403: ("permission_error", "permission_error"),
    404: ("invalid_request_error", "not_found_error"),
    413: ("invalid_request_error", "request_too_large"),
}


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Framework errors (unknown path, wrong method, an unparseable body) on a protocol
    endpoint in the protocol's shape; elsewhere (admin, analytics) FastAPI's own `detail`."""
    if not request.url.path.startswith(PROTOCOL_PATHS):
        return await http_exception_handler(request, exc)
    types = _HTTP_TYPES.get(exc.status_code, ("invalid_request_error", "invalid_request_error"))
    error = GatewayError(str(exc.detail), headers=dict(exc.headers or {}))
    error.status_code = exc.status_code
    error.type, error.anthropic_type = types
    return _render(request, error)


async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
    return _render(request, exc)


async def _auth_error(request: Request, exc: AuthError) -> JSONResponse:
    return _render(request, Unauthorized(str(exc)))


async def _permission_error(request: Request, exc: PermissionDenied) -> JSONResponse:
    return _render(request, Forbidden(str(exc)))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors()[:5]:
        if error.get("type") == "json_invalid":
            return _render(request, InvalidRequest("the request body is not valid JSON"))
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        problems.append(f"{location or 'body'}: {error.get('msg', 'invalid')}")
    return _render(request, InvalidRequest("invalid request: " + "; ".join(problems)))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _render(request, GatewayError("internal error (logged on the server)"))
