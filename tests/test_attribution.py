"""Who pays: key metadata, refined by headers only where the key allows it; and whether the
call's content is logged: the key's setting over the policy, a caller's opt-out over both."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from router.attribution import Attribution, attribute
from router.content_log import content_limit
from router.errors import InvalidRequest
from tollway.auth import Principal
from tollway.config.schema import LoggingPolicy

KEY = Principal(
    key_id="k_1",
    role="developer",
    business_line="marketing",
    project="campaigns",
    task_type="chat",
    tags={"team": "growth"},
)


def test_key_metadata_is_the_default() -> None:
    who = attribute(KEY, Headers({}))
    assert (who.business_line, who.project, who.task_type, who.key_id) == (
        "marketing",
        "campaigns",
        "chat",
        "k_1",
    )
    assert who.tags == {"team": "growth"}


def test_headers_refine_project_task_user_and_tags_but_never_the_business_line() -> None:
    headers = Headers(
        {
            "x-tollway-project": "seo",
            "x-tollway-task-type": "summarisation",
            "x-tollway-user": "ada",
            "x-tollway-tag-ticket": "T-42",
            "x-tollway-tag-team": "intruder",
            "x-tollway-business-line": "support",
        }
    )
    who = attribute(KEY, headers, body_user="body-user")
    assert (who.business_line, who.project, who.task_type, who.user) == (
        "marketing",
        "seo",
        "summarisation",
        "ada",
    )
    assert who.tags == {"team": "growth", "ticket": "T-42"}  # the key's own tags win


def test_openai_user_field_is_used_when_no_header() -> None:
    assert attribute(KEY, Headers({}), body_user="bob").user == "bob"


def test_a_key_can_lock_its_attribution() -> None:
    locked = Principal(**{**KEY.__dict__, "header_overrides": frozenset({"user"})})
    who = attribute(
        locked,
        Headers({"x-tollway-project": "seo", "x-tollway-tag-x": "1", "x-tollway-user": "ada"}),
    )
    assert (who.project, who.user, who.tags) == ("campaigns", "ada", {"team": "growth"})


def test_a_caller_may_turn_content_logging_off_for_its_call_but_not_on() -> None:
    logging_key = Principal(**{**KEY.__dict__, "log_content": True})
    assert attribute(logging_key, Headers({})).log_content is True
    assert attribute(KEY, Headers({})).log_content is None  # as the policy says
    for value in ("off", "OFF", "false", "0", "no"):
        headers = Headers({"x-tollway-log-content": value})
        assert attribute(logging_key, headers).log_content is False
    with pytest.raises(InvalidRequest, match="x-tollway-log-content takes 'off'"):
        attribute(KEY, Headers({"x-tollway-log-content": "on"}))


def test_a_calls_content_limit_follows_the_key_over_the_policy() -> None:
    on, off = LoggingPolicy(content=True, content_max_chars=2048), LoggingPolicy()
    assert [content_limit(off, _who(setting)) for setting in (None, True, False)] == [
        None,
        65_536,
        None,
    ]
    assert [content_limit(on, _who(setting)) for setting in (None, True, False)] == [
        2048,
        2048,
        None,
    ]


def _who(log_content: bool | None) -> Attribution:
    return attribute(Principal(**{**KEY.__dict__, "log_content": log_content}), Headers({}))


def test_a_session_is_named_by_tollways_header_or_a_coding_tools_own() -> None:
    def session(headers: list[tuple[bytes, bytes]]) -> str:
        return attribute(KEY, Headers(raw=headers)).session_id

    assert session([]) == ""
    claude = (b"x-claude-code-session-id", b"54c1eb09-bc4c-4d2f-98eb-6d2ab2d5e2fe")
    assert session([claude]) == "claude-code:54c1eb09-bc4c-4d2f-98eb-6d2ab2d5e2fe"
    assert session([(b"session-id", b"0199-abc")]) == "codex:0199-abc"
    assert session([(b"session_id", b"0199-abc")]) == "codex:0199-abc"
    assert session([claude, (b"x-tollway-session-id", b"run-7")]) == "run-7"  # tollway's wins
    assert session([(b"x-tollway-session-id", b" "), claude]).startswith("claude-code:")
    assert len(session([(b"session-id", b"x" * 500)])) == 128


def test_claude_codes_packed_user_id_gives_its_account_and_session() -> None:
    packed = '{"device_id":"d3v1ce","account_uuid":"acc-42","session_id":"54c1eb09-bc4c"}'
    who = attribute(KEY, Headers({}), body_user=packed)
    assert (who.user, who.session_id) == ("acc-42", "claude-code:54c1eb09-bc4c")
    no_account = '{"device_id":"d3v1ce","account_uuid":"","session_id":"s-1"}'
    assert attribute(KEY, Headers({}), body_user=no_account).user == "d3v1ce"
    legacy = "user_9f86d081884c_account_acc-7_session_57a121ec-f78c"
    who = attribute(KEY, Headers({}), body_user=legacy)
    assert (who.user, who.session_id) == ("acc-7", "claude-code:57a121ec-f78c")
    headed = Headers({"x-tollway-session-id": "run-1", "x-tollway-user": "ada"})
    assert (
        attribute(KEY, headed, body_user=packed).session_id,
        attribute(KEY, headed, body_user=packed).user,
    ) == ("run-1", "ada")
    for plain in ("bob", '{"not": "claude"}', "{broken", "user_x_account__session_"):
        who = attribute(KEY, Headers({}), body_user=plain)
        assert (who.user, who.session_id) == (plain, "")
