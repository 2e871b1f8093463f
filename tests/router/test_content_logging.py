"""`logging.content: true` as an operator meets it: the ledger row of an answered call holds the
prompt as sent (after the guardrails' redactions) and the answer, streamed or not, from the
provider or the response cache; a huge prompt is clipped; a refused call holds nothing; and
with the default policy no row holds any text. A key's own `log_content` overrides the policy
either way, and a caller's `x-tollway-log-content: off` keeps its call out of the log. Real
Tansu broker, worker and chDB, fake OpenAI upstream, the OpenAI and Anthropic SDKs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.router.conftest import Stack, _config, fake_apps, run_stack
from tests.router.fakes import TEXT
from tollway.config.schema import TollwayConfig

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def logged(
    kafka_bootstrap: str, chdb_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    def config(urls: dict[str, str]) -> TollwayConfig:
        plain = _config(urls).model_dump(mode="json", exclude_none=True)
        return TollwayConfig.model_validate(
            {
                **plain,
                "logging": {"content": True, "content_max_chars": 2048},
                "guardrails": [
                    {"id": "pii", "detect": ["email"], "action": "redact"},
                    {"id": "words", "patterns": ["forbidden"], "action": "block"},
                ],
                "cache": {"enabled": True},
            }
        )

    async with run_stack(
        kafka_bootstrap, chdb_path, tmp_path_factory.mktemp("logged"), fake_apps(), config
    ) as running:
        yield running


ADMIN = {"authorization": "Bearer tw-router-admin"}


def _client(stack: Stack, key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{stack.base_url}/v1", api_key=key or stack.key, max_retries=0
    )


async def _new_key(stack: Stack, **fields: object) -> tuple[str, str]:
    """A key created through the admin API: its id and secret."""
    async with httpx.AsyncClient(base_url=stack.base_url, headers=ADMIN) as admin:
        body = {"business_line": "eng", "project": "gateway", **fields}
        created = (await admin.post("/v1/admin/keys", json=body)).raise_for_status().json()
    return created["record"]["id"], created["key"]


async def _call(stack: Stack, key: str | None = None, **headers: str) -> dict[str, object]:
    """One chat call (the cache skipped); its ledger row."""
    answer = await _client(stack, key).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Say hello."}],
        extra_headers={"x-tollway-cache": "skip", **headers},
    )
    return await stack.row(answer.headers["x-tollway-event-id"])


async def test_a_call_keeps_its_prompt_as_sent_and_its_answer(logged: Stack) -> None:
    answer = await _client(logged).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Greet ann@example.com"}],
        extra_headers={"x-tollway-cache": "skip"},
    )  # fmt: skip
    row = await logged.row(answer.headers["x-tollway-event-id"])
    sent = orjson.loads(row["request_content"])
    assert sent["messages"] == [{"role": "user", "content": "Greet [REDACTED:email]"}]
    assert "ann@example.com" not in row["request_content"]
    assert orjson.loads(row["response_content"]) == [{"role": "assistant", "content": TEXT}]


async def test_a_stream_and_a_cached_answer_keep_theirs(logged: Stack) -> None:
    client = _client(logged)
    messages = [{"role": "user", "content": "Tell me a short story."}]
    stream = await client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=messages,
        stream=True,  # type: ignore[arg-type]
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream.parse() if c.choices])
    streamed = await logged.row(stream.headers["x-tollway-event-id"])
    assert orjson.loads(streamed["response_content"])[0]["content"] == text == TEXT

    first = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=messages
    )  # type: ignore[arg-type]
    again = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=messages
    )  # type: ignore[arg-type]
    assert again.headers["x-tollway-cache"] == "hit"
    for response in (first, again):
        row = await logged.row(response.headers["x-tollway-event-id"])
        assert orjson.loads(row["request_content"])["messages"] == messages
        assert orjson.loads(row["response_content"])[0]["content"] == TEXT


async def test_a_huge_prompt_is_clipped_and_a_refused_call_keeps_nothing(logged: Stack) -> None:
    client = _client(logged)
    huge = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "word " * 2000}]
    )
    row = await logged.row(huge.headers["x-tollway-event-id"])
    assert len(row["request_content"]) < 2100
    assert row["request_content"].endswith("more characters]")

    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "a forbidden word"}]
        )
    [refused] = await logged.rows_where("has(guardrails, 'words')", 1)
    assert refused["status"] == "blocked"
    assert (refused["request_content"], refused["response_content"]) == (None, None)


async def test_a_caller_or_its_key_keeps_calls_out_of_the_log(logged: Stack) -> None:
    assert (await _call(logged))["request_content"] is not None  # the policy logs
    off = await _call(logged, **{"x-tollway-log-content": "off"})
    assert (off["request_content"], off["response_content"]) == (None, None)

    stream = await _client(logged).chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Tell me a short story."}],
        stream=True,  # type: ignore[arg-type]
        extra_headers={"x-tollway-log-content": "off"},
    )
    assert [chunk async for chunk in stream.parse()]
    streamed = await logged.row(stream.headers["x-tollway-event-id"])
    assert (streamed["request_content"], streamed["response_content"]) == (None, None)

    _, private = await _new_key(logged, log_content=False)
    row = await _call(logged, private)
    assert (row["request_content"], row["response_content"]) == (None, None)


async def test_a_caller_cannot_turn_content_logging_on(logged: Stack) -> None:
    with pytest.raises(openai.BadRequestError, match="x-tollway-log-content takes 'off'"):
        await _client(logged).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Log me."}],
            extra_headers={"x-tollway-log-content": "on"},
        )
    messages = anthropic.AsyncAnthropic(base_url=logged.base_url, api_key=logged.key).messages
    with pytest.raises(anthropic.BadRequestError, match="x-tollway-log-content takes 'off'"):
        await messages.create(
            model="claude-sonnet-4",
            max_tokens=16,
            messages=[{"role": "user", "content": "Log me."}],
            extra_headers={"x-tollway-log-content": "yes"},
        )


async def test_a_key_logs_its_calls_under_a_policy_that_logs_nothing(stack: Stack) -> None:
    assert not stack.config.logging.content
    assert (await _call(stack))["request_content"] is None  # zero data retention by default
    key_id, secret = await _new_key(stack, log_content=True)
    row = await _call(stack, secret)
    assert orjson.loads(row["request_content"])["messages"][0]["content"] == "Say hello."
    [answer] = orjson.loads(row["response_content"])
    assert answer["role"] == "assistant" and answer["content"]

    async with httpx.AsyncClient(base_url=stack.base_url, headers=ADMIN) as admin:
        listed = await admin.get("/v1/analytics/calls", params={"key_id": key_id})
        [shown] = listed.json()["calls"]  # an admin reads the content the key logged
        assert shown["request_content"] == row["request_content"]
        back = await admin.patch(f"/v1/admin/keys/{key_id}", json={"log_content": None})
        assert back.json()["log_content"] is None
    assert (await _call(stack, secret))["request_content"] is None  # the policy again
