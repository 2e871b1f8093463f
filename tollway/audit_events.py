"""An audit event: one change made through the admin API, one refused attempt at it, or one
reload of tollway.yaml (topic `tollway.audit.v1`, key = target, version 1; tollway/audit.py and
tollway/reload_audit.py publish them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import orjson
from pydantic import BaseModel, ConfigDict, Field

AuditAction = Literal[
    "key.create",
    "key.update",
    "key.rotate",
    "key.revoke",
    "budget.set",
    "budget.delete",
    "webhook.test",
    "admin.denied",
    "config.reload",
    "config.rejected",
]


class AuditEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    id: UUID = Field(default_factory=uuid4)
    ts: datetime = Field(default_factory=lambda: datetime.now(UTC))
    actor: str  # the id of the key that acted ("admin": the admin key; "tollway.yaml": a reload)
    actor_role: str
    action: AuditAction
    # a key, budget or webhook id; for `admin.denied`, the method and path; for `config.*`, the
    # file's path
    target: str
    details: dict[str, Any] = Field(default_factory=dict)
    client: str = ""  # the caller's address as the server saw it; for `config.*`, the process

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))
