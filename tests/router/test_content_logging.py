"""`logging.content: true` as an operator meets it: the ledger row of an answered call holds the
prompt as sent (after the guardrails' redactions) and the answer, streamed or not, from the
provider or the response cache; a huge prompt is clipped; a refused call holds nothing; and
with the default policy no row holds any text. Real Tansu broker, worker and chDB, fake
OpenAI upstream, the OpenAI SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

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


def _client(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)


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
