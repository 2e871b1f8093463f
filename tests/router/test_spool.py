"""The on-disk event spool on its own: rotation, replay in order, deletion only after every
record of a segment is acknowledged, a restart, a torn last line, and one writer per directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.spool import Spool, SpoolBusy


def _payload(i: int) -> bytes:
    return b'{"n": %d, "pad": "%s"}' % (i, b"x" * 40)


#: a segment holds three records: it is sealed once its size reaches this
THREE = 3 * (len(b'{"n": 0, "pad": "%s"}' % (b"x" * 40)) + 1)


def _numbers(records: list) -> list[int]:  # type: ignore[type-arg]
    return [int(r.payload.split(b",")[0].split(b":")[1]) for r in records]


def test_rotates_replays_in_order_and_deletes_only_acknowledged_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=THREE)
    for i in range(10):
        spool.append(_payload(i))
    assert len(spool.segment_paths()) == 4
    assert (spool.pending, spool.unread) == (10, 10)

    first = spool.read(4)  # the whole first segment and one record of the second
    assert _numbers(first) == [0, 1, 2, 3]
    assert (spool.pending, spool.unread) == (10, 6)
    spool.ack(first[1:])  # record 0 not yet acknowledged: its segment stays
    assert len(spool.segment_paths()) == 4
    spool.ack(first[:1])
    assert len(spool.segment_paths()) == 3  # segment 1 gone; segment 2 still owes 4 and 5
    assert spool.pending == 6

    rest = spool.read(100)
    assert _numbers(rest) == list(range(4, 10))
    assert spool.read(100) == []
    spool.ack(rest)
    assert spool.segment_paths() == [] and list(tmp_path.glob("*.ndjson")) == []
    assert (spool.pending, spool.unread) == (0, 0)
    spool.close()


def test_reads_what_is_appended_to_the_segment_being_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_payload(1))
    assert _numbers(spool.read(10)) == [1]
    spool.append(_payload(2))
    spool.append(_payload(3))
    records = spool.read(10)
    assert _numbers(records) == [2, 3]
    spool.ack(records)
    assert len(spool.segment_paths()) == 1  # record 1 still owed
    spool.close()


def test_a_restart_replays_what_was_not_acknowledged_and_appends_after_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=THREE)
    for i in range(7):
        spool.append(_payload(i))
    read = spool.read(5)
    spool.ack(read[:3])  # the first segment (0-2) is done; 3 and 4 were in flight
    spool.close()
    assert len(list(tmp_path.glob("*.ndjson"))) == 2

    again = Spool(tmp_path, segment_bytes=THREE)
    assert (again.pending, again.unread) == (4, 4)
    again.append(_payload(7))  # new events go to a new segment, after the old ones
    records = again.read(100)
    assert _numbers(records) == [3, 4, 5, 6, 7]
    again.ack(records)
    assert list(tmp_path.glob("*.ndjson")) == []
    again.close()


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_payload(1))
    spool.append(_payload(2))
    spool.close()
    (segment,) = tmp_path.glob("*.ndjson")
    with segment.open("ab") as out:
        out.write(b'{"n": 3, "pad": "xx')  # a crash in the middle of a write

    again = Spool(tmp_path)
    assert again.pending == 2
    records = again.read(10)
    assert _numbers(records) == [1, 2]
    again.ack(records)
    assert list(tmp_path.glob("*.ndjson")) == []
    again.close()


def test_a_segment_holding_only_a_torn_line_is_dropped_at_open(tmp_path: Path) -> None:
    (tmp_path / "000000000004.ndjson").write_bytes(b'{"n": 1')
    spool = Spool(tmp_path)
    assert spool.pending == 0 and spool.segment_paths() == []
    spool.append(_payload(9))
    assert spool.segment_paths()[0].name == "000000000005.ndjson"  # numbering goes on
    spool.close()


def test_one_writer_per_directory(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(SpoolBusy):
        Spool(tmp_path)
    spool.close()
    Spool(tmp_path).close()  # free again once closed


def test_append_after_close_reopens_and_keeps_the_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.close()
    spool.append(_payload(1))
    spool.close()
    again = Spool(tmp_path)
    assert _numbers(again.read(10)) == [1]
    again.close()


def test_records_cannot_contain_a_newline(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(ValueError):
        spool.append(b"two\nlines")
    spool.close()
