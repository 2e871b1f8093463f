"""Spools of proxy processes that no longer run are handed to those that will."""

from __future__ import annotations

import fcntl
from pathlib import Path

from router.spool import Spool
from router.spool_adoption import adopt

TOPIC = "tollway.calls.v1"


def spool_with(directory: Path, payloads: list[bytes]) -> None:
    spool = Spool(directory, segment_bytes=64)  # small segments: several files
    for payload in payloads:
        spool.append(payload)
    spool.close()


def replayed(directory: Path) -> list[bytes]:
    spool = Spool(directory)
    try:
        return [record.payload for record in spool.read(10_000)]
    finally:
        spool.close()


def test_fewer_workers_replay_what_the_others_spooled(tmp_path: Path) -> None:
    workers = [tmp_path / f"proxy-worker-{i}" / "spool" / TOPIC for i in range(4)]
    for i, directory in enumerate(workers):
        spool_with(directory, [f'{{"worker": {i}, "n": {n}}}'.encode() for n in range(5)])
    moved = adopt(workers[:2], tmp_path, TOPIC)
    assert moved > 0
    kept = replayed(workers[0]) + replayed(workers[1])
    assert sorted(kept) == sorted(
        f'{{"worker": {i}, "n": {n}}}'.encode() for i in range(4) for n in range(5)
    )
    assert not list(workers[2].glob("*.ndjson")) and not list(workers[3].glob("*.ndjson"))


def test_one_process_takes_over_every_worker_spool(tmp_path: Path) -> None:
    spool_with(tmp_path / "proxy-worker-0" / "spool" / TOPIC, [b"a", b"b"])
    spool_with(tmp_path / "proxy-worker-1" / "spool" / TOPIC, [b"c"])
    single = tmp_path / "spool" / TOPIC
    spool_with(single, [b"own"])
    adopt([single], tmp_path, TOPIC)
    assert sorted(replayed(single)) == [b"a", b"b", b"c", b"own"]


def test_a_spool_in_use_is_left_alone(tmp_path: Path) -> None:
    busy = tmp_path / "proxy-worker-1" / "spool" / TOPIC
    spool_with(busy, [b"mine"])
    with (busy / ".lock").open("ab") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert adopt([tmp_path / "spool" / TOPIC], tmp_path, TOPIC) == 0
    assert replayed(busy) == [b"mine"]
