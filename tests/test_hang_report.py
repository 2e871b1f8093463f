"""The hang report names the await a stuck task waits in, not just the task's own function."""

from __future__ import annotations

import asyncio

from tests.hang_report import awaiting_frames


async def _waits_for(event: asyncio.Event) -> None:
    await event.wait()


async def _calls_a_helper(event: asyncio.Event) -> None:
    await _waits_for(event)


async def test_a_suspended_tasks_frames_reach_the_await_that_has_not_returned() -> None:
    event = asyncio.Event()
    task = asyncio.create_task(_calls_a_helper(event))
    await asyncio.sleep(0)
    names = [frame.f_code.co_name for frame in awaiting_frames(task)]
    event.set()
    await task
    assert names == ["_calls_a_helper", "_waits_for", "wait"]
