"""`POST /v1/admin/webhooks/{id}/test`: send a signed `webhook.test` event now (role admin).

Served by the worker role, because the worker owns the endpoints' secrets and the Deliverer;
the test goes through exactly the code path of a real alert (signing, delivery, the
`webhook_deliveries` record), so a passing test means alerts will arrive. The answer is the
delivery outcome; a failed delivery is still HTTP 200 with `outcome: dead` and the reason,
because the request itself succeeded — the CLI turns that outcome into its exit code.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from ingest.webhooks.dispatcher import UnknownWebhook, WebhookDispatcher
from router.errors import NotFound
from tollway.audit import admin_only, audit
from tollway.auth import Principal

router = APIRouter(prefix="/v1/admin/webhooks", tags=["admin"])


@router.post("/{webhook}/test")
async def test_webhook(
    webhook: str,
    request: Request,
    attempts: int = Query(1, ge=1, le=50, description="Attempts before giving up."),
    admin: Principal = Depends(admin_only),
) -> dict[str, Any]:
    dispatcher: WebhookDispatcher | None = getattr(request.app.state, "webhook_dispatcher", None)
    if dispatcher is None:
        raise NotFound("no webhooks are configured (tollway.yaml `webhooks:`)")
    try:
        result = await dispatcher.send_test(webhook, attempts=attempts)
    except UnknownWebhook:
        known = ", ".join(sorted(dispatcher.endpoints)) or "none"
        raise NotFound(f"unknown webhook {webhook!r} (configured: {known})") from None
    outcome = result.to_json()
    await audit(request, admin, "webhook.test", webhook, {"outcome": outcome.get("outcome")})
    return outcome
