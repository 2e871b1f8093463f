"""Waiting for what other processes do (a replica learning a record, the worker writing a row)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any]], expected: Any, timeout_s: float = 15.0
) -> Any:
    """Await `check()` until it gives `expected` or `timeout_s` runs out; its last value either
    way, for the caller to assert on (so a failure shows what was seen instead)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value == expected or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)
