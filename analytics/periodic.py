"""A job the analytics role repeats for as long as it runs (routing statistics, spend anomaly
alerts): once at start, then every `interval_s`. A round that fails is logged and the next one
comes as planned: the store or the broker being away for a while must not end the job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def repeating(
    what: str,
    job: Callable[[], Awaitable[object]],
    interval_s: float,
    expected: tuple[type[Exception], ...] = (),
) -> AsyncIterator[None]:
    """Run `job` in the background until the block ends; `expected` failures are logged in a
    line, any other with its traceback."""

    async def loop() -> None:
        while True:
            try:
                await job()
            except expected as exc:
                log.warning("%s: not done this round: %s", what, exc)
            except Exception:  # the loop must outlive a broker or store hiccup
                log.exception("%s: not done this round", what)
            await asyncio.sleep(interval_s)

    task = asyncio.create_task(loop(), name=what)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
