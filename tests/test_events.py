"""CallEvent v1: the wire format consumers rely on, and how bad messages are told apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest

from tollway.events import (
    CallEvent,
    MalformedEvent,
    UnknownSchemaVersion,
    decode_call_event,
)
from tollway.ids import event_id_time, new_event_id


def _event(**overrides: object) -> CallEvent:
    fields: dict[str, object] = {
        "ts": datetime(2026, 11, 26, 5, 0, 0, 123_000, tzinfo=UTC),
        "business_line": "marketing",
        "key_id": "k_1",
        "model": "gpt-4o-mini",
        "cost_usd": Decimal("0.000123456"),
    }
    fields.update(overrides)
    return CallEvent(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    event = _event(tags={"team": "growth"}, budget_ids=["b1"], ttft_ms=12)
    assert decode_call_event(event.encode()) == event


def test_wire_format_is_versioned_with_exact_cost_and_utc_millis() -> None:
    data = orjson.loads(_event().encode())
    assert data["schema_version"] == 1
    assert data["cost_usd"] == "0.000123456"  # a decimal string, never a float
    assert data["ts"] == "2026-11-26T05:00:00.123Z"
    assert "request_content" in data and data["request_content"] is None


@pytest.mark.parametrize(
    ("ts", "wire"),
    [
        (datetime(2026, 11, 26, 5, 0, 0, 999_999, tzinfo=UTC), "2026-11-26T05:00:00.999Z"),
        (datetime(2026, 11, 26, 5, 0, 0), "2026-11-26T05:00:00.000Z"),  # naive: read as UTC
        (
            datetime(2026, 11, 26, 1, 30, 0, 5_000, tzinfo=timezone(timedelta(hours=-4))),
            "2026-11-26T05:30:00.005Z",
        ),
        (datetime(2027, 1, 1, 0, 0, tzinfo=ZoneInfo("Europe/Paris")), "2026-12-31T23:00:00.000Z"),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05.000Z"),
    ],
)
def test_ts_goes_on_the_wire_in_utc_millis(ts: datetime, wire: str) -> None:
    assert orjson.loads(_event(ts=ts).encode())["ts"] == wire
    assert wire == ts.replace(tzinfo=ts.tzinfo or UTC).astimezone(UTC).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")  # what isoformat() gives


def test_event_ids_are_uuid7_and_time_ordered() -> None:
    ids = [_event().event_id for _ in range(50)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)
    assert abs((event_id_time(ids[0]) - datetime.now(UTC)).total_seconds()) < 5


def test_event_ids_made_in_a_burst_keep_the_clock_time() -> None:
    ids = [new_event_id() for _ in range(20_000)]
    now = datetime.now(UTC)
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert all(i.version == 7 and i.variant == "specified in RFC 4122" for i in ids[:100])
    assert event_id_time(ids[-1]) <= now  # many per millisecond: none stamped in the future


@pytest.mark.parametrize(
    ("raw", "error", "fragment"),
    [
        (None, MalformedEvent, "empty"),
        (b"{oops", MalformedEvent, "not JSON"),
        (b"[1]", MalformedEvent, "JSON object"),
        (b'{"ts": "2026-01-01T00:00:00Z"}', MalformedEvent, "schema_version"),
        (b'{"schema_version": "1"}', MalformedEvent, "schema_version"),
        (b'{"schema_version": 2, "future": true}', UnknownSchemaVersion, "schema_version 2"),
        (b'{"schema_version": 1, "ts": "not a time"}', MalformedEvent, "ts"),
        (
            b'{"schema_version": 1, "ts": "2026-01-01T00:00:00Z", "surprise": 1}',
            MalformedEvent,
            "surprise",
        ),
        (
            b'{"schema_version": 1, "ts": "2026-01-01T00:00:00Z", "status": "maybe"}',
            MalformedEvent,
            "status",
        ),
    ],
)
def test_bad_messages_are_detectable_with_a_reason(
    raw: bytes | None, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        decode_call_event(raw)
    assert fragment in str(caught.value)
    assert caught.value.reason in {"malformed", "unknown_schema_version"}  # type: ignore[attr-defined]
