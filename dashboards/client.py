"""The dashboard's only door to tollway: the analytics HTTP API, read with httpx.

The Streamlit app never opens the store itself (a chDB directory belongs to the one `tollway up`
process), so every number on a page comes through here. Answers are cached for a short TTL:
pages rerun on every click, and the ledger changes by the second, so a few seconds of staleness
buys snappy drill-downs without hiding new spend for long. Failures are raised as typed
exceptions (never cached) so a page can explain them instead of showing a traceback.

The cache belongs to the dashboard process, shared by every session. With
`TOLLWAY_DASHBOARD_KEEP_WARM_S` set (`dashboards.launch` sets 300 unless told otherwise), a
background thread refetches every answer asked for within that many seconds shortly before it
expires, so whoever opens a recently seen view next finds its numbers fresh (never older than
the TTL) without waiting for the API; a view nobody opened for that long is fetched on the visit.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from dashboards.models import (
    Alert,
    Anomaly,
    AuditEntry,
    Budget,
    Call,
    CostReport,
    KeyEntry,
    Recommendation,
    RoutingStat,
    Session,
    SessionSummary,
    Timeseries,
)

CACHE_TTL_S = 15
#: answers that change slowly keep longer: routing statistics and recommendations are computed
#: over 7 to 90 days (a minute more or less does not move them) and cost the API the most (about
#: 0.5 s each at 100M calls), so the warmer refreshes them every 55 s, not every 10 s
LONGER_TTL_S = {"/v1/analytics/routing/": 60.0}
MAX_ENTRIES = 512
TIMEOUT_S = 30.0
KEEP_WARM_ENV = "TOLLWAY_DASHBOARD_KEEP_WARM_S"
#: the warmer refetches an answer this long before it expires (a refresh round must fit in it)
REFRESH_LEAD_S = 5.0

log = logging.getLogger(__name__)

Params = tuple[tuple[str, str], ...]
#: base URL, key, method, path, query parameters, JSON body: everything an answer depends on
Request = tuple[str, str, str, str, Params, str | None]


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


_http: httpx.Client | None = None
_http_lock = threading.Lock()


def _client() -> httpx.Client:
    """The process's one HTTP client, made on first use: its connections are kept open between
    requests, and its TLS context is built once (`httpx.request` builds a new client per call,
    which loads the CA bundle every time: 20-50 ms of CPU, holding the GIL, per API request)."""
    global _http
    with _http_lock:
        if _http is None:
            _http = httpx.Client(timeout=TIMEOUT_S)
        return _http


def _request(
    base_url: str, key: str, method: str, path: str, params: Params, body: str | None
) -> Any:
    """One API request, uncached."""
    try:
        response = _client().request(
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


@dataclass
class _Entry:
    fetched: float  # when its request was sent (monotonic)
    used: float  # when a page last asked for it
    answer: Any


class AnswerCache:
    """API answers by request, each fresh for `ttl_s` after its request was sent (or for the
    `longer_ttl_s` of the longest path prefix its path starts with); errors are never kept.
    With `keep_warm_s`, `refresh_due` (run by a daemon thread started on the first
    fetch) refetches the answers asked for in the last `keep_warm_s` that expire within
    `lead_s`. Answers are shared, not copied: callers only read them."""

    def __init__(
        self,
        ttl_s: float = CACHE_TTL_S,
        max_entries: int = MAX_ENTRIES,
        longer_ttl_s: Mapping[str, float] | None = None,
        keep_warm_s: float = 0.0,
        lead_s: float = REFRESH_LEAD_S,
        fetch: Callable[..., Any] = _request,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s, self.max_entries, self.lead_s = ttl_s, max_entries, lead_s
        self.keep_warm_s = keep_warm_s
        self.longer_ttl_s = dict(longer_ttl_s or {})
        self._fetch, self._clock = fetch, clock
        self._entries: dict[Request, _Entry] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by clear(): a refresh in flight must not bring back old keys
        self._warmer: threading.Thread | None = None

    def ttl(self, request: Request) -> float:
        """How long the answer to `request` stays fresh."""
        path = request[3]
        prefixes = [p for p in self.longer_ttl_s if path.startswith(p)]
        return self.longer_ttl_s[max(prefixes, key=len)] if prefixes else self.ttl_s

    def get(self, request: Request) -> Any:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(request)
            if entry is not None and now - entry.fetched < self.ttl(request):
                entry.used = now
                return entry.answer
            generation = self._generation
        answer = self._fetch(*request)
        self._keep(request, answer, now, generation, used=now)
        if self.keep_warm_s > 0 and self._warmer is None:
            self._start_warmer()
        return answer

    def refresh_due(self) -> int:
        """Refetch the recently used answers about to expire; returns how many were due. A
        failed refetch drops the answer, so the next visit shows the error."""
        now = self._clock()
        with self._lock:
            due = [
                request
                for request, entry in self._entries.items()
                if now - entry.used < self.keep_warm_s
                and now - entry.fetched >= self.ttl(request) - self.lead_s
            ]
            generation = self._generation
        for request in due:
            sent = self._clock()
            try:
                answer = self._fetch(*request)
            except DashboardError:
                with self._lock:
                    self._entries.pop(request, None)
                continue
            self._keep(request, answer, sent, generation)
        return len(due)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def _keep(
        self, request: Request, answer: Any, sent: float, generation: int, used: float | None = None
    ) -> None:
        with self._lock:
            if generation != self._generation:
                return
            old = self._entries.get(request)
            last_used = used if used is not None else (old.used if old else sent)
            self._entries[request] = _Entry(sent, last_used, answer)
            while len(self._entries) > self.max_entries:  # the longest unused goes first
                del self._entries[min(self._entries, key=lambda r: self._entries[r].used)]

    def _start_warmer(self) -> None:
        with self._lock:
            if self._warmer is not None:
                return
            self._warmer = threading.Thread(target=self._warm, name="answer-warmer", daemon=True)
        self._warmer.start()

    def _warm(self) -> None:
        while True:
            time.sleep(0.5)
            try:
                self.refresh_due()
            except Exception:  # the thread must outlive anything a refresh raises
                log.exception("refreshing cached API answers failed")


def _keep_warm_s() -> float:
    try:
        return max(0.0, float(os.environ.get(KEEP_WARM_ENV) or 0))
    except ValueError:
        return 0.0


#: the dashboard process's answers, shared by every session
CACHE = AnswerCache(keep_warm_s=_keep_warm_s(), longer_ttl_s=LONGER_TTL_S)


def _fetch(
    base_url: str, key: str, method: str, path: str, params: Params, body: str | None
) -> Any:
    """One API request through the cache, keyed by every argument (each key and URL apart)."""
    return CACHE.get((base_url, key, method, path, params, body))


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

    def alerts(self, limit: int = 10) -> list[Alert]:
        """The alerts of the last 7 days, newest first (finops and admin keys)."""
        body = self.get("/v1/analytics/alerts", (("limit", str(limit)),))
        return [Alert.model_validate(a) for a in body.get("alerts", [])]

    def anomalies(self, start: date, end: date) -> list[Anomaly]:
        """Days in [start, end) when a project spent far above its 14 days before (3 standard deviations)."""
        params = _params(start, end, None, group_by="project", granularity="day")
        body = self.get("/v1/analytics/anomalies", params)
        return [Anomaly.model_validate(a) for a in body.get("anomalies", [])]

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

    def sessions(
        self, start: date, end: date, limit: int = 20
    ) -> tuple[SessionSummary, list[Session]]:
        """How sessions' costs spread, and the costliest `limit` of them."""
        body = self.get("/v1/analytics/sessions", _params(start, end, limit=limit))
        sessions = [Session.model_validate(s) for s in body.get("sessions", [])]
        return SessionSummary.model_validate(body.get("summary") or {}), sessions

    def audit(self, actions: Sequence[str] = (), limit: int = 200) -> list[AuditEntry]:
        """The audit trail, newest first (admin keys only)."""
        params = (("limit", str(limit)), *(("action", a) for a in actions))
        body = self.get("/v1/analytics/audit", params)
        return [AuditEntry.model_validate(e) for e in body.get("entries", [])]

    def keys(self, days: int = 30) -> list[KeyEntry]:
        """Every virtual key with its spend, calls and last use over `days` (admin keys only)."""
        body = self.get("/v1/analytics/keys", (("days", str(days)),))
        return [KeyEntry.model_validate(k) for k in body.get("keys", [])]

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
    CACHE.clear()
