"""Identifiers: time-ordered event ids and virtual-key secrets."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from uuid import UUID

import uuid6

KEY_PREFIX = "tw-"


def new_event_id() -> UUID:
    """A UUIDv7: unique, and sortable by creation time (the ledger's idempotency key)."""
    return uuid6.uuid7()


def event_id_time(event_id: UUID) -> datetime:
    """The creation time encoded in the first 48 bits of a UUIDv7."""
    return datetime.fromtimestamp((event_id.int >> 80) / 1000, tz=UTC)


def new_key_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "k_" + secrets.token_hex(6)


def hash_key(secret: str) -> str:
    """The form in which a virtual key is stored: never the secret itself."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()
