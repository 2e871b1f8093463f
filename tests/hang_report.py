"""Where a hung test waits: its event loop's tasks, with their stacks.

pytest-timeout stops a test that runs too long and prints every thread's stack, but a test
stuck in asyncio shows only a loop idling in `select()`: the await that never returns is in a
task. So a test still running `MARGIN_S` before its timeout gets the stack of every pending
task of every running loop printed, one line each, to its captured stderr, which the failure
report shows.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

#: how long before pytest-timeout's limit the tasks are printed
MARGIN_S = 20.0


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    return [
        o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()
    ]


def print_pending_tasks(nodeid: str) -> None:
    """Every pending task of every running loop, with its stack (read from this thread while
    the loop's own thread waits; good enough to say where)."""
    out = sys.stderr
    print(f"\n+++ {nodeid} is about to time out; pending asyncio tasks: +++", file=out)
    for loop in _running_loops():
        for task in list(asyncio.all_tasks(loop)):
            frames = " <- ".join(
                f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}"
                f" {frame.f_code.co_name}"
                for frame in reversed(awaiting_frames(task))
            )
            print(f"- {task.get_name()}: {frames}", file=out)
    out.flush()


def awaiting_frames(task: asyncio.Task[object]) -> list[FrameType]:
    """The frames of a suspended task, outermost first, down to the await that has not
    returned. (`Task.get_stack` follows `f_back`, which a suspended coroutine does not have:
    it gives the task's own frame only, not what that frame awaits.)"""
    frames = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            frame = getattr(awaited, "ag_frame", None)
        if frame is not None:
            frames.append(frame)
        awaited = (
            getattr(awaited, "cr_await", None)
            or getattr(awaited, "gi_yieldfrom", None)
            or getattr(awaited, "ag_await", None)
        )
    return frames


def _timeout_s(item: pytest.Item) -> float | None:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    value = item.config.getini("timeout")
    return float(value) if value else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    timeout = _timeout_s(item)
    timer = None
    if timeout is not None and timeout > MARGIN_S:
        timer = threading.Timer(timeout - MARGIN_S, print_pending_tasks, args=(item.nodeid,))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
