"""The audit trail: who changed what in tollway's governance, and who tried to without the role
(`AuditEvent`s in tollway/audit_events.py, on `tollway.audit.v1`).

Every change through the admin API — a key created, limited, rotated or revoked, a budget set or
deleted, a webhook test sent — is one `AuditEvent`, published after the change took effect; so
is every refusal of a valid non-admin key at an admin endpoint, and every reload of tollway.yaml
(or a changed file refused as invalid) by each process that applies it (tollway/reload_audit.py). The worker writes them to the
`audit_log` table exactly once (tests/test_audit.py), where `GET /v1/analytics/audit`,
`tollway audit` and SQL read them. Details name what changed, never a secret or a key's hash.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import Request

from tollway.audit_events import AuditAction, AuditEvent
from tollway.auth import PermissionDenied, Principal, principal_of, require_role


class AuditLog:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def record(
        self,
        request: Request,
        principal: Principal,
        action: AuditAction,
        target: str,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        event = AuditEvent(
            actor=principal.key_id,
            actor_role=principal.role,
            action=action,
            target=target,
            details=details or {},
            client=request.client.host if request.client else "",
        )
        return await self.publish(event)

    async def publish(self, event: AuditEvent) -> AuditEvent:
        await self.producer.send_and_wait(self.topic, event.encode(), key=event.target.encode())
        return event


async def audit(
    request: Request,
    principal: Principal,
    action: AuditAction,
    target: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Record one audit event through the app's `AuditLog` (none in an app without a broker)."""
    trail: AuditLog | None = getattr(request.app.state, "audit", None)
    if trail is not None:
        await trail.record(request, principal, action, target, details)


_admin_role = require_role("admin")


async def admin_only(request: Request) -> Principal:
    """FastAPI dependency of every admin endpoint: the admin role, or a 403 that is audited
    (`admin.denied`) when a valid key of another role tried."""
    try:
        return await _admin_role(request)
    except PermissionDenied:
        principal = principal_of(request)
        await audit(request, principal, "admin.denied", f"{request.method} {request.url.path}")
        raise
