"""`/healthz` (the process is alive), `/readyz` (its broker and store answer), `/metrics`."""

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
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
