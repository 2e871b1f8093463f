"""Query-string parameters of the analytics API, validated before any SQL exists.

Every name that reaches SQL as an identifier comes from an allow-list here (`DIMENSIONS`), and
every value is kept as data (a later step quotes it with `sql_string`). Parsing is done by hand
rather than by FastAPI's validation, so a bad parameter always becomes the API's own 400 body
(`{"error": {"type": "invalid_request", ...}}`) instead of a framework-shaped 422.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from starlette.datastructures import QueryParams

#: Attribution dimensions kept in the rollups (`calls_hourly`, `calls_daily`).
ROLLUP_DIMENSIONS: tuple[str, ...] = (
    "business_line",
    "project",
    "task_type",
    "environment",
    "model",
    "provider",
    "route",
    "key_id",
    "status",
)
#: Dimensions only the raw ledger has: asking for them sends the query to `calls` (the
#: endpoint tells chat from embeddings spend, and the OpenAI from the Anthropic protocol; the
#: session groups an agent's run or a conversation).
RAW_DIMENSIONS: tuple[str, ...] = ("user", "endpoint", "session_id")
DIMENSIONS: tuple[str, ...] = ROLLUP_DIMENSIONS + RAW_DIMENSIONS

GRANULARITIES: tuple[str, ...] = ("hour", "day", "month")
MAX_VALUES_PER_FILTER = 100


class InvalidParameter(ValueError):
    """A query-string parameter the API cannot use (answered with HTTP 400)."""


@dataclass(frozen=True)
class Selection:
    """Which calls a question is about: a half-open time range and attribution filters."""

    start: datetime
    end: datetime
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def dimensions(self) -> set[str]:
        return set(self.filters)


def parse_dimensions(text: str | None, *, name: str = "group_by") -> list[str]:
    """`business_line,project` → ["business_line", "project"]; unknown names are refused."""
    if not text:
        return []
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown:
        raise InvalidParameter(
            f"{name}: unknown dimension {unknown[0]!r} (choose from {', '.join(DIMENSIONS)})"
        )
    if len(set(names)) != len(names):
        raise InvalidParameter(f"{name}: a dimension is repeated")
    return names


def parse_filters(params: QueryParams) -> dict[str, list[str]]:
    """Each dimension given once or repeated (`model=a&model=b` means either)."""
    filters: dict[str, list[str]] = {}
    for dimension in DIMENSIONS:
        values = params.getlist(dimension)
        if not values:
            continue
        if len(values) > MAX_VALUES_PER_FILTER:
            raise InvalidParameter(f"{dimension}: at most {MAX_VALUES_PER_FILTER} values")
        if any(len(v) > 256 or "\0" in v for v in values):
            raise InvalidParameter(f"{dimension}: a value is too long or holds a NUL character")
        filters[dimension] = values
    return filters


def parse_instant(text: str, name: str) -> datetime:
    """ISO 8601 date or date-time; without an offset it is UTC. Always returned in UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise InvalidParameter(
            f"{name}: {text!r} is not an ISO 8601 date or date-time (e.g. 2025-03-14T09:00:00Z)"
        ) from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if not datetime(2000, 1, 1, tzinfo=UTC) <= parsed <= datetime(2200, 1, 1, tzinfo=UTC):
        raise InvalidParameter(f"{name}: {text!r} is out of range (2000..2200)")
    return parsed


def start_of_day(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def parse_range(
    params: QueryParams, *, default: timedelta, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """`start`/`end` (half-open). The default ends at the next UTC midnight and spans `default`,
    so "the last 30 days" is 30 whole UTC days including today (and the daily rollup answers)."""
    now = now or datetime.now(UTC)
    raw_start, raw_end = params.get("start"), params.get("end")
    end = parse_instant(raw_end, "end") if raw_end else start_of_day(now) + timedelta(days=1)
    start = parse_instant(raw_start, "start") if raw_start else end - default
    if start >= end:
        raise InvalidParameter("start must be before end")
    if end - start > timedelta(days=3 * 366):
        raise InvalidParameter("the range may span at most three years")
    return start, end


def parse_int(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidParameter(f"{name}: {text!r} is not an integer") from None
    if not low <= value <= high:
        raise InvalidParameter(f"{name}: must be between {low} and {high}")
    return value


def parse_float(params: QueryParams, name: str, default: float, low: float, high: float) -> float:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise InvalidParameter(f"{name}: {text!r} is not a number") from None
    if not low <= value <= high:  # also refuses nan
        raise InvalidParameter(f"{name}: must be between {low} and {high}")
    return value


def parse_choice(params: QueryParams, name: str, default: str, choices: Sequence[str]) -> str:
    value = params.get(name) or default
    if value not in choices:
        raise InvalidParameter(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value


def check_known(params: QueryParams, allowed: Sequence[str], *, filters: bool = True) -> None:
    """Refuse parameters the endpoint does not know: a typo must not silently widen a query.
    `filters`: the endpoint also takes the attribution dimensions as filters."""
    known = set(allowed) | (set(DIMENSIONS) if filters else set())
    for name in params:
        if name not in known:
            raise InvalidParameter(f"unknown parameter {name!r}")
