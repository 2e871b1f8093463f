"""Errors a caller can branch on, rendered in the caller's protocol.

Every failure the proxy knows about is a `GatewayError` subclass with an HTTP status and a
`type`; `openai_error_body` and `anthropic_error_body` render it. Nothing else reaches the
client: unexpected exceptions become a generic `internal_error` without a stack trace.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status_code = 500
    type = "internal_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.details = details or {}  # machine-readable facts, merged into the error object


class InvalidRequest(GatewayError):
    status_code = 400
    type = "invalid_request_error"


class ModelNotFound(GatewayError):
    status_code = 404
    type = "invalid_request_error"
    code = "model_not_found"


class Unauthorized(GatewayError):
    status_code = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status_code = 403
    type = "permission_error"
    code = "permission_denied"


class BudgetExceeded(GatewayError):
    """A blocking budget is spent (or fully reserved): HTTP 429 until its period ends."""

    status_code = 429
    type = "budget_exceeded"
    code = "budget_exceeded"


class UpstreamError(GatewayError):
    """Every provider attempt for the call failed."""

    status_code = 502
    type = "upstream_error"

    def __init__(self, message: str, *, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status


class UpstreamTimeout(UpstreamError):
    status_code = 504
    type = "upstream_timeout"


def openai_error_body(error: GatewayError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": error.type,
            "param": None,
            "code": error.code or error.type,
            **error.details,
        }
    }


def anthropic_error_body(error: GatewayError) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error.type, "message": error.message, **error.details},
    }
