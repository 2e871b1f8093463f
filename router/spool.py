"""An append-only on-disk spool: where call events wait while Kafka cannot take them.

The spool is a directory of numbered segment files, each holding newline-delimited payloads
(encoded CallEvents). Appends go to the newest segment and are flushed to the kernel at once, so
a crashed or killed proxy loses nothing it spooled; a segment is fsynced when it is sealed
(rotated out or closed), so a graceful stop survives a power cut as well. The replay side reads
the segments in order and hands out records; a segment is deleted only once every record in it
has been acknowledged by the caller (by Kafka, for the publisher). An event may therefore be
replayed twice — after a crash between the broker's acknowledgement and the deletion — which is
fine: the ledger keeps one row per `event_id`. It is never dropped.

Segments left by a previous run are found when the spool opens and replayed first. A last line
without its newline (a write torn by a crash) cannot be a whole payload and is skipped. A lock
file keeps two processes from writing the same directory. Records Kafka will never take (too
large for the broker) are parked in `rejected.ndjson` beside the segments: kept, never replayed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

#: rotate to a new segment once the current one holds this many bytes
SEGMENT_BYTES = 4 * 1024 * 1024

_SEGMENT_NAME = re.compile(r"^(\d{12})\.ndjson$")
REJECTED = "rejected.ndjson"


class SpoolBusy(RuntimeError):
    """Another process (or another spool object) already writes this directory."""


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    """One payload read back from the spool; hand it to `Spool.ack` once it is safe elsewhere."""

    segment: int
    payload: bytes


@dataclass(slots=True)
class _Segment:
    seq: int
    path: Path
    lines: int = 0  # complete (newline-terminated) records in the file
    read: int = 0  # records handed out by `read`
    acked: int = 0
    offset: int = 0  # byte position of the next record to read
    sealed: bool = False  # no more appends: rotated out, or left by a previous run


class Spool:
    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._segments: dict[int, _Segment] = {}  # by seq, oldest first
        self._writer: BinaryIO | None = None
        self._writing: _Segment | None = None
        self._reader: BinaryIO | None = None
        self._reading: _Segment | None = None
        self._lock: BinaryIO | None = None
        # monotonic totals; their differences are what is waiting
        self._written = self._read = self._acked = 0
        self._next_seq = 1
        self._open()

    # -- state ---------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records on disk not yet acknowledged (including those read and in flight)."""
        return self._written - self._acked

    @property
    def unread(self) -> int:
        """Records on disk not yet handed out by `read`."""
        return self._written - self._read

    def segment_paths(self) -> list[Path]:
        return [s.path for s in self._segments.values()]

    # -- opening and closing -------------------------------------------------------------

    def _open(self) -> None:
        """Take the lock and index the segments a previous run left behind."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = (self.directory / ".lock").open("ab")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise SpoolBusy(
                f"the event spool {self.directory} is in use by another process"
            ) from None
        self._lock = lock
        for seq, path in segment_numbers(self.directory):
            data = path.read_bytes()
            lines = data.count(b"\n")
            torn = len(data) - (data.rfind(b"\n") + 1)
            if torn:
                log.warning(
                    "spool segment %s ends in a torn record (%d bytes), skipped", path, torn
                )
            self._next_seq = max(self._next_seq, seq + 1)
            if lines == 0:
                path.unlink()
                continue
            self._segments[seq] = _Segment(seq, path, lines=lines, sealed=True)
            self._written += lines
        if self._written:
            log.warning(
                "%d events spooled by a previous run in %s will be replayed first",
                self._written,
                self.directory,
            )

    def close(self) -> None:
        """Seal (fsync) the segment being written and release the lock; what is unacknowledged
        stays on disk for the next run. `append` after `close` reopens the spool."""
        self._seal(sync=True)
        self._close_reader()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None
        self._collect()

    # -- writing -------------------------------------------------------------------------

    def append(self, payload: bytes) -> None:
        """Add one record (it must not contain a newline); raises OSError if the disk fails."""
        if b"\n" in payload:
            raise ValueError("a spool record cannot contain a newline")
        if self._lock is None:
            self._open_again()
        if self._writer is None or self._writing is None:
            self._start_segment()
        assert self._writer is not None and self._writing is not None
        self._writer.write(payload + b"\n")
        self._writer.flush()  # in the kernel: survives the process
        self._writing.lines += 1
        self._written += 1
        if self._writer.tell() >= self.segment_bytes:
            self._seal(sync=True)

    def park(self, payload: bytes) -> None:
        """Keep a record that can never be delivered, outside the replay; fsynced at once
        (it is rare, and nothing else holds it)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / REJECTED).open("ab") as out:
            out.write(payload.replace(b"\n", b" ") + b"\n")
            out.flush()
            os.fsync(out.fileno())

    def _open_again(self) -> None:
        self._segments.clear()
        self._written = self._read = self._acked = 0
        self._open()

    def _start_segment(self) -> None:
        seq = self._next_seq
        self._next_seq += 1
        path = self.directory / f"{seq:012d}.ndjson"
        self._writer = path.open("ab")
        self._writing = self._segments[seq] = _Segment(seq, path)
        _fsync_directory(self.directory)  # the new name survives a power cut too

    def _seal(self, *, sync: bool) -> None:
        writer, segment = self._writer, self._writing
        self._writer = self._writing = None
        if writer is None or segment is None:
            return
        writer.flush()
        if sync:
            os.fsync(writer.fileno())
        writer.close()
        segment.sealed = True

    # -- replaying -----------------------------------------------------------------------

    def read(self, limit: int) -> list[SpooledRecord]:
        """Up to `limit` records not yet read, oldest first (including the segment being
        written). Each must later be passed to `ack`; until then it stays on disk."""
        records: list[SpooledRecord] = []
        for segment in list(self._segments.values()):
            if len(records) >= limit:
                break
            available = segment.lines - segment.read
            if available <= 0:
                continue
            reader = self._reader_for(segment)
            for _ in range(min(available, limit - len(records))):
                line = reader.readline()
                if not line.endswith(b"\n"):  # cannot happen: `lines` counts whole records
                    raise RuntimeError(f"spool segment {segment.path} changed under the reader")
                segment.offset += len(line)
                segment.read += 1
                self._read += 1
                records.append(SpooledRecord(segment.seq, line[:-1]))
        return records

    def _reader_for(self, segment: _Segment) -> BinaryIO:
        if self._reading is not segment or self._reader is None:
            self._close_reader()
            self._reader = segment.path.open("rb")
            self._reader.seek(segment.offset)
            self._reading = segment
        return self._reader

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader = self._reading = None

    def ack(self, records: Iterable[SpooledRecord]) -> None:
        """These records are safe elsewhere: segments whose every record is acknowledged go."""
        for record in records:
            segment = self._segments.get(record.segment)
            if segment is not None:
                segment.acked += 1
                self._acked += 1
        self._collect()

    def _collect(self) -> None:
        """Delete fully acknowledged segments. The segment being written goes too once it is
        drained, so an idle spool leaves no file behind."""
        for segment in list(self._segments.values()):
            if segment.acked < segment.lines or (segment.lines == 0 and not segment.sealed):
                continue
            if segment is self._writing:
                self._seal(sync=False)  # deleted right away: nothing to make durable
            if segment is self._reading:
                self._close_reader()
            try:
                segment.path.unlink(missing_ok=True)
            except OSError:  # left behind: replayed (and deduplicated) after a restart
                log.exception("could not delete the spool segment %s", segment.path)
            del self._segments[segment.seq]


def segment_numbers(directory: Path) -> list[tuple[int, Path]]:
    """The segment files of a spool directory with their numbers, oldest first."""
    return sorted(
        (int(m.group(1)), p) for p in directory.iterdir() if (m := _SEGMENT_NAME.match(p.name))
    )


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
