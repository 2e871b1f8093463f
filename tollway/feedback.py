"""Quality feedback on one call (topic `tollway.feedback.v1`, key = event id, version 1).

The caller that made a call (or a reviewer with the event id from `x-tollway-event-id`) scores
it between 0 and 1; the worker writes scores to the `feedback` table, where routing statistics
join them to the ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field


class FeedbackIn(BaseModel):
    """The body of `POST /v1/feedback`."""

    model_config = ConfigDict(extra="forbid")

    event_id: UUID
    score: float = Field(ge=0, le=1)
    label: str = Field(default="", max_length=64)
    comment: str = Field(default="", max_length=2000)


class Feedback(FeedbackIn):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    ts: datetime = Field(default_factory=lambda: datetime.now(UTC))
    key_id: str = ""
    user: str = ""

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))
