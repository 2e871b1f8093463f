"""Spools nobody writes any more: handed to a spool that will be replayed.

`tollway serve --role proxy --workers N` gives each worker process its own spool directory
(`<data dir>/proxy-worker-<i>/spool/…`), one process without `--workers` uses
`<data dir>/spool/…`. Restarted with fewer workers, or without `--workers`, the spools of the
processes that no longer exist would never be replayed. Before the workers start, `adopt` moves
their unacknowledged segments into the spools that will run, renumbered after their own, so
every event still reaches Kafka (and, at most once more than needed, the ledger: it
deduplicates). A spool still locked by a running process is left alone.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Sequence
from itertools import cycle
from pathlib import Path

from router.spool import segment_numbers

log = logging.getLogger(__name__)


def spool_dirs(data_dir: Path, topic: str) -> list[Path]:
    """Every spool of the calls topic under a data dir: the single process's and each worker's."""
    found = [data_dir / "spool" / topic]
    found += sorted(data_dir.glob(f"proxy-worker-*/spool/{topic}"))
    return [d for d in found if d.is_dir()]


def adopt(into: Sequence[Path], data_dir: Path, topic: str) -> int:
    """Move the segments of every other idle spool of `topic` into the spools `into` (round
    robin); returns how many segment files moved."""
    keep = {d.resolve() for d in into}
    orphans = [d for d in spool_dirs(data_dir, topic) if d.resolve() not in keep]
    moved = 0
    targets = cycle(into)
    for orphan in orphans:
        with (orphan / ".lock").open("ab") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("the spool %s is in use; not adopted", orphan)
                continue
            for _, segment in segment_numbers(orphan):
                target = next(targets)
                target.mkdir(parents=True, exist_ok=True)
                numbers = [n for n, _ in segment_numbers(target)]
                segment.rename(target / f"{max(numbers, default=0) + 1:012d}.ndjson")
                moved += 1
    if moved:
        log.warning("%d spool segments of stopped proxy processes will be replayed", moved)
    return moved
