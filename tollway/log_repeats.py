"""Keep a broker outage from flooding the log.

While Kafka is unreachable, aiokafka (and Faust above it) log the same failure for every
connection attempt, metadata refresh and fetch — many lines a second per client, and a proxy has
several clients. `RepeatFilter` lets the first record of each kind through, holds back the
repeats for `interval_s`, and then lets one through again with how many were held back:

    WARNING aiokafka: Unable connect to node with id 0: [Errno 111] Connect call failed
    WARNING aiokafka: Unable connect to node with id 0: … (and 212 more like it in 30 s)

A record's kind is its logger, level and message template (`record.msg`, before the arguments
are merged), so the same failure against different nodes still counts as one kind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

#: the libraries whose retry loops repeat themselves during an outage
CHATTY = ("aiokafka", "faust", "mode")


class RepeatFilter(logging.Filter):
    def __init__(
        self,
        prefixes: Iterable[str] = CHATTY,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = tuple(prefixes)
        self.interval_s = interval_s
        self.clock = clock
        self._kinds: dict[tuple[str, int, str], tuple[float, int]] = {}  # → (shown at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        shown_at, held = self._kinds.get(kind, (float("-inf"), 0))
        if now - shown_at < self.interval_s:
            self._kinds[kind] = (shown_at, held + 1)
            return False
        if held:
            record.msg = f"{record.msg} (and {held} more like it in {self.interval_s:g} s)"
        self._kinds[kind] = (now, 0)
        if len(self._kinds) > 1_000:  # a message with changing text in its template: forget
            self._kinds.clear()
        return True


def install(interval_s: float = 30.0) -> RepeatFilter:
    """Hold back repeats on every handler of the root logger (call after configuring it)."""
    repeats = RepeatFilter(interval_s=interval_s)
    for handler in logging.getLogger().handlers:
        handler.addFilter(repeats)
    return repeats
