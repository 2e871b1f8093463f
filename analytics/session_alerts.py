"""`session.expensive`: a session — the calls that named one `x-tollway-session-id`, or a coding
tool's own session header — whose calls have cost `sessions.alert_usd` (tollway.yaml), recorded
in the `alerts` table and told to the webhooks that subscribe to it.

A runaway agent (a loop of tool calls, a coding session left to itself) spends call by call,
each within every budget; summed per session it stands out. The analytics role scans the last
day's sessions every `TOLLWAY_SESSION_CHECK_S` (60 s) while `alert_usd` is set (a hot reload
sets or clears it). The alert's id names the session, so every scan, by any analytics replica,
is one alert a session: the webhook dispatcher delivers an id once, and this process publishes
it once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from analytics.alert_scans import AlertScan
from analytics.queries import RAW
from analytics.store.base import Store
from tollway.budget_events import BudgetAlert

EVENT: Final = "session.expensive"
LOOKBACK = timedelta(days=1)
#: the most sessions one scan alerts on (the costliest first)
MAX_PER_SCAN = 100
#: alert ids this process has published, forgotten beyond this many (the dispatcher dedupes)
REMEMBERED = 100_000


def expensive_sessions_sql(since: datetime, threshold: Decimal) -> str:
    """Sessions with calls since `since` whose calls since then cost at least `threshold`;
    aliases differ from the columns, which ClickHouse would otherwise read into the WHERE."""
    return (
        "SELECT session_id AS session, sum(cost_usd) AS usd, count() AS n,"
        " any(business_line) AS line, any(project) AS proj, any(task_type) AS task,"
        " any(key_id) AS key_ref, min(ts) AS first_ts, max(ts) AS last_ts"
        f" FROM calls WHERE ts >= {RAW.literal(since)} AND session_id != ''"
        f" GROUP BY session_id HAVING usd >= {threshold}"
        f" ORDER BY usd DESC, session LIMIT {MAX_PER_SCAN}"
    )


class SessionAlerts(AlertScan):
    what = "expensive sessions"

    def __init__(
        self,
        store: Store,
        bootstrap: str,
        topic: str,
        threshold: Callable[[], Decimal | None],
        *,
        interval_s: float = 60.0,
    ) -> None:
        """`threshold`: `sessions.alert_usd` of the config in force (None: no alerts)."""
        super().__init__(store, bootstrap, topic, interval_s)
        self.threshold = threshold
        self._published: dict[str, None] = {}  # insertion-ordered, oldest first

    async def find(self, now: datetime) -> list[BudgetAlert]:
        """The sessions of the last day that cost the threshold, as alerts."""
        threshold = self.threshold()
        if threshold is None:
            return []
        result = await self.store.query(expensive_sessions_sql(now - LOOKBACK, threshold))
        return [_alert(row, threshold, now) for row in result.rows]

    async def new_alerts(self, now: datetime) -> list[BudgetAlert]:
        """The sessions found that this process has not published yet (a session stays
        expensive for a day of rounds)."""
        return [a for a in await self.find(now) if a.alert_id not in self._published]

    def published(self, alerts: list[BudgetAlert]) -> None:
        for alert in alerts:
            self._published[alert.alert_id] = None
        while len(self._published) > REMEMBERED:
            del self._published[next(iter(self._published))]


def _alert(row: dict[str, Any], threshold: Decimal, now: datetime) -> BudgetAlert:
    scope = {"session_id": row["session"], "business_line": row["line"],
             "project": row["proj"], "task_type": row["task"]}  # fmt: skip
    return BudgetAlert(
        alert_id=f"session:{row['session']}",
        type=EVENT,
        scope={name: value for name, value in scope.items() if value},
        period="session",
        period_start=_utc(row["first_ts"]),
        period_end=_utc(row["last_ts"]),
        spend_usd=Decimal(str(row["usd"])),
        limit_usd=threshold,
        key_id=row["key_ref"],
        fired_at=now,
    )


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace(" ", "T"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
