"""A virtual key as the admin and analytics APIs show it: metadata and state, never a hash or a
secret."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from tollway.config.schema import KeyConfig, RateLimits

KeyState = Literal["active", "expired", "revoked"]


class KeyView(BaseModel):
    id: str
    name: str
    business_line: str
    project: str
    task_type: str
    environment: str
    role: str
    tags: dict[str, str]
    allowed_models: list[str]
    header_overrides: list[str]
    limits: RateLimits | None
    log_content: bool | None = Field(
        description="Content logging for the key's calls; null: as the logging policy says."
    )
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    previous_valid_until: datetime | None = Field(
        description="Until when the secret the last rotation replaced still works."
    )
    state: KeyState

    @classmethod
    def of(cls, key: KeyConfig) -> KeyView:
        now = datetime.now(UTC)
        state: KeyState = "active"
        if key.revoked_at is not None and key.revoked_at <= now:
            state = "revoked"
        elif not key.active_at(now):
            state = "expired"
        return cls(**key.model_dump(exclude={"hash", "previous_hash"}), state=state)
