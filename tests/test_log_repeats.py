"""A broker outage's repeated client errors are held back, and counted when shown again."""

from __future__ import annotations

import logging

from tollway.log_repeats import RepeatFilter


def _record(name: str, msg: str, *args: object, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_are_held_back_then_shown_once_with_their_count() -> None:
    now = [0.0]
    repeats = RepeatFilter(interval_s=30, clock=lambda: now[0])
    unreachable = "Unable connect to node with id %s: %s"

    shown = []
    for second in range(90):  # three failures a second for 90 s, against two nodes
        now[0] = float(second)
        for node in (0, 1, 0):
            record = _record("aiokafka.conn", unreachable, node, "Connect call failed")
            if repeats.filter(record):
                shown.append((second, record.getMessage()))

    assert [second for second, _ in shown] == [0, 30, 60]
    assert shown[0][1] == "Unable connect to node with id 0: Connect call failed"
    assert shown[1][1].endswith("(and 89 more like it in 30 s)")


def test_other_kinds_and_other_libraries_pass() -> None:
    repeats = RepeatFilter(interval_s=30, clock=lambda: 0.0)
    assert repeats.filter(_record("aiokafka", "a %s", 1))
    assert repeats.filter(_record("aiokafka", "a %s", 1, level=logging.ERROR))  # another level
    assert repeats.filter(_record("faust.transport", "b"))  # another template
    assert not repeats.filter(_record("aiokafka", "a %s", 2))
    for _ in range(3):  # tollway's own messages are never held back
        assert repeats.filter(_record("router.events", "spooling %d events", 7))
