"""Waiting for what other processes do (a replica learning a record, the worker writing a row),
and the probe most such waits repeat: one chat call's status."""

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


async def chat_status(
    base_url: str, secret: str, model: str = "gpt-4o-mini", **request: Any
) -> int:
    """The HTTP status of one chat call with the OpenAI SDK (200 when it was answered) — what a
    replica's keys, budgets and rate limits make of `secret` right now."""
    import openai

    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=secret, max_retries=0)
    messages = request.pop("messages", [{"role": "user", "content": "Say hello."}])
    try:
        await client.chat.completions.create(model=model, messages=messages, **request)
        return 200
    except openai.APIStatusError as exc:
        return exc.status_code
