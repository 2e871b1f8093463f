"""Who pays: key metadata, refined by headers only where the key allows it."""

from __future__ import annotations

from starlette.datastructures import Headers

from router.attribution import attribute
from tollway.auth import Principal

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
