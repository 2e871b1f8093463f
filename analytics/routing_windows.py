"""A sliding window cut into whole days, whole hours and raw edges, for the routing rollups.

Routing windows end *now* (the proxy's published stats every minute, the Routing page), so they
never fall on bucket starts, and the budget approach (`analytics.budget_status.spend_source`:
one rollup when both bounds are bucket starts, else the raw rows) would always read the raw
ledger. Instead the window [start, end) is cut into at most five consecutive pieces:

    raw [start, ceil_hour(start))  hourly [.., ceil_day)  daily [.., floor_day(end))
    hourly [.., floor_hour(end))   raw [.., end)

Empty pieces are dropped; a window shorter than a day has no daily piece, one shorter than an
hour (or within one clock hour) only a raw piece. Every call in the window is in exactly one
piece, so sums over the pieces are the window's sums. The bounds use `analytics.queries`' bucket
helpers and `Source.literal`, the same instants and SQL literals as the explorer's rollup reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from analytics.queries import RAW, Source, ceil_day, ceil_hour, floor_day, floor_hour

DAILY_BY_ROUTE = Source("daily", "calls_daily_by_route", "day")
HOURLY_BY_ROUTE = Source("hourly", "calls_hourly_by_route", "hour")


@dataclass(frozen=True)
class Piece:
    """[start, end) read from `source`."""

    source: Source
    start: datetime
    end: datetime

    def condition(self) -> str:
        column = self.source.time_column
        return (
            f"{column} >= {self.source.literal(self.start)}"
            f" AND {column} < {self.source.literal(self.end)}"
        )


def split_window(
    start: datetime,
    end: datetime,
    *,
    daily: Source = DAILY_BY_ROUTE,
    hourly: Source = HOURLY_BY_ROUTE,
) -> list[Piece]:
    """The window's pieces in time order (see the module docstring); [] for an empty window."""
    if end <= start:
        return []
    first_hour, last_hour = ceil_hour(start), floor_hour(end)
    if first_hour >= last_hour:
        return [Piece(RAW, start, end)]
    first_day, last_day = ceil_day(start), floor_day(end)
    bounds: list[tuple[Source, datetime, datetime]] = [(RAW, start, first_hour)]
    if first_day < last_day:
        bounds += [
            (hourly, first_hour, first_day),
            (daily, first_day, last_day),
            (hourly, last_day, last_hour),
        ]
    else:
        bounds.append((hourly, first_hour, last_hour))
    bounds.append((RAW, last_hour, end))
    return [Piece(source, a, b) for source, a, b in bounds if a < b]


def whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) widened to whole UTC hours, as the explorer snaps its ranges
    (`analytics.queries.pick_source`): the window then splits into rollup pieces only. The
    routing API answers on it, because each raw edge costs about 0.2 s at 100M calls whatever
    its length (the ledger is ordered by attribution, then time, so a partial hour touches one
    granule of every business line x project x task type); a window ending now loses nothing
    by ending at the next whole hour."""
    return floor_hour(start), ceil_hour(end)
