"""A real webhook receiver for the tests: a Starlette app that verifies Standard Webhooks
signatures with `standardwebhooks.Webhook(secret).verify(body, headers)` and answers with a
scripted sequence of statuses, so retries and dead letters are exercised over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tollway.server import serving

#: the variable the tests' webhooks in tollway.yaml read their signing secret from
SECRET_ENV = "TOLLWAY_TEST_WEBHOOK_SECRET"


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    payload: Any  # the verified, parsed JSON; None when the signature did not verify
    error: str = ""


class Receiver:
    """Records every request; replies from `script` in order, then with `default`."""

    def __init__(
        self, secret: str | bytes, script: list[Reply] | None = None, default: Reply | None = None
    ) -> None:
        self.webhook = Webhook(secret)
        self.script = list(script or [])
        self.default = default or Reply()
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.url = ""
        self.app = Starlette(routes=[Route("/hook", self._handle, methods=["POST"])])

    async def _handle(self, request: Request) -> Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.body()
            headers = dict(request.headers)
            try:
                payload = self.webhook.verify(body, headers)
                self.received.append(Received(headers, body, payload))
            except WebhookVerificationError as exc:
                self.received.append(Received(headers, body, None, str(exc)))
                return JSONResponse({"error": "bad signature"}, status_code=401)
            reply = self.script.pop(0) if self.script else self.default
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            return JSONResponse({"ok": reply.status < 300}, reply.status, headers=reply.headers)
        finally:
            self.in_flight -= 1

    @property
    def verified(self) -> list[Received]:
        return [r for r in self.received if r.payload is not None]

    async def wait_for(self, count: int, timeout_s: float = 60.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.received

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        async with serving(self.app) as base:  # type: ignore[arg-type]
            self.url = f"{base}/hook"
            yield self


@asynccontextmanager
async def signed_receiver(monkeypatch: Any) -> AsyncIterator[Receiver]:
    """A running receiver with a new secret, set in `SECRET_ENV` for the webhooks to sign with."""
    secret = new_secret()
    monkeypatch.setenv(SECRET_ENV, secret)
    async with Receiver(secret).running() as receiver:
        yield receiver
