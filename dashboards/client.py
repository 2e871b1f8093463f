"""The dashboard's only door to tollway: the analytics HTTP API, read with httpx.

The Streamlit app never opens the store itself (a chDB directory belongs to the one `tollway up`
process), so every number on a page comes through here. Answers are cached for a short TTL:
pages rerun on every click, and the ledger changes by the second, so a few seconds of staleness
buys snappy drill-downs without hiding new spend for long. Failures are raised as typed
exceptions (never cached) so a page can explain them instead of showing a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import streamlit as st

from dashboards.models import (
    Budget,
    Call,
    CostReport,
    Recommendation,
    RoutingStat,
    Timeseries,
)

CACHE_TTL_S = 15
TIMEOUT_S = 30.0

Params = tuple[tuple[str, str], ...]


class DashboardError(Exception):
    """Anything that stops a page from getting its data."""


class ApiUnreachable(DashboardError):
    """No answer from the analytics API (not running, wrong URL, network)."""

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"cannot reach the tollway API at {base_url}: {reason}")
        self.base_url = base_url
        self.reason = reason


class ApiError(DashboardError):
    """The API answered with an error body."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(f"HTTP {status} {kind}: {message}")
        self.status = status
        self.kind = kind
        self.message = message


class AccessDenied(ApiError):
    """401/403: a wrong key, or a role that may not see this (e.g. a viewer on /calls)."""


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        error = response.json().get("error", {})
        kind, message = str(error.get("type", "error")), str(error.get("message", response.text))
    except (ValueError, AttributeError):
        kind, message = "error", response.text.strip()[:300]
    cls = AccessDenied if response.status_code in (401, 403) else ApiError
    raise cls(response.status_code, kind, message)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=512)
def _fetch(
    base_url: str, key: str, method: str, path: str, params: Params, body: str | None
) -> Any:
    """One API request; cached by every argument, so each key and each URL has its own entries."""
    try:
        response = httpx.request(
            method,
            f"{base_url}{path}",
            params=list(params),
            content=body,
            headers={
                "Authorization": f"Bearer {key}",
                **({"Content-Type": "application/json"} if body else {}),
            },
            timeout=TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise ApiUnreachable(
            base_url, type(exc).__name__ + (f": {exc}" if str(exc) else "")
        ) from None
    _raise_for(response)
    return response.json()


def _params(
    start: date | None = None,
    end: date | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
    **extra: Any,
) -> Params:
    items: list[tuple[str, str]] = []
    if start is not None:
        items.append(("start", start.isoformat()))
    if end is not None:
        items.append(("end", end.isoformat()))
    for name, value in extra.items():
        if value is not None and value != "":
            items.append((name, str(value)))
    for name, values in sorted((filters or {}).items()):
        items.extend((name, v) for v in values)
    return tuple(items)


@dataclass(frozen=True)
class AnalyticsClient:
    """Typed calls to `/v1/analytics/*` for one base URL and key."""

    base_url: str
    key: str

    def get(self, path: str, params: Params = ()) -> Any:
        return _fetch(self.base_url.rstrip("/"), self.key, "GET", path, params, None)

    def cost(
        self,
        start: date,
        end: date,
        group_by: Sequence[str] = (),
        filters: Mapping[str, Sequence[str]] | None = None,
        top: int = 1000,
    ) -> CostReport:
        params = _params(start, end, filters, group_by=",".join(group_by), top=top)
        return CostReport.parse(self.get("/v1/analytics/cost", params))

    def timeseries(
        self,
        start: date,
        end: date,
        group_by: Sequence[str] = (),
        filters: Mapping[str, Sequence[str]] | None = None,
        granularity: str = "day",
    ) -> Timeseries:
        params = _params(start, end, filters, group_by=",".join(group_by), granularity=granularity)
        return Timeseries.parse(self.get("/v1/analytics/timeseries", params))

    def budgets(self) -> list[Budget]:
        body = self.get("/v1/analytics/budgets")
        return [Budget.model_validate(b) for b in body.get("budgets", [])]

    def calls(
        self,
        start: date,
        end: date,
        filters: Mapping[str, Sequence[str]] | None = None,
        limit: int = 200,
    ) -> list[Call]:
        body = self.get("/v1/analytics/calls", _params(start, end, filters, limit=limit))
        return [Call.model_validate(c) for c in body.get("calls", [])]

    def routing_stats(self, days: int = 7) -> list[RoutingStat]:
        body = self.get("/v1/analytics/routing/stats", _params(days=days))
        return [RoutingStat.model_validate(r) for r in body.get("stats", [])]

    def recommendations(self, days: int = 30) -> list[Recommendation]:
        body = self.get("/v1/analytics/routing/recommendations", _params(days=days))
        return [Recommendation.model_validate(r) for r in body.get("recommendations", [])]

    def sql(self, query: str) -> list[dict[str, Any]]:
        """Read-only SQL (finops/admin) for the few numbers no summary endpoint gives."""
        import json

        body = _fetch(
            self.base_url.rstrip("/"),
            self.key,
            "POST",
            "/v1/analytics/sql",
            (),
            json.dumps({"query": query}),
        )
        return list(body.get("data", []))


def clear_cache() -> None:
    """Forget every cached answer (the Refresh button, and after signing in again)."""
    _fetch.clear()
