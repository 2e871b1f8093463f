"""Identifiers: time-ordered event ids and virtual-key secrets."""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
from datetime import UTC, datetime
from uuid import UUID

KEY_PREFIX = "tw-"


class _UUIDv7:
    """UUIDv7 (RFC 9562) with a 12-bit counter inside each millisecond (its "method 1"), so ids
    made in one millisecond stay ordered *and* keep that millisecond: a generator that bumps the
    timestamp instead runs ahead of the clock under load (20,000 ids, 20 s ahead).

    The random bits need to be unique, not secret: they come from `random` (seeded from the
    OS, re-seeded in a forked child), 15 times cheaper than `secrets`' system call per id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0

    def __call__(self) -> UUID:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._ms:
                self._ms, self._counter = ms, random.getrandbits(10)  # room to count up
            else:
                self._counter += 1
                if self._counter > 0xFFF:  # 3,000-odd ids in one millisecond: borrow the next
                    self._ms, self._counter = self._ms + 1, 0
            ms, counter = self._ms, self._counter
        value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | random.getrandbits(62)
        return UUID(int=value)


#: a UUIDv7: unique, and sortable by creation time (the ledger's idempotency key)
new_event_id = _UUIDv7()


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
