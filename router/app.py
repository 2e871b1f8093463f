"""Mount the proxy on a FastAPI app: its endpoints and the error mapping of the HTTP API.

Every error leaves as JSON in the caller's protocol — OpenAI's `{"error": {...}}`, or
Anthropic's `{"type": "error", ...}` on `/v1/messages` — with a `type` a program can branch
on. Unexpected exceptions are logged here and answered with a generic 500, never a trace.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from router import anthropic_api, openai_api
from router.errors import (
    Forbidden,
    GatewayError,
    InvalidRequest,
    Unauthorized,
    anthropic_error_body,
    openai_error_body,
)
from tollway.auth import AuthError, PermissionDenied

log = logging.getLogger(__name__)


def install_proxy(app: FastAPI) -> None:
    """Add the OpenAI- and Anthropic-compatible endpoints; `app.state.gateway` must be set
    before serving."""
    app.include_router(openai_api.router)
    app.include_router(anthropic_api.router)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)  # type: ignore[arg-type]
    app.add_exception_handler(AuthError, _auth_error)  # type: ignore[arg-type]
    app.add_exception_handler(PermissionDenied, _permission_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


def _render(request: Request, error: GatewayError) -> JSONResponse:
    anthropic = request.url.path.startswith("/v1/messages")
    body = anthropic_error_body(error) if anthropic else openai_error_body(error)
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


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
