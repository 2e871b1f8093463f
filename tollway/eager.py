"""A coroutine's first step run at once, as Python 3.12's eager tasks do, on Python 3.11.

asyncio runs a new task's first step only in the next turn of the event loop, after every
callback already due. Where a burst of calls is served, work handed to a task that way waits
for all the others' handlers first. `eagerly` runs the first step now and returns a coroutine
that finishes the rest; most of the time there is no rest (nothing had to wait).

`shielded` awaits a coroutine to its end even if the awaiting task is cancelled meanwhile,
as an anyio cancel scope with `shield=True` does, but with no cancel scope to enter and leave
and, unless the coroutine has to wait, no task: the first step runs in place.

`Resumed` is the awaitable behind both, also used on its own: it awaits a coroutine that has
already run up to its first suspension.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


class Resumed(Awaitable[T]):
    """Await a coroutine that has already run up to its first suspension.

    `__await__` delegates exactly as `yield from` would: the future the coroutine is waiting
    on goes to the task running this awaitable, and what the task sends or throws back
    (a wake-up, a cancellation) goes on to the coroutine."""

    def __init__(self, coro: Coroutine[Any, Any, T], waiting_on: Any) -> None:
        self._coro = coro
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, T]:
        coro, waiting_on = self._coro, self._waiting_on
        while True:
            try:
                sent = yield waiting_on
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation: pass it on
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    waiting_on = coro.send(sent)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]


def eagerly(coro: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """Run `coro` up to its first suspension now; the coroutine returned finishes it (and
    returns its result, or raises its error, when awaited)."""
    try:
        waiting_on = coro.send(None)
    except StopIteration as done:
        return _returning(done.value)
    except BaseException as exc:
        return _raising(exc)
    return _finishing(Resumed(coro, waiting_on))


async def _returning(value: T) -> T:
    return value


async def _raising(exc: BaseException) -> Any:
    raise exc


async def _finishing(rest: Resumed[T]) -> T:
    return await rest


async def shielded(coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro` to its end, through cancellations of the awaiting task; a cancellation
    that came meanwhile is raised once `coro` is done."""
    try:
        waiting_on = coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    rest = asyncio.ensure_future(_finishing(Resumed(coro, waiting_on)))
    cancelled = False
    while not rest.done():
        try:
            await asyncio.shield(rest)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return rest.result()
