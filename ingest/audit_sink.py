"""Audit events into the `audit_log` table, in batches; a redelivered event replaces itself
(ReplacingMergeTree on its time and id), so at-least-once delivery is enough."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from analytics.store.base import Store, datetime64_text
from ingest.messages import valid_messages
from tollway.audit_events import AuditEvent


async def write_audit(store: Store, values: Sequence[bytes | None]) -> int:
    rows = [
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
        for event in valid_messages(values, AuditEvent, "audit event")
    ]
    if rows:
        await store.insert_rows("audit_log", rows)
    return len(rows)
