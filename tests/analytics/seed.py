"""A small seeded ledger with known answers, and an app serving the analytics API over it."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from analytics.api import router
from analytics.store import Store
from tests.analytics.conftest import make_event
from tollway.auth import AuthError, KeyRegistry, PermissionDenied
from tollway.config.schema import KeyConfig, TollwayConfig
from tollway.events import CallEvent
from tollway.ids import hash_key

ADMIN_KEY = "tw-admin-test"
FINOPS_KEY = "tw-finops-test"
VIEWER_KEY = "tw-viewer-marketing"
DEV_KEY = "tw-dev-test"
SEED_START = datetime(2025, 3, 10, tzinfo=UTC)
SEED_END = datetime(2025, 3, 13, tzinfo=UTC)
COMBOS = [
    ("marketing", "campaigns", "chat", "k_mkt"),
    ("marketing", "seo", "summarize", "k_seo"),
    ("support", "helpdesk", "chat", "k_sup"),
]
MODELS = [("gpt-4o-mini", Decimal("0.001")), ("gpt-4o", Decimal("0.01"))]


def seeded_events() -> list[CallEvent]:
    """36 calls over 3 UTC days (09:xx and 15:xx), 3 attribution combos x 2 models; every
    5th call is an error costing nothing, every 6th came through the Anthropic endpoint, every
    7th had personal data redacted by the `pii` guardrail."""
    events = []
    i = 0
    for day in range(3):
        for hour in (9, 15):
            for business_line, project, task_type, key_id in COMBOS:
                for model, unit in MODELS:
                    i += 1
                    failed = i % 5 == 0
                    events.append(
                        make_event(
                            ts=SEED_START + timedelta(days=day, hours=hour, minutes=i),
                            business_line=business_line,
                            project=project,
                            task_type=task_type,
                            key_id=key_id,
                            model=model,
                            user=f"u{i % 3}",
                            endpoint="messages" if i % 6 == 0 else "chat.completions",
                            environment="staging" if i % 4 == 0 else "prod",
                            status="error" if failed else "ok",
                            cost_usd=Decimal(0) if failed else unit * (day + 1),
                            input_tokens=100 * (day + 1),
                            output_tokens=10 * i,
                            duration_ms=100 + 10 * i,
                            request_content=f"prompt {i}",
                            guardrails=["pii"] if i % 7 == 0 else [],
                            session_id=f"run-{day}-{i % 4}" if i % 3 else "",
                        )
                    )
    return events


def expected(
    events: Iterable[CallEvent],
    group_by: list[str],
    keep: Callable[[CallEvent], bool] = lambda e: True,
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The cost endpoint's metrics per group, computed in Python from the events."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(
        lambda: {
            "cost_usd": Decimal(0),
            "calls": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "errors": 0,
        }
    )
    for event in events:
        if not keep(event):
            continue
        group = groups[tuple(getattr(event, d) for d in group_by)]
        group["cost_usd"] += event.cost_usd
        group["calls"] += 1
        group["input_tokens"] += event.input_tokens
        group["output_tokens"] += event.output_tokens
        group["errors"] += event.status == "error"
    return dict(groups)


def analytics_app(store: Store, config: TollwayConfig | None = None) -> FastAPI:
    app = FastAPI()
    app.state.store = store
    app.state.config = config or TollwayConfig()
    app.state.keys = KeyRegistry(
        keys=[
            KeyConfig(id="k_finops", hash=hash_key(FINOPS_KEY), role="finops"),
            KeyConfig(id="k_dev", hash=hash_key(DEV_KEY), role="developer"),
            KeyConfig(
                id="k_viewer",
                hash=hash_key(VIEWER_KEY),
                role="viewer",
                business_line="marketing",
            ),
        ],
        admin_key=ADMIN_KEY,
    )

    @app.exception_handler(AuthError)
    async def _unauthorized(request: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse({"error": {"type": exc.code, "message": str(exc)}}, status_code=401)

    @app.exception_handler(PermissionDenied)
    async def _forbidden(request: Request, exc: PermissionDenied) -> JSONResponse:
        return JSONResponse({"error": {"type": exc.code, "message": str(exc)}}, status_code=403)

    app.include_router(router)
    return app


@contextlib.asynccontextmanager
async def finops_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of `app` in this process, sending the finops key."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://tollway.test",
        headers={"Authorization": f"Bearer {FINOPS_KEY}"},
    ) as client:
        yield client
