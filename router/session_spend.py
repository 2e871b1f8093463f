"""Session spend caps: `sessions.limit_usd` stops a session — an agent's run, a conversation,
a coding tool's task — once its calls have cost that much, whichever replica served them, and
`sessions.downgrade_usd` serves it by cheaper models before that (router/admission.py moves
the call to its route's economy tier, else to `sessions.downgrade_to`).

Each gateway process counts what its own calls in each session cost (the priced event, as the
ledger bills it: a failed call that generated tokens, or a stream the client abandoned, counts
too) and tells the others its total per session (router/session_sharing.py). A session's spend
is the sum over the instances; a call in a session at or over the limit is refused before any
provider sees it, with a 429 in the caller's protocol (`type: budget_exceeded`, code
`session_budget_exceeded`) and `x-should-retry: false`, which the official SDKs obey: the
session will not get room by waiting. Its event is published as `blocked`.

What a limit lets through: the session's calls already in flight when it is crossed (an agent
makes its calls mostly one at a time, so usually the one call that crossed it), and what other
replicas admit within one publish interval and a record's trip through the broker. A session
idle for `sessions.idle_hours` (a day) is forgotten, so a session id reused after that starts
at zero; each process holds about 300 bytes for each session its calls served in that time
and 400 for each other replica's (docs/scaling.md). Nothing is counted while neither is set:
one added by a reload counts from then on (the ledger has every session's whole cost:
`GET /v1/analytics/sessions`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from pydantic import BaseModel, field_serializer

from router.errors import BudgetExceeded
from tollway.config.schema import SessionPolicy


class SessionBudgetExceeded(BudgetExceeded):
    """A session's calls have cost its limit: HTTP 429, not worth retrying."""

    code = "session_budget_exceeded"


class SessionSpendRecord(BaseModel):
    """One instance's spend in one session (`tollway.session-spend.v1`, key `instance:session`)."""

    instance_id: str
    session_id: str
    cost_usd: Decimal
    at: datetime  # the instance's latest call in the session

    @property
    def key(self) -> str:
        return f"{self.instance_id}:{self.session_id}"

    @field_serializer("cost_usd")
    def _exact(self, value: Decimal) -> str:
        return format(value, "f")

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


@dataclass(slots=True)
class _Spend:
    usd: Decimal
    at: float  # epoch seconds of the latest call


class SessionSpend:
    """What each session has cost, here and on the other instances, against the limit and the
    downgrade threshold."""

    def __init__(
        self,
        policy: Callable[[], SessionPolicy],
        instance_id: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`policy()`: the configured `sessions`, read at each call (hot reload)."""
        self.policy = policy
        self.instance_id = instance_id
        self.clock = clock
        self.on_change: Callable[[str], None] | None = None  # the publisher's
        self._own: dict[str, _Spend] = {}
        self._peers: dict[str, dict[str, _Spend]] = {}  # session → instance → spend

    def check(self, session_id: str) -> None:
        """Raise `SessionBudgetExceeded` for a call in a session at or over the limit."""
        limit = self.policy().limit_usd
        if limit is None or not session_id:
            return
        spent = self.spent(session_id)
        if spent >= limit:
            raise SessionBudgetExceeded(
                f"session {session_id} has cost ${spent:.6f}, at its limit of "
                f"${limit:f} (sessions.limit_usd): start a new session to go on",
                headers={"x-tollway-session-id": session_id, "x-should-retry": "false"},
                details={
                    "session_id": session_id,
                    "limit_usd": format(limit, "f"),
                    "spent_usd": format(spent, "f"),
                },
            )

    def downgraded(self, session_id: str) -> bool:
        """Whether a call in this session goes to cheaper models (`sessions.downgrade_usd`)."""
        threshold = self.policy().downgrade_usd
        return threshold is not None and bool(session_id) and self.spent(session_id) >= threshold

    def _active_since(self) -> float:
        """The moment before which a session's latest call makes it forgotten."""
        return self.clock() - self.policy().idle_hours * 3600

    def spent(self, session_id: str) -> Decimal:
        """The session's cost on every instance, as far as this one knows."""
        since = self._active_since()
        total = Decimal(0)
        own = self._own.get(session_id)
        if own is not None and own.at >= since:
            total += own.usd
        for peer in self._peers.get(session_id, {}).values():
            if peer.at >= since:
                total += peer.usd
        return total

    def add(self, session_id: str, cost_usd: Decimal) -> None:
        """A call of this instance in the session was priced (while a limit or a downgrade
        threshold is set)."""
        if not session_id or not self.policy().counted:
            return
        now = self.clock()
        own = self._own.get(session_id)
        if own is None or own.at < self._active_since():
            own = self._own[session_id] = _Spend(Decimal(0), now)
        own.usd += cost_usd
        own.at = now
        if self.on_change is not None:
            self.on_change(session_id)

    def record(self, session_id: str) -> SessionSpendRecord | None:
        """This instance's spend in the session, to publish."""
        own = self._own.get(session_id)
        if own is None:
            return None
        at = datetime.fromtimestamp(own.at, UTC)
        return SessionSpendRecord(
            instance_id=self.instance_id, session_id=session_id, cost_usd=own.usd, at=at
        )

    def apply(self, record: SessionSpendRecord) -> None:
        """Another instance's spend in a session (its own records come back too: skipped)."""
        if record.instance_id == self.instance_id:
            return
        spends = self._peers.setdefault(record.session_id, {})
        spends[record.instance_id] = _Spend(record.cost_usd, record.at.timestamp())

    def forget(self, key: str) -> None:
        """A deleted record (`instance:session`): that instance's spend in it is gone."""
        instance_id, _, session_id = key.partition(":")
        spends = self._peers.get(session_id)
        if spends is not None:
            spends.pop(instance_id, None)
            if not spends:
                del self._peers[session_id]

    def forget_idle(self) -> list[str]:
        """Drop every session idle for `sessions.idle_hours`; the ids of this instance's,
        whose records the publisher deletes from the topic."""
        since = self._active_since()
        mine = [s for s, spend in self._own.items() if spend.at < since]
        for session_id in mine:
            del self._own[session_id]
        for session_id, spends in list(self._peers.items()):
            for instance_id in [i for i, spend in spends.items() if spend.at < since]:
                del spends[instance_id]
            if not spends:
                del self._peers[session_id]
        return mine
