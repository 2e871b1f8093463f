"""Feedback into the `feedback` table, in batches; a redelivered score replaces itself
(ReplacingMergeTree by `ts` on event id and key), so at-least-once delivery is enough."""

from __future__ import annotations

from collections.abc import Sequence

from analytics.store.base import Store, datetime64_text
from ingest.messages import valid_messages
from tollway.feedback import Feedback


async def write_feedback(store: Store, values: Sequence[bytes | None]) -> int:
    rows = [
        {
            "event_id": str(feedback.event_id),
            "score": feedback.score,
            "label": feedback.label,
            "comment": feedback.comment,
            "ts": datetime64_text(feedback.ts),
            "key_id": feedback.key_id,
            "user": feedback.user,
        }
        for feedback in valid_messages(values, Feedback, "feedback")
    ]
    if rows:
        await store.insert_rows("feedback", rows)
    return len(rows)
