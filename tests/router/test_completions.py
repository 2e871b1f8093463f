"""OpenAI's legacy completions API with the OpenAI SDK and LangChain's `OpenAI` LLM class: a
prompt answered by any model or route, plain and streamed, billed as one event with
`endpoint = 'completions'`; what chat models cannot do is a clear 400."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import openai
import pytest
from langchain_openai import OpenAI
from pydantic import SecretStr

from .conftest import Stack
from .fakes import TEXT

pytestmark = pytest.mark.integration


def _client(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)


async def test_a_prompt_is_answered_by_any_provider_and_billed(stack: Stack) -> None:
    raw = await _client(stack).completions.with_raw_response.create(
        model="claude-sonnet-4", prompt="Say hello", max_tokens=40
    )
    answer = raw.parse()
    assert answer.object == "text_completion"
    assert [c.text for c in answer.choices] == [TEXT]
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.total_tokens > 0
    sent = stack.fakes["anthropic"].state.requests[-1]["body"]  # type: ignore[attr-defined]
    assert (sent["messages"], sent["max_tokens"]) == (
        [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}],
        40,
    )

    row = await stack.row(raw.headers["x-tollway-event-id"])
    assert (row["endpoint"], row["model"], row["status"]) == (
        "completions",
        "claude-sonnet-4",
        "ok",
    )
    assert Decimal(row["cost"]) == stack.expected_cost(
        "claude-sonnet-4", answer.usage.prompt_tokens, answer.usage.completion_tokens,
        cached=row["cached_input_tokens"], writes=row["cache_write_tokens"],
    )  # fmt: skip
    assert row["cached_input_tokens"] > 0  # the fake's cache reads, billed as such


async def test_streamed_with_usage_and_several_choices(stack: Stack) -> None:
    stream = await _client(stack).completions.create(
        model="gpt-4o", prompt="Say hello", stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == TEXT
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.object == "text_completion" for c in chunks)

    several = await _client(stack).completions.create(model="gpt-4o-mini", prompt="Hi", n=2)
    assert sorted(c.index for c in several.choices) == [0, 1]
    assert all(c.text for c in several.choices)


async def test_langchain_openai_llm(stack: Stack) -> None:
    llm = OpenAI(
        base_url=f"{stack.base_url}/v1", api_key=SecretStr(stack.key), model="gpt-4o",
        max_retries=0, max_tokens=64,
    )  # fmt: skip
    assert await llm.ainvoke("Say hello") == TEXT
    assert "".join([part async for part in llm.astream("Say hello")]) == TEXT


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"suffix": "}"}, "suffix"),
        ({"echo": True}, "echo"),
        ({"logprobs": 2}, "logprobs"),
        ({"best_of": 3}, "best_of"),
    ],
)
async def test_what_chat_models_cannot_do_is_a_clear_400(
    stack: Stack, extra: dict[str, Any], param: str
) -> None:
    request = {"model": "gpt-4o-mini", "prompt": "Say hello", **extra}
    with pytest.raises(openai.BadRequestError) as refused:
        await _client(stack).completions.create(**request)
    assert param in refused.value.message
