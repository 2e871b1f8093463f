"""CallEvent v1: the one record of an LLM call, on topic `tollway.calls.v1`.

Producers build a `CallEvent`; consumers call `decode_call_event`, which tells a message from
a newer schema (`UnknownSchemaVersion`) apart from a malformed one (`MalformedEvent`) so that
either can be parked in the dead-letter path with its reason instead of stopping a worker.
Prompt and completion text are absent unless a logging policy turns content logging on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from tollway.ids import new_event_id

SCHEMA_VERSION: Literal[1] = 1

CallStatus = Literal["ok", "error", "blocked"]
BudgetAction = Literal["none", "warned", "downgraded", "blocked"]
Endpoint = Literal["chat.completions", "messages", "embeddings", "responses", "completions"]


class EventDecodeError(ValueError):
    """A message on the calls topic that cannot become a CallEvent."""

    reason: str = "malformed"


class MalformedEvent(EventDecodeError):
    reason = "malformed"


class UnknownSchemaVersion(EventDecodeError):
    reason = "unknown_schema_version"


class Attempt(BaseModel):
    """One try against one provider; a call with fallbacks has several."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    model: str
    status: Literal["ok", "error"]
    error: str | None = None
    http_status: int | None = None
    duration_ms: int = 0


class CallEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    # identity
    event_id: UUID = Field(default_factory=new_event_id)
    ts: datetime = Field(description="When the call started, UTC (millisecond precision).")
    duration_ms: int = 0
    ttft_ms: int | None = None
    # attribution
    business_line: str = ""
    project: str = ""
    task_type: str = ""
    user: str = ""
    key_id: str = ""
    environment: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    #: the run, conversation or agent task the call belongs to (`x-tollway-session-id`), so
    #: what one costs end to end can be summed; "" for a call sent without one
    session_id: str = ""
    # request
    endpoint: Endpoint = "chat.completions"
    requested_model: str = ""
    stream: bool = False
    # routing
    provider: str = ""
    model: str = ""
    route: str = ""
    route_reason: str = ""
    attempts: list[Attempt] = Field(default_factory=list)
    fallback_used: bool = False
    cache_hit: bool = False
    # usage and cost
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0  # written to the provider's prompt cache; part of input_tokens
    reasoning_tokens: int = 0
    usage_estimated: bool = False
    cost_usd: Decimal = Decimal(0)
    price_version: str = ""
    # outcome
    status: CallStatus = "ok"
    http_status: int = 200
    error_code: str = ""
    budget_action: BudgetAction = "none"
    budget_ids: list[str] = Field(default_factory=list)
    guardrails: list[str] = Field(default_factory=list)  # ids of those that matched the prompt
    # content, only under a logging policy that turns it on
    request_content: str | None = None
    response_content: str | None = None

    @field_serializer("cost_usd")
    def _cost_as_string(self, value: Decimal) -> str:
        return format(value, "f")

    @field_serializer("ts")
    def _ts_as_utc_millis(self, value: datetime) -> str:
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def encode(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)

    @property
    def partition_key(self) -> bytes:
        """Calls of one key share a partition, so one worker sees a key's calls in order."""
        return self.key_id.encode()


#: how every event tollway itself produces begins (`encode` writes the fields in order)
_CURRENT_PREFIX = b'{"schema_version":%d,' % SCHEMA_VERSION


def decode_call_event(raw: bytes | str | None) -> CallEvent:
    """Parse one message of `tollway.calls.v1`, or say precisely why it is not one.

    A message that starts like tollway's own events is validated straight from its bytes by
    pydantic's Rust core (the worker's hot path); anything else, or anything that fails that,
    takes the careful path below, which names what is wrong."""
    if raw is None:
        raise MalformedEvent("empty message")
    if isinstance(raw, bytes) and raw.startswith(_CURRENT_PREFIX):
        try:
            return CallEvent.model_validate_json(raw)
        except ValidationError:
            pass  # the careful path explains it
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedEvent(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedEvent("schema_version missing or not an integer")
    if version != SCHEMA_VERSION:
        raise UnknownSchemaVersion(
            f"schema_version {version} is not understood by this worker (knows {SCHEMA_VERSION})"
        )
    try:
        return CallEvent.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise MalformedEvent(f"invalid CallEvent: {errors}") from None


def utc_now() -> datetime:
    return datetime.now(UTC)
