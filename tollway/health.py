"""`/healthz` (the process is alive), `/readyz` (its broker and store answer, and a worker is
not too far behind the calls topic), `/metrics`.

A worker's lag is part of readiness because a store outage does not stop the worker (it waits
it out, acknowledging nothing), so the lag is the one signal that the ledger — and with it
budget enforcement — is falling behind the proxies. It stays ready under a threshold
(`TOLLWAY_READY_MAX_LAG`): catching up after a restart is normal, and restarting a worker
because it has work to do would only make it worse.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tollway.kafka import KafkaUnavailable, wait_for_kafka

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    bootstrap: str | None = getattr(request.app.state, "bootstrap", None)
    if bootstrap:
        try:
            await wait_for_kafka(bootstrap, timeout_s=2.0)
            checks["broker"] = "ok"
        except KafkaUnavailable:
            checks["broker"] = "unreachable"
    store = getattr(request.app.state, "store", None)
    if store is not None:
        try:
            checks["store"] = "ok" if await asyncio.wait_for(store.ping(), 2.0) else "unreachable"
        except (TimeoutError, OSError):
            checks["store"] = "unreachable"
    body: dict[str, object] = {}
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        max_lag: int = worker.settings.ready_max_lag
        try:
            lag = await asyncio.wait_for(worker.lag(), 3.0)
            checks["lag"] = "ok" if lag <= max_lag else "behind"
            body["lag"] = {"messages": lag, "max": max_lag}
        except Exception:  # any failure to measure is "unknown", never a 500
            checks["lag"] = "unknown"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks, **body},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
