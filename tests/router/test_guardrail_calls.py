"""Guardrails as SDK users meet them, in front of fake OpenAI and Anthropic upstreams: a secret
in a prompt is refused with a 400 in the caller's protocol and never reaches the provider; an
email or card number reaches it redacted, streamed or not, in chat and embeddings; an answer's
match is redacted before the caller gets it, or only marked in a stream that already has; every
guardrail that matched is in the call's ledger row. Real Tansu broker, worker and chDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.router.conftest import Stack, _config, fake_apps, run_stack
from tollway.config.schema import TollwayConfig

pytestmark = pytest.mark.integration

AWS = "AKIAIOSFODNN7EXAMPLE"
GUARDRAILS = [
    {"id": "no-secrets", "detect": ["secrets"], "action": "block"},
    {"id": "pii", "detect": ["email", "credit_card"], "action": "redact"},
    {"id": "bluebird", "patterns": [r"(?i)project\s+bluebird"], "action": "flag",
     "scope": {"project": "gateway"}},
    # the fake upstreams answer "fake upstream answers in its own wire format"
    {"id": "wire", "patterns": ["wire format"], "action": "redact", "applies_to": ["answer"]},
]  # fmt: skip


@pytest.fixture(scope="module")
async def guarded(
    kafka_bootstrap: str, chdb_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    def config(urls: dict[str, str]) -> TollwayConfig:
        plain = _config(urls).model_dump(mode="json", exclude_none=True)
        return TollwayConfig.model_validate({**plain, "guardrails": GUARDRAILS})

    async with run_stack(
        kafka_bootstrap, chdb_path, tmp_path_factory.mktemp("guarded"), fake_apps(), config
    ) as running:
        yield running


def _last_body(stack: Stack, fake: str) -> dict[str, Any]:
    return stack.fakes[fake].state.requests[-1]["body"]  # type: ignore[attr-defined, no-any-return]


def _openai(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)


async def test_personal_data_reaches_the_provider_redacted(guarded: Stack) -> None:
    prompt = "Project Bluebird: write to jane@example.com about card 4111 1111 1111 1111."
    answer = await _openai(guarded).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}]
    )
    assert answer.status_code == 200
    sent = _last_body(guarded, "openai")["messages"][0]["content"]
    assert sent == (
        "Project Bluebird: write to [REDACTED:email] about card [REDACTED:credit_card]."
    )
    row = await guarded.row(answer.headers["x-tollway-event-id"])
    assert (row["status"], list(row["guardrails"])) == ("ok", ["pii", "bluebird", "wire"])
    assert answer.headers["x-tollway-guardrails"] == "pii,bluebird,wire"  # the caller sees it
    # and the answer reached the caller with the answer guardrail's match redacted
    said = answer.parse().choices[0].message.content
    assert said == "fake upstream answers in its own [REDACTED:pattern]"
    # zero data retention by default: no prompt or answer in the ledger
    assert (row["request_content"], row["response_content"]) == (None, None)


async def test_a_stream_and_an_embedding_are_redacted_too(guarded: Stack) -> None:
    client = _openai(guarded)
    stream = await client.chat.completions.create(
        model="gpt-4o", stream=True,
        messages=[{"role": "user", "content": "ping ops@example.org"}],
    )  # fmt: skip
    said = "".join(
        [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    )
    assert _last_body(guarded, "openai")["messages"][0]["content"] == "ping [REDACTED:email]"
    assert said == "fake upstream answers in its own wire format"  # streamed before it was read
    [streamed] = await guarded.rows_where("stream AND has(guardrails, 'wire')", 1)
    assert list(streamed["guardrails"]) == ["pii", "wire"]  # so it is marked

    embedded = await client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["plain", "card 5500-0000-0000-0004"]
    )
    assert _last_body(guarded, "openai")["input"] == ["plain", "card [REDACTED:credit_card]"]
    row = await guarded.row(embedded.headers["x-tollway-event-id"])
    assert list(row["guardrails"]) == ["pii"]


async def test_a_secret_is_refused_in_each_protocol_and_never_sent(guarded: Stack) -> None:
    sent_before = len(guarded.fakes["anthropic"].state.requests)  # type: ignore[attr-defined]
    claude = anthropic.AsyncAnthropic(base_url=guarded.base_url, api_key=guarded.key, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as refused:
        async with claude.messages.stream(
            model="claude-sonnet-4", max_tokens=50,
            messages=[{"role": "user", "content": f"my key is {AWS}, why is S3 denied?"}],
        ) as stream:  # fmt: skip
            await stream.get_final_message()
    error = refused.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == (
        "blocked by guardrail no-secrets: the request contains an AWS access key id"
    )
    assert AWS not in str(refused.value.body)
    assert len(guarded.fakes["anthropic"].state.requests) == sent_before  # type: ignore[attr-defined]

    with pytest.raises(openai.BadRequestError) as on_openai:
        await _openai(guarded).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"use {AWS}"}]
        )
    assert on_openai.value.code == "guardrail_blocked"

    rows = await guarded.rows_where("has(guardrails, 'no-secrets')", 2)
    assert len(rows) == 2
    assert {(r["status"], r["error_code"], r["http_status"], r["cost"]) for r in rows} == {
        ("blocked", "guardrail_blocked", 400, "0")
    }
    assert {r["endpoint"] for r in rows} == {"messages", "chat.completions"}


async def test_counting_tokens_shows_anthropic_only_what_the_guardrails_let_through(
    guarded: Stack,
) -> None:
    claude = anthropic.AsyncAnthropic(base_url=guarded.base_url, api_key=guarded.key, max_retries=0)
    await claude.messages.count_tokens(
        model="claude-sonnet-4", messages=[{"role": "user", "content": "reply to bo@example.com"}]
    )
    sent = _last_body(guarded, "anthropic")
    assert sent["messages"][0]["content"] in (
        "reply to [REDACTED:email]",
        [{"type": "text", "text": "reply to [REDACTED:email]"}],
    )
    sent_before = len(guarded.fakes["anthropic"].state.requests)  # type: ignore[attr-defined]
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.count_tokens(
            model="claude-sonnet-4", messages=[{"role": "user", "content": f"key {AWS}"}]
        )
    assert "guardrail no-secrets" in str(refused.value)
    assert len(guarded.fakes["anthropic"].state.requests) == sent_before  # type: ignore[attr-defined]
