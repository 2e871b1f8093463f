"""The worker's leaner Faust pieces, without a broker: a delivery that has to wait is resumed
where it stopped, and can still be abandoned (a rebalance) the way Faust abandons it; a
stream gives the loop a turn every hundredth event, and still sleeps when asked to."""

from __future__ import annotations

import asyncio

import faust._cython.streams as faust_c_streams  # type: ignore[import-not-found]
import pytest

from ingest.lean_faust import LeanApp, YieldSometimes
from tollway.eager import Resumed as _Resumed


async def test_a_resumed_delivery_finishes_with_its_result() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def delivery() -> int:
        steps.append("before")
        value = await gate
        await asyncio.sleep(0)  # a bare yield to the loop, too
        steps.append("after")
        return value * 2

    coro = delivery()
    waiting_on = coro.send(None)  # what LeanConsumer._deliver does first
    assert waiting_on is gate and steps == ["before"]
    task = asyncio.ensure_future(_Resumed(coro, waiting_on))
    await asyncio.sleep(0)
    assert not task.done()
    gate.set_result(21)
    assert await task == 42
    assert steps == ["before", "after"]


async def test_cancelling_a_resumed_delivery_cancels_the_delivery() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cleaned_up = asyncio.Event()

    async def delivery() -> None:
        try:
            await gate
        finally:
            cleaned_up.set()

    coro = delivery()
    task = asyncio.ensure_future(_Resumed(coro, coro.send(None)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned_up.is_set()
    assert gate.cancelled()  # the future it waited on is cancelled, as a task's would be


async def test_an_error_after_resuming_propagates() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def delivery() -> None:
        await gate
        raise ValueError("bad message")

    coro = delivery()
    task = asyncio.ensure_future(_Resumed(coro, coro.send(None)))
    gate.set_result(None)
    with pytest.raises(ValueError, match="bad message"):
        await task


async def test_a_stream_gives_the_loop_a_turn_every_hundredth_event() -> None:
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    sleep = YieldSometimes(every=100)
    before = turns
    for _ in range(1000):  # what the stream iterator awaits before each event
        await sleep(0)
    assert turns - before == 10
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await sleep(0.05, "value") == "value"  # a real delay is a real sleep
    assert loop.time() - started >= 0.05
    other.cancel()


def test_the_worker_app_installs_it_in_faust_streams() -> None:
    LeanApp("test-lean-faust", broker="kafka://127.0.0.1:9", store="memory://")
    assert isinstance(faust_c_streams.sleep, YieldSometimes)
