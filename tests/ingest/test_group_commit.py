"""`GroupCommit`: one write at a time, in order; what is gathered during a write goes into the
next one; a backlog lingers for larger writes, a trickle is written at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ingest.group_commit import GroupCommit


class Store:
    """Records each write (the batches it took); a write waits for `release` when `hold`."""

    def __init__(self, *, hold: bool = False) -> None:
        self.writes: list[list[str]] = []
        self.hold = hold
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.fail_next = False

    async def write(self, batches: Sequence[list[str]]) -> None:
        self.started.set()
        if self.hold:
            await self.release.wait()
            self.release.clear()
        if self.fail_next:
            raise RuntimeError("the store refused the write")
        self.writes.append([item for batch in batches for item in batch])


def committer(store: Store, max_events: int = 100, linger_s: float = 0.0) -> GroupCommit[list[str]]:
    return GroupCommit(store.write, size=len, max_events=max_events, linger_s=linger_s)


async def test_an_idle_store_writes_a_batch_at_once() -> None:
    store = Store()
    writer = committer(store, linger_s=10.0)
    await writer.put(["a", "b"])  # not `more_coming`: no lingering
    await asyncio.sleep(0)
    assert store.writes == [["a", "b"]]
    await writer.flush()


async def test_batches_gathered_during_a_write_go_into_the_next_one_in_order() -> None:
    store = Store(hold=True)
    writer = committer(store)
    await writer.put(["a"])
    await store.started.wait()
    for batch in (["b"], ["c", "d"], ["e"]):
        await writer.put(batch)  # returns at once: the store is busy
    assert store.writes == []
    store.release.set()  # the first write ends; the next takes everything gathered
    await asyncio.sleep(0.01)
    store.release.set()
    await writer.flush()
    assert store.writes == [["a"], ["b", "c", "d", "e"]]


async def test_a_backlog_lingers_until_the_largest_write_is_gathered() -> None:
    store = Store()
    writer = committer(store, max_events=6, linger_s=10.0)
    for batch in (["a", "b"], ["c", "d"]):
        await writer.put(batch, more_coming=True)
        await asyncio.sleep(0.01)
    assert store.writes == []  # lingering: more is coming
    await writer.put(["e", "f"], more_coming=True)  # six events: the write goes now
    await asyncio.sleep(0.01)
    assert store.writes == [["a", "b", "c", "d", "e", "f"]]
    await writer.flush()


async def test_lingering_ends_with_a_batch_that_is_not_full() -> None:
    store = Store()
    writer = committer(store, max_events=100, linger_s=10.0)
    await writer.put(["a", "b"], more_coming=True)
    await asyncio.sleep(0.01)
    await writer.put(["c"])  # the backlog is drained: no reason to wait
    await asyncio.sleep(0.01)
    assert store.writes == [["a", "b", "c"]]
    await writer.flush()


async def test_lingering_lasts_at_most_linger_s_from_the_first_batch() -> None:
    store = Store()
    writer = committer(store, max_events=100, linger_s=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await writer.put(["a"], more_coming=True)
    await asyncio.sleep(0.1)
    await writer.put(["b"], more_coming=True)  # does not restart the clock
    while not store.writes:
        await asyncio.sleep(0.01)
    assert store.writes == [["a", "b"]]
    assert 0.15 <= loop.time() - started < 0.35
    await writer.flush()


async def test_put_waits_while_the_largest_write_is_already_queued() -> None:
    store = Store(hold=True)
    writer = committer(store, max_events=4)
    await writer.put(["a"])
    await store.started.wait()
    await writer.put(["b", "c"])
    await writer.put(["d", "e"])  # four queued: the most one write takes
    blocked = asyncio.create_task(writer.put(["f"]))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # back-pressure on the gathering side
    store.release.set()  # the first write ends; the writer takes the queue; put goes on
    await asyncio.wait_for(blocked, 1.0)
    store.release.set()
    await asyncio.sleep(0.01)
    store.release.set()
    await writer.flush()
    assert store.writes == [["a"], ["b", "c", "d", "e"], ["f"]]
    assert max(len(w) for w in store.writes) <= 4


async def test_flush_writes_a_lingering_queue_at_once() -> None:
    store = Store()
    writer = committer(store, linger_s=10.0)
    await writer.put(["a"], more_coming=True)
    await asyncio.wait_for(writer.flush(), 1.0)
    assert store.writes == [["a"]]


async def test_a_failed_write_is_raised_and_nothing_after_it_is_written() -> None:
    store = Store(hold=True)
    writer = committer(store)
    await writer.put(["a"])
    await store.started.wait()
    await writer.put(["b"])
    store.fail_next = True
    store.release.set()
    await asyncio.sleep(0.01)
    with pytest.raises(RuntimeError, match="refused"):
        await writer.put(["c"])
    with pytest.raises(RuntimeError, match="refused"):
        await writer.flush()
    assert store.writes == []


async def test_cancel_drops_what_was_not_written() -> None:
    store = Store(hold=True)
    writer = committer(store)
    await writer.put(["a"])
    await store.started.wait()
    await writer.put(["b"])
    writer.cancel()
    await asyncio.sleep(0.01)
    assert store.writes == []
    assert not writer.writing


def test_decoded_batches_join_in_order_with_each_partitions_highest_offset() -> None:
    from datetime import UTC, datetime

    from ingest.ledger_sink import DecodedBatch, LedgerSink, RawMessage
    from tollway.events import CallEvent

    def message(partition: int, offset: int, value: bytes | None = None) -> RawMessage:
        event = CallEvent(ts=datetime.now(UTC), key_id=f"k{partition}-{offset}")
        return RawMessage(value or event.encode(), "calls", partition, offset)

    first = LedgerSink.decode([message(0, 7), message(1, 3), message(0, 8, b"not json")])
    second = LedgerSink.decode([message(1, 4), message(2, 0)])
    joined = DecodedBatch.joined([first, second])
    assert [e.key_id for e in joined.events] == ["k0-7", "k1-3", "k1-4", "k2-0"]
    assert joined.partitions == [0, 1, 1, 2]
    assert [m.offset for m, _ in joined.rejected] == [8]
    assert joined.through == {0: 8, 1: 4, 2: 0}
    assert DecodedBatch.joined([first]) is first


async def test_a_batch_that_does_not_fit_ends_the_lingering_at_once() -> None:
    store = Store()
    writer = committer(store, max_events=5, linger_s=10.0)
    await writer.put(["a", "b", "c"], more_coming=True)
    await asyncio.sleep(0.01)
    assert store.writes == []  # lingering for more
    await asyncio.wait_for(writer.put(["d", "e", "f"], more_coming=True), 1.0)
    await asyncio.sleep(0.01)
    assert store.writes == [["a", "b", "c"]]  # six would not fit: the three went alone
    await writer.flush()
    assert store.writes == [["a", "b", "c"], ["d", "e", "f"]]
