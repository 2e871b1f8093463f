"""What every analytics GET endpoint shares: parameter errors become 400, store trouble 503.

Endpoints raise `InvalidParameter` while reading their query string; `answer` turns that into the
API's error body. A `QueryError` here means tollway built SQL that ClickHouse refused — a bug, not
the caller's fault — so it is logged and answered as 500 without ClickHouse's text.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from analytics.params import InvalidParameter
from analytics.responses import error_response
from analytics.store.base import QueryError, QueryResult, Store, StoreError

log = logging.getLogger(__name__)

MAX_GROUPS = 100_000
TIMEOUT_S = 30.0


async def answer(request: Request, build: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await build()
    except InvalidParameter as exc:
        return error_response(400, "invalid_request", str(exc))
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
    except QueryError as exc:
        log.error("analytics query failed on %s: %s", request.url.path, exc.message)
        return error_response(500, "internal_error", "the analytics query failed (logged)")


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def run(store: Store, sql: str) -> QueryResult:
    return await store.query(sql, readonly=True, max_rows=MAX_GROUPS, timeout_s=TIMEOUT_S)


def iso(value: datetime | str) -> str:
    """UTC ISO 8601 with `Z`, from a datetime or ClickHouse's `YYYY-MM-DD[ hh:mm:ss[.fff]]`."""
    if isinstance(value, str):
        text = value if len(value) > 10 else f"{value} 00:00:00"
        value = datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


def number(value: Any) -> float | None:
    """A float for JSON, or None for NULL / NaN (t-digests of nothing are NaN)."""
    if value is None:
        return None
    result = float(value)
    return None if math.isnan(result) or math.isinf(result) else result
