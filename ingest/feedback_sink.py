"""Feedback into the `feedback` table, in batches; a redelivered score replaces itself
(ReplacingMergeTree by `ts` on event id and key), so at-least-once delivery is enough."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
from pydantic import ValidationError

from analytics.store.base import Store, datetime64_text
from tollway.feedback import Feedback

log = logging.getLogger(__name__)


async def write_feedback(store: Store, values: Sequence[bytes | None]) -> int:
    rows = []
    for value in values:
        try:
            feedback = Feedback.model_validate(orjson.loads(value or b"null"))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("skipping invalid feedback: %s", exc)
            continue
        rows.append(
            {
                "event_id": str(feedback.event_id),
                "score": feedback.score,
                "label": feedback.label,
                "comment": feedback.comment,
                "ts": datetime64_text(feedback.ts),
                "key_id": feedback.key_id,
                "user": feedback.user,
            }
        )
    if rows:
        await store.insert_rows("feedback", rows)
    return len(rows)
