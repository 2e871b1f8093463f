"""Audit events into the `audit_log` table, in batches; a redelivered event replaces itself
(ReplacingMergeTree on its time and id), so at-least-once delivery is enough."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
from pydantic import ValidationError

from analytics.store.base import Store, datetime64_text
from tollway.audit import AuditEvent

log = logging.getLogger(__name__)


async def write_audit(store: Store, values: Sequence[bytes | None]) -> int:
    rows = []
    for value in values:
        try:
            event = AuditEvent.model_validate(orjson.loads(value or b"null"))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("skipping an invalid audit event: %s", exc)
            continue
        rows.append(
            {
                "id": str(event.id),
                "ts": datetime64_text(event.ts),
                "actor": event.actor,
                "actor_role": event.actor_role,
                "action": event.action,
                "target": event.target,
                "details": orjson.dumps(event.details).decode(),
                "client": event.client,
            }
        )
    if rows:
        await store.insert_rows("audit_log", rows)
    return len(rows)
