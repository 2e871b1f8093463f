"""Per-key rate limits: requests and tokens a minute, and calls in flight, across every proxy
replica.

A key's `limits` (tollway.yaml, the admin API or `tollway keys create --rpm/--tpm`) cap its
requests and its tokens (input plus output) over a sliding minute. The minute is estimated the
way rate limiters at scale do (Cloudflare's sliding window): fixed one-minute windows, the
current one counted whole and the previous one weighted by the share of it still inside the
last 60 s — four integers a key, no list of timestamps.

Admission: a call is refused — HTTP 429 `rate_limit_exceeded`, with `retry-after` and OpenAI's
`x-ratelimit-*` headers, which the SDKs' retries honour — when one more request would exceed
the requests limit, or when the tokens counted in the minute have reached the tokens limit (a
call's size is known only once it is answered). An admitted call counts one request and its
prompt's estimated tokens at once; when its event is published, its actual input plus output
tokens replace the estimate; a call refused by its provider or cancelled gives its estimate
back. Refused calls count nothing, so a client that waits out `retry-after` is served.

`max_parallel_requests` caps the calls in flight at once (LiteLLM's key setting of that name):
an admitted call holds a slot until its reservation is settled, released or undone — a stream
until it ends, however it ends. A refusal says `retry-after: 1`. Replicas share their counts in
the same records, and each keeps to a fair share of the limit while others want slots too
(router/calls_in_flight.py).

Replicas share their counts (router/rate_sharing.py): each gateway process is an instance that
publishes its own counts per key and window, and adds the others' latest (`apply`) to its own.

The same limiter keeps business lines' limits (all their keys together, `#line:<name>`) and
the models' provider quotas (router/model_quotas.py, `#model:<name>`): subjects no key id can
be, with reservations of their own (`Ticket`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import orjson
from prometheus_client import Counter
from pydantic import BaseModel, Field

from router.calls_in_flight import CallsInFlight
from router.errors import RateLimited
from tollway.config.schema import RateLimits

WINDOW_S = 60
#: a reservation older than this many windows is forgotten, its slot freed: a call that never
#: ends must not hold its slot for ever, and no call outlives its deadline (at most 300 s by
#: default) by this much
STALE_WINDOWS = 15

#: refusals by the limit that refused them (which keys: the ledger's blocked rows say)
RATE_LIMITED = Counter(
    "tollway_rate_limited_total", "Calls refused by a key's rate limit", ["limit"]
)


class RateUsage(BaseModel):
    """One instance's counts for one key in one minute window (`tollway.rate-usage.v1`)."""

    instance_id: str
    key_id: str
    window: int  # minutes since the epoch
    requests: int = Field(ge=0)
    tokens: int = Field(ge=0)
    in_flight: int = Field(default=0, ge=0)  # this instance's calls in flight, any window
    waiting: bool = False  # it refused a call for lack of a slot just now
    sent_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def key(self) -> str:
        return f"{self.instance_id}:{self.key_id}"

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


@dataclass
class Counts:
    requests: int = 0
    tokens: int = 0


@dataclass
class _Own:
    """This instance's counts for one key: the current window and the one before."""

    window: int
    current: Counts = field(default_factory=Counts)
    previous: Counts = field(default_factory=Counts)

    def roll(self, window: int) -> None:
        if window == self.window:
            return
        self.previous = self.current if window == self.window + 1 else Counts()
        self.current = Counts()
        self.window = window


#: what a reservation is held under: a call's event id for its key's limits, (event id,
#: "line") for its business line's, or (event id, "quota") for the provider quota of the model
#: trying it (router/model_quotas.py)
Ticket = UUID | tuple[UUID, str]


def line_subject(business_line: str) -> str:
    """The subject a business line's counts are kept and shared under (key ids start
    alphanumeric)."""
    return f"#line:{business_line}"


def line_ticket(call_id: UUID) -> Ticket:
    """The reservation a call holds on its business line's limits."""
    return (call_id, "line")


def quota_ticket(call_id: UUID) -> Ticket:
    """The reservation a call holds on the quota of the model trying it."""
    return (call_id, "quota")


def call_tickets(call_id: UUID) -> tuple[Ticket, ...]:
    """Every reservation one call may hold."""
    return (call_id, line_ticket(call_id), quota_ticket(call_id))


