"""Who pays for a call: the key's metadata, refined by request headers.

The key's business line always wins (a caller cannot move spend to another business line).
Project, task type, user, environment and tags may come from `x-tollway-*` headers — each only
if the key's `header_overrides` allows it — falling back to the key's own values. The result
is copied into every CallEvent.

A call may also name the session it belongs to — an agent's run, a conversation — in
`x-tollway-session-id`, always allowed, so the ledger can sum what each one cost. Coding tools
that name their sessions themselves are understood without it: Claude Code's
`x-claude-code-session-id` becomes `claude-code:<id>`, the Codex CLI's `session-id` (or
`session_id`) `codex:<id>`; `x-tollway-session-id` wins over both. Claude Code also packs its
account and session into Anthropic's `metadata.user_id` (a JSON object since v2.1.86, before
that `user_<hash>_account_<id>_session_<uuid>`): the user is its account (or device), not the
packed text, and its session counts where no header names one.

Two things travel with it that are not attribution: the key's rate limits, and whether the
call's content may be logged — the key's `log_content`, or never when the caller sends
`x-tollway-log-content: off` (a caller may keep its own call out of the content log, not put
it in).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson
from starlette.datastructures import Headers

from router.errors import InvalidRequest
from tollway.auth import Principal
from tollway.config.schema import RateLimits

TAG_PREFIX = "x-tollway-tag-"
SESSION_HEADER = "x-tollway-session-id"
#: the session headers coding tools send on their own, and the prefix each session gets
TOOL_SESSION_HEADERS = {
    "x-claude-code-session-id": "claude-code:",
    "session-id": "codex:",
    "session_id": "codex:",
}
_TOOL_SESSION_NAMES = frozenset(name.encode() for name in TOOL_SESSION_HEADERS)
#: Claude Code's `metadata.user_id` before v2.1.86
_PACKED_USER = re.compile(r"(user_[0-9a-f]+)_account_([\w-]*)_session_([\w-]+)")
LOG_CONTENT_HEADER = "x-tollway-log-content"
#: what `x-tollway-log-content` accepts: each turns content logging off for the call
LOG_CONTENT_OFF = frozenset({"off", "false", "0", "no"})
MAX_TAGS = 20
MAX_VALUE_LEN = 128


@dataclass(frozen=True)
class Attribution:
    business_line: str
    project: str
    task_type: str
    user: str
    key_id: str
    environment: str
    tags: dict[str, str] = field(default_factory=dict)
    session_id: str = ""
    #: the key's rate limits, which admission enforces with the budgets (not attribution,
    #: but they travel from the key to the gateway with it)
    limits: RateLimits | None = None
    #: content logging for this call: the key's `log_content`, False when the caller opted
    #: out; None: as the logging policy says (router/content_log.py)
    log_content: bool | None = None

    def scope_fields(self, model: str) -> dict[str, str]:
        """What a budget's or a guardrail's scope matches a call on (with its tags), for a
        call asking for `model`."""
        return {
            "business_line": self.business_line,
            "project": self.project,
            "task_type": self.task_type,
            "key_id": self.key_id,
            "user": self.user,
            "model": model,
        }


def _clean(value: str | None) -> str:
    return (value or "").strip()[:MAX_VALUE_LEN]


#: the attribution headers, by the field each may override
_FIELD_HEADERS = {
    "x-tollway-project": "project",
    "x-tollway-task-type": "task_type",
    "x-tollway-user": "user",
    "x-tollway-environment": "environment",
}


def _tollway_headers(headers: Headers) -> list[tuple[str, str]]:
    """The `x-tollway-*` request headers and the coding tools' session headers in order, found
    in one pass over the raw list (a `Headers.get` per name would scan every header each
    time)."""
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in headers.raw
        if name.startswith(b"x-tollway-") or name in _TOOL_SESSION_NAMES
    ]


def _unpacked(user: str) -> tuple[str, str]:
    """A request's user field as (the user, the session it names): Claude Code's packed
    `metadata.user_id` unpacked, any other value as it is with no session."""
    if user.startswith("{") and '"session_id"' in user:
        try:
            packed = orjson.loads(user)
        except orjson.JSONDecodeError:
            return user, ""
        if isinstance(packed, dict) and packed.get("session_id"):
            who = packed.get("account_uuid") or packed.get("device_id") or ""
            return str(who), f"claude-code:{packed['session_id']}"
    elif (found := _PACKED_USER.fullmatch(user)) is not None:
        return found[2] or found[1], f"claude-code:{found[3]}"
    return user, ""


def attribute(principal: Principal, headers: Headers, body_user: str | None = None) -> Attribution:
    allowed = principal.header_overrides
    given: dict[str, str] = {}
    tags = dict(principal.tags)
    log_content = principal.log_content
    session_id = tool_session = ""
    for name, value in _tollway_headers(headers):
        field = _FIELD_HEADERS.get(name)
        if field is not None:
            if field in allowed:
                given.setdefault(field, value)  # the first one wins, as with `Headers.get`
        elif name.startswith(TAG_PREFIX) and "tags" in allowed and len(tags) < MAX_TAGS:
            tags.setdefault(name[len(TAG_PREFIX) :][:MAX_VALUE_LEN], _clean(value))
        elif name == SESSION_HEADER:
            session_id = session_id or _clean(value)
        elif name in TOOL_SESSION_HEADERS:
            if not tool_session and (named := _clean(value)):
                tool_session = (TOOL_SESSION_HEADERS[name] + named)[:MAX_VALUE_LEN]
        elif name == LOG_CONTENT_HEADER:
            if value.strip().lower() not in LOG_CONTENT_OFF:
                raise InvalidRequest(
                    f"{LOG_CONTENT_HEADER} takes 'off': a caller may keep its call out of the "
                    "content log, not put it in (that is the key's or the policy's choice)"
                )
            log_content = False

    def header(field: str, _name: str) -> str:
        return _clean(given.get(field))

    user, packed_session = _unpacked(body_user) if body_user else ("", "")

    return Attribution(
        business_line=principal.business_line,
        project=header("project", "x-tollway-project") or principal.project,
        task_type=header("task_type", "x-tollway-task-type") or principal.task_type,
        user=header("user", "x-tollway-user") or _clean(user),
        key_id=principal.key_id,
        environment=header("environment", "x-tollway-environment") or principal.environment,
        tags=tags,
        session_id=session_id or tool_session or _clean(packed_session),
        limits=principal.limits,
        log_content=log_content,
    )
