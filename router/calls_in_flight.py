"""Calls in flight under `max_parallel_requests`, held within the limit across replicas.

Each instance (a gateway process) counts its own calls in flight per subject (a key, a
business line, a model) and follows the others' latest counts (router/rate_sharing.py), each
with when it was sent and whether that instance is *waiting* — it refused a call for lack of a
slot within the last `WAITING_S`. A count older than `TTL_S` no longer counts: a crashed
replica's slots come free. A call is admitted when both hold:

- **room**: its own count, plus the live peers' counts, plus one, is within the limit;
- **fair share**: with k live instances (self included), its own count plus one is within
  `limit / k`, plus what the peers that are not waiting leave unused of their own `limit / k`.

Room alone is what a single replica needs, and it is exact there. With several, a slot freed
on one is seen by the others only after a record's trip, and in a burst all of them see the
same freed slots at once and all take them: with calls of 1 s, a limit of 16 and clients
retrying every 10 ms, two replicas admitted 21 to 23 calls a second, where 16 fit. The fair share stops that: replicas
that all want more than their share get exactly their share, and a replica uses what the
others leave idle only while they are not turning calls away. An instance whose clients are
refused publishes at once (`refused` marks the subject changed), so the others stop borrowing
its share within a record's trip.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

#: a peer's count older than this no longer counts (five refreshes; allows for clock skew)
TTL_S = 15.0
#: a non-zero count is re-sent this often (router/rate_sharing.py)
REFRESH_S = 3.0
#: an instance that refused a call for lack of a slot this recently is *waiting*
WAITING_S = 1.0


@dataclass(frozen=True)
class _Peer:
    count: int
    sent: float  # the peer's clock, no later than ours
    waiting: bool


class CallsInFlight:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._own: dict[str, int] = {}
        self._peers: dict[str, dict[str, _Peer]] = {}  # subject → instance → latest
        self._refused_at: dict[str, float] = {}
        self._limited: set[str] = set()

    # -- this instance ---------------------------------------------------------------------
    def admits(self, subject: str, limit: int, now: float) -> bool:
        """Room for one more call under `limit`, and within this instance's fair share."""
        self._limited.add(subject)
        own = self._own.get(subject, 0)
        peers = self._live(subject, now)
        if own + sum(peer.count for peer in peers) + 1 > limit:
            return False
        if not peers:
            return True
        fair = limit / (len(peers) + 1)
        unused = sum(max(0.0, fair - peer.count) for peer in peers if not peer.waiting)
        return own + 1 <= fair + unused + 1e-9

    def refused(self, subject: str, now: float) -> None:
        self._refused_at[subject] = now

    def taken(self, subject: str) -> None:
        self._own[subject] = self._own.get(subject, 0) + 1

    def freed(self, subject: str) -> None:
        left = self._own.get(subject, 0) - 1
        if left > 0:
            self._own[subject] = left
        else:
            self._own.pop(subject, None)

    def own(self, subject: str) -> int:
        return self._own.get(subject, 0)

    def waiting(self, subject: str, now: float) -> bool:
        """Whether this instance refused a call for lack of a slot within `WAITING_S`."""
        return now - self._refused_at.get(subject, -math.inf) < WAITING_S

    def limited(self, subject: str) -> bool:
        """Whether the subject has been admitted under a limit on calls in flight."""
        return subject in self._limited

    def busy(self) -> list[str]:
        """The subjects this instance has calls in flight for (their counts are re-sent)."""
        return [subject for subject, count in self._own.items() if count]

    # -- the peers -------------------------------------------------------------------------
    def apply(self, instance: str, subject: str, count: int, sent: float, waiting: bool) -> None:
        """A peer's latest count (a clock running ahead of ours counts as sent now)."""
        peer = _Peer(count, min(sent, self.clock()), waiting)
        self._peers.setdefault(subject, {})[instance] = peer

    def total(self, subject: str, now: float) -> int:
        """This instance's calls in flight and its live peers'."""
        return self.own(subject) + sum(peer.count for peer in self._live(subject, now))

    def _live(self, subject: str, now: float) -> list[_Peer]:
        peers = self._peers.get(subject)
        if not peers:
            return []
        return [peer for peer in peers.values() if now - peer.sent < TTL_S]