@dataclass(frozen=True)
class _Reservation:
    key_id: str
    window: int
    tokens: int


class RateLimiter:
    def __init__(
        self,
        instance_id: str = "",
        clock: Callable[[], float] = time.time,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        """`on_change(key_id)`: this instance's counts for the key changed (the publisher)."""
        self.instance_id = instance_id
        self.clock = clock
        self.on_change = on_change
        self._own: dict[str, _Own] = {}
        self._peers: dict[str, dict[str, dict[int, Counts]]] = {}  # key → instance → window
        self._reserved: dict[Ticket, _Reservation] = {}
        self.calls = CallsInFlight(clock)  # reservations held, by key

    # -- admission -------------------------------------------------------------------------
    def admit(
        self,
        key_id: str,
        limits: RateLimits,
        prompt_tokens: int,
        call_id: Ticket,
        label: str | None = None,
    ) -> None:
        """Count the call, or raise `RateLimited` (counting nothing). `label`: what the refusal
        names (default: the key)."""
        now = self.clock()
        window, elapsed = divmod(now, WINDOW_S)
        own = self._own_for(key_id, int(window))
        current, previous = self._totals(key_id, own)
        weight = 1 - elapsed / WINDOW_S
        checks = (
            (limits.requests_per_minute, current.requests, previous.requests, "requests"),
            (limits.tokens_per_minute, current.tokens, previous.tokens, "tokens"),
        )
        for limit, now_count, before, what in checks:  # room for one more of each
            if limit is not None and before * weight + now_count + 1 > limit:
                raise self._refusal(
                    label or f"key {key_id}", limits, current, previous, elapsed, what
                )
        parallel = limits.max_parallel_requests
        if parallel is not None and not self.calls.admits(key_id, parallel, now):
            self.calls.refused(key_id, now)
            self._changed(key_id)  # the peers learn at once that this one wants slots
            raise RateLimited(
                f"rate limit reached for {label or f'key {key_id}'}: {parallel:,} calls in flight"
                " at once; retry in 1 s",
                headers={"retry-after": "1"},
                details={"limit": "parallel_requests", "retry_after_s": 1},
            )
        own.current.requests += 1
        own.current.tokens += prompt_tokens
        self._reserved[call_id] = _Reservation(key_id, own.window, prompt_tokens)
        self.calls.taken(key_id)
        self._changed(key_id)

    def in_flight(self, key_id: str) -> int:
        """The key's calls in flight: this instance's, and its peers' latest live counts."""
        return self.calls.total(key_id, self.clock())

    def settle(self, call_id: Ticket, tokens: int) -> None:
        """The call is over and used `tokens` (input plus output): they replace its estimate."""
        self._correct(call_id, tokens, requests=0)

    def _correct(self, call_id: Ticket, tokens: int, requests: int) -> None:
        reservation = self._reserved.pop(call_id, None)
        if reservation is None:
            return
        self.calls.freed(reservation.key_id)
        own = self._own.get(reservation.key_id)
        if own is None:
            return
        counts = (
            own.current
            if own.window == reservation.window
            else own.previous
            if own.window == reservation.window + 1
            else None
        )
        if counts is not None:
            counts.tokens = max(0, counts.tokens + tokens - reservation.tokens)
            counts.requests = max(0, counts.requests + requests)
        self._changed(reservation.key_id)

    def release(self, call_id: Ticket) -> None:
        """The call used nothing (refused by its provider, or cancelled): one request stays
        counted, as the provider saw it, its tokens estimate goes."""
        self.settle(call_id, 0)

    def undo(self, call_id: Ticket) -> None:
        """The call was refused after all (by a budget) and never sent: it counts nothing."""
        self._correct(call_id, 0, requests=-1)

    def settle_call(self, call_id: UUID, tokens: int) -> None:
        """`settle` every reservation of the call (its key's, its line's, its model's)."""
        for ticket in call_tickets(call_id):
            self.settle(ticket, tokens)

    def release_call(self, call_id: UUID) -> None:
        """`release` every reservation of the call."""
        for ticket in call_tickets(call_id):
            self.release(ticket)

    # -- sharing ---------------------------------------------------------------------------
    def usage(self, key_id: str) -> RateUsage | None:
        """This instance's counts for the key's current window, to publish."""
        own = self._own.get(key_id)
        if own is None:
            return None
        own.roll(int(self.clock() // WINDOW_S))
        return RateUsage(
            instance_id=self.instance_id,
            key_id=key_id,
            window=own.window,
            requests=own.current.requests,
            tokens=own.current.tokens,
            in_flight=self.calls.own(key_id),
            waiting=self.calls.waiting(key_id, self.clock()),
        )

    def apply(self, record: RateUsage) -> None:
        """Another instance's latest counts for a key and window."""
        if record.instance_id == self.instance_id:
            return
        windows = self._peers.setdefault(record.key_id, {}).setdefault(record.instance_id, {})
        windows[record.window] = Counts(record.requests, record.tokens)
        for old in [w for w in windows if w < record.window - 1]:
            del windows[old]
        sent = record.sent_at.timestamp()
        self.calls.apply(record.instance_id, record.key_id, record.in_flight, sent, record.waiting)

    # -- internals -------------------------------------------------------------------------
    def _own_for(self, key_id: str, window: int) -> _Own:
        own = self._own.get(key_id)
        if own is None:
            own = self._own[key_id] = _Own(window)
        elif own.window != window:
            own.roll(window)
            self._forget_reservations_before(window - STALE_WINDOWS)
        return own

    def _totals(self, key_id: str, own: _Own) -> tuple[Counts, Counts]:
        current = Counts(own.current.requests, own.current.tokens)
        previous = Counts(own.previous.requests, own.previous.tokens)
        for windows in self._peers.get(key_id, {}).values():
            if (now := windows.get(own.window)) is not None:
                current.requests += now.requests
                current.tokens += now.tokens
            if (before := windows.get(own.window - 1)) is not None:
                previous.requests += before.requests
                previous.tokens += before.tokens
        return current, previous

    def _forget_reservations_before(self, window: int) -> None:
        """A call that never finishes, should one, must not keep its reservation (and its
        slot) for ever."""
        stale = [i for i, r in self._reserved.items() if r.window < window]
        for call_id in stale:
            key_id = self._reserved.pop(call_id).key_id
            self.calls.freed(key_id)
            self._changed(key_id)

    def _changed(self, key_id: str) -> None:
        if self.on_change is not None:
            self.on_change(key_id)

    def _refusal(
        self,
        label: str,
        limits: RateLimits,
        current: Counts,
        previous: Counts,
        elapsed: float,
        what: str,
    ) -> RateLimited:
        headers: dict[str, str] = {}
        waits: list[int] = []
        for name, limit, now_count, before in (
            ("requests", limits.requests_per_minute, current.requests, previous.requests),
            ("tokens", limits.tokens_per_minute, current.tokens, previous.tokens),
        ):
            if limit is None:
                continue
            used = before * (1 - elapsed / WINDOW_S) + now_count
            wait = seconds_until_room(limit, before, now_count, elapsed)
            headers[f"x-ratelimit-limit-{name}"] = str(limit)
            headers[f"x-ratelimit-remaining-{name}"] = str(max(0, math.floor(limit - used)))
            headers[f"x-ratelimit-reset-{name}"] = f"{wait}s"
            if name == what:
                waits.append(wait)
        retry = max(waits, default=1)
        headers["retry-after"] = str(retry)
        limit = limits.requests_per_minute if what == "requests" else limits.tokens_per_minute
        return RateLimited(
            f"rate limit reached for {label}: {limit:,} {what} a minute; retry in {retry} s",
            headers=headers,
            details={"limit": what, "retry_after_s": retry},
        )


def seconds_until_room(limit: int, previous: int, current: int, elapsed: float) -> int:
    """Seconds until one more unit fits under `limit`, with no new traffic meanwhile."""
    room = limit - 1
    if current <= room:  # within this window: as the previous window's share slides out
        if previous == 0:
            return 1
        share_allowed = (room - current) / previous  # weight at which it fits
        wait = WINDOW_S * (1 - share_allowed) - elapsed
    else:  # only in a later window, as this one's count slides out
        wait = (WINDOW_S - elapsed) + WINDOW_S * (1 - room / current)
    return max(1, math.ceil(wait - 1e-9))  # 60 * (1 - 2/3) is 20.000000000000004
