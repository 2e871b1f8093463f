"""Errors a caller can branch on, rendered in the caller's protocol.

Every failure the proxy knows about is a `GatewayError` subclass with an HTTP status and a
`type`; `openai_error_body` and `anthropic_error_body` render it. Nothing else reaches the
client: unexpected exceptions become a generic `internal_error` without a stack trace.
"""

from __future__ import annotations

import math
from typing import Any


class GatewayError(Exception):
    status_code = 500
    type = "internal_error"
    code: str | None = None
    #: Anthropic's name for the error where it differs from `type` (its SDKs map 404, 413,
    #: 529 to their own types)
    anthropic_type: str | None = None

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


class GuardrailBlocked(InvalidRequest):
    """A guardrail with action `block` found what it looks for in the request
    (router/guardrails.py); the message names the guardrail and the kind of match only."""

    code = "guardrail_blocked"


class NotFound(GatewayError):
    """An admin API's resource (a key, a budget, a webhook) that does not exist."""

    status_code = 404
    type = "not_found"


class Conflict(GatewayError):
    """An admin change that clashes with what exists: a taken id, a budget the file owns."""

    status_code = 409
    type = "conflict"


class ModelNotFound(GatewayError):
    status_code = 404
    type = "invalid_request_error"
    code = "model_not_found"
    anthropic_type = "not_found_error"


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


class RateLimited(GatewayError):
    """A key's requests or tokens a minute are spent (router/rate_limits.py): HTTP 429 until
    the window slides."""

    status_code = 429
    type = "rate_limit_exceeded"
    code = "rate_limit_exceeded"
    anthropic_type = "rate_limit_error"


class QuotaReached(GatewayError):
    """Every candidate model is at its provider quota (router/model_quotas.py): HTTP 429, as
    the provider itself would answer, with `retry-after` when the first of them has room."""

    status_code = 429
    type = "rate_limit_exceeded"
    code = "provider_quota_reached"
    anthropic_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.headers = {"retry-after": str(max(1, math.ceil(retry_after_s)))}


class UpstreamError(GatewayError):
    """Every provider attempt for the call failed."""

    status_code = 502
    type = "upstream_error"

    def __init__(self, message: str, *, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status


class UpstreamTimeout(UpstreamError):
    """The call's overall deadline ran out before any model answered."""

    status_code = 504
    type = "upstream_timeout"


class UpstreamUnavailable(UpstreamError):
    """Every candidate's circuit is open: answered at once instead of waiting on a model that
    keeps failing; `retry-after` says when a probe will be let through."""

    status_code = 503
    type = "upstream_unavailable"
    anthropic_type = "overloaded_error"

    def __init__(self, message: str, *, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.headers = {"retry-after": str(max(1, math.ceil(retry_after_s)))}


class PayloadTooLarge(GatewayError):
    status_code = 413
    type = "invalid_request_error"
    code = "request_too_large"
    anthropic_type = "request_too_large"


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
        "error": {
            "type": error.anthropic_type or error.type,
            "message": error.message,
            **error.details,
        },
    }
