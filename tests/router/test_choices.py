"""OpenAI's `n` (several choices in one call) through the OpenAI SDK: the simulator and Gemini
(`candidateCount`) give them, plain and streamed, billed for every choice; OpenAI-compatible
upstreams get `n` as sent; Anthropic has no `n`, so a model there is refused by name and
skipped in a route."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import openai
import pytest

from .conftest import Stack
from .fakes import GEMINI_USAGE, TEXT, WORDS

pytestmark = pytest.mark.integration

PROMPT = [{"role": "user", "content": "Give me two taglines for the launch."}]


def _client(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)


async def _plain(stack: Stack, model: str, n: int) -> tuple[list[str], Any, str]:
    raw = await _client(stack).chat.completions.with_raw_response.create(
        model=model, messages=PROMPT, n=n
    )
    reply = raw.parse()
    assert [c.index for c in reply.choices] == list(range(n))
    return (
        [c.message.content or "" for c in reply.choices],
        reply.usage,
        raw.headers["x-tollway-event-id"],
    )


async def _streamed(stack: Stack, model: str, n: int) -> tuple[list[str], Any, str]:
    raw = await _client(stack).chat.completions.with_raw_response.create(
        model=model, messages=PROMPT, n=n, stream=True, stream_options={"include_usage": True}
    )
    texts = [""] * n
    finished: set[int] = set()
    usage = None
    async for chunk in raw.parse():
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == set(range(n))
    return texts, usage, raw.headers["x-tollway-event-id"]


async def test_the_simulator_gives_n_choices_billed_alike_streamed_or_not(stack: Stack) -> None:
    plain, plain_usage, plain_id = await _plain(stack, "gpt-4o-mini", 3)
    streamed, streamed_usage, streamed_id = await _streamed(stack, "gpt-4o-mini", 3)
    assert len(set(plain)) == 3  # three different answers
    assert streamed == plain
    assert plain_usage.completion_tokens == sum(len(t.split()) for t in plain)
    assert streamed_usage.completion_tokens == plain_usage.completion_tokens

    one, _, _ = await _plain(stack, "gpt-4o-mini", 1)
    assert one == plain[:1]  # the first choice is the answer without `n`

    plain_row, streamed_row = await stack.row(plain_id), await stack.row(streamed_id)
    assert (
        plain_row["output_tokens"] == streamed_row["output_tokens"] == plain_usage.completion_tokens
    )
    expected = stack.expected_cost(
        "gpt-4o-mini", plain_usage.prompt_tokens, plain_usage.completion_tokens
    )
    assert Decimal(plain_row["cost"]) == Decimal(streamed_row["cost"]) == expected


async def test_gemini_gives_a_choice_per_candidate(stack: Stack) -> None:
    requests = stack.fakes["gemini"].state.requests
    seen = len(requests)
    plain, usage, event_id = await _plain(stack, "gemini-2.0-flash", 2)
    streamed, streamed_usage, _ = await _streamed(stack, "gemini-2.0-flash", 2)
    assert plain == streamed == [TEXT, TEXT]
    assert [r["body"]["generationConfig"]["candidateCount"] for r in requests[seen:]] == [2, 2]
    output = 2 * len(WORDS) + GEMINI_USAGE["thoughts"]
    assert usage.completion_tokens == streamed_usage.completion_tokens == output
    assert (await stack.row(event_id))["output_tokens"] == output


async def test_openai_compatible_upstreams_get_n_as_sent(stack: Stack) -> None:
    requests = stack.fakes["openai"].state.requests
    seen = len(requests)
    await _client(stack).chat.completions.create(model="gpt-4o", messages=PROMPT, n=2)
    assert requests[seen]["body"]["n"] == 2


async def test_anthropic_has_no_n(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await _client(stack).chat.completions.create(model="claude-sonnet-4", messages=PROMPT, n=2)
    assert "one choice a call" in refused.value.message
    texts, _, event_id = await _plain(stack, "choices", 2)  # a route: its fallback serves
    assert len(texts) == 2
    row = await stack.row(event_id)
    assert (row["route"], row["model"]) == ("choices", "gpt-4o-mini")
