"""`eagerly`: a coroutine's first step now, the rest (result, error, cancellation) as if it
had been awaited all along. `shielded`: a coroutine finished even when the task awaiting it
is cancelled, the cancellation raised afterwards."""

from __future__ import annotations

import asyncio

import pytest

from tollway.eager import eagerly, shielded


async def test_the_first_step_runs_at_once_and_the_rest_when_awaited() -> None:
    steps: list[str] = []
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def work() -> int:
        steps.append("first")
        value = await gate
        steps.append("rest")
        return value + 1

    rest = eagerly(work())
    assert steps == ["first"]
    task = asyncio.ensure_future(rest)
    await asyncio.sleep(0)
    assert not task.done()
    gate.set_result(41)
    assert await task == 42
    assert steps == ["first", "rest"]


async def test_a_coroutine_that_never_waits_is_done_in_its_first_step() -> None:
    steps: list[str] = []

    async def work() -> str:
        steps.append("all")
        return "done"

    rest = eagerly(work())
    assert steps == ["all"]
    assert await rest == "done"


async def test_errors_come_out_where_the_coroutine_is_awaited() -> None:
    async def fails_at_once() -> None:
        raise ValueError("first step")

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise ValueError("later")

    early = eagerly(fails_at_once())  # no error yet
    with pytest.raises(ValueError, match="first step"):
        await early
    with pytest.raises(ValueError, match="later"):
        await eagerly(fails_later())


async def test_cancelling_the_rest_cancels_the_coroutine() -> None:
    cleaned_up = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned_up.set()

    task = asyncio.ensure_future(eagerly(work()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned_up.is_set()


async def test_a_shielded_coroutine_finishes_through_a_cancellation() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def settle() -> str:
        steps.append("first")
        await gate
        steps.append("rest")
        return "settled"

    task = asyncio.ensure_future(shielded(settle()))
    await asyncio.sleep(0)
    assert steps == ["first"]
    task.cancel()
    await asyncio.sleep(0)
    assert not task.done()  # still waiting for settle, not cancelled half-way
    gate.set_result(None)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["first", "rest"]


async def test_shielded_runs_in_place_when_nothing_waits() -> None:
    tasks_before = len(asyncio.all_tasks())
    seen: list[int] = []

    async def settle() -> int:
        seen.append(len(asyncio.all_tasks()))
        return 7

    assert await shielded(settle()) == 7
    assert seen == [tasks_before]  # no task was made for it


async def test_a_shielded_coroutine_that_fails_raises_its_error() -> None:
    async def settle() -> None:
        await asyncio.sleep(0)
        raise ValueError("settling failed")

    with pytest.raises(ValueError, match="settling failed"):
        await shielded(settle())
