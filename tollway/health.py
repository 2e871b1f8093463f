"""`/healthz` (the process is alive), `/readyz` (its broker and store answer, and a worker is
not too far behind the calls topic), `/metrics`.

The broker check keeps one admin client between probes (`BrokerProbe`): a Kubernetes probe
every few seconds then costs a metadata request on an open connection, not a new client with
its connection and version negotiation each time. A failed check drops the client, so a broker
that comes back is found by the next probe.

A worker's lag is part of readiness because a store outage does not stop the worker (it waits
it out, acknowledging nothing), so the lag is the one signal that the ledger — and with it
budget enforcement — is falling behind the proxies. It stays ready under a threshold
(`TOLLWAY_READY_MAX_LAG`): catching up after a restart is normal, and restarting a worker
because it has work to do would only make it worse.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


class BrokerProbe:
    """Whether the Kafka broker answers, on one admin client kept between checks."""

    def __init__(self, bootstrap: str, timeout_s: float = 2.0) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._client: AIOKafkaAdminClient | None = None
        self._lock = asyncio.Lock()

    async def reachable(self) -> bool:
        async with self._lock:  # probes in a row share the client, never race to make it
            try:
                async with asyncio.timeout(self.timeout_s):
                    if self._client is None:
                        timeout_ms = int(self.timeout_s * 1000)
                        client = AIOKafkaAdminClient(
                            bootstrap_servers=self.bootstrap, request_timeout_ms=timeout_ms
                        )
                        self._client = client
                        await client.start()
                    await self._client.list_topics()
                return True
            except (KafkaError, OSError, TimeoutError):
                await self.close()
                return False

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                async with asyncio.timeout(self.timeout_s):
                    await client.close()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    probe: BrokerProbe | None = getattr(request.app.state, "broker_probe", None)
    if probe is not None:
        checks["broker"] = "ok" if await probe.reachable() else "unreachable"
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
