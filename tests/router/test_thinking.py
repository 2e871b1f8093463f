"""Extended thinking through tollway with the Anthropic SDK, the way coding tools use it: the
`thinking` setting reaches an Anthropic upstream, the thinking comes back (plain and streamed,
with its signature), and a conversation with tools sends the signed thinking back unchanged,
which Anthropic insists on; an OpenAI upstream sees none of it."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from .conftest import Stack
from .fakes import TEXT, THINKING_BLOCK

pytestmark = pytest.mark.integration

THINKING = {"type": "enabled", "budget_tokens": 1024}
HELLO = [{"role": "user", "content": "Hello upstream"}]


def _claude(stack: Stack) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=stack.base_url, api_key=stack.key, max_retries=0)


def _sent(stack: Stack, fake: str) -> dict[str, Any]:
    return stack.fakes[fake].state.requests[-1]["body"]  # type: ignore[no-any-return]


async def test_thinking_comes_back_with_its_signature(stack: Stack) -> None:
    plain = await _claude(stack).messages.create(
        model="claude-sonnet-4",
        max_tokens=2048,
        thinking=THINKING,
        messages=HELLO,  # type: ignore[arg-type]
    )
    assert _sent(stack, "anthropic")["thinking"] == THINKING
    assert [b.type for b in plain.content] == ["thinking", "text"]
    assert plain.content[0].model_dump() == THINKING_BLOCK
    assert plain.content[1].text == TEXT  # type: ignore[union-attr]

    async with _claude(stack).messages.stream(
        model="claude-sonnet-4",
        max_tokens=2048,
        thinking=THINKING,
        messages=HELLO,  # type: ignore[arg-type]
    ) as stream:
        streamed = await stream.get_final_message()
    assert [b.type for b in streamed.content] == ["thinking", "text"]
    assert streamed.content[0].model_dump() == THINKING_BLOCK  # thinking and signature deltas
    assert streamed.content[1].text == TEXT  # type: ignore[union-attr]


async def test_a_tool_conversation_sends_the_signed_thinking_back(stack: Stack) -> None:
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    first = await _claude(stack).messages.create(
        model="claude-sonnet-4",
        max_tokens=2048,
        thinking=THINKING,
        messages=HELLO,
        tools=tools,  # type: ignore[arg-type]
    )
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    tool_use = first.content[1]
    history = [
        *HELLO,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "found"}],
        },  # type: ignore[union-attr]
    ]
    second = await _claude(stack).messages.create(
        model="claude-sonnet-4",
        max_tokens=2048,
        thinking=THINKING,
        messages=history,
        tools=tools,  # type: ignore[arg-type]
    )
    assert second.content[0].type == "thinking"  # the fake refuses a turn without it (a 400)
    sent_turn = _sent(stack, "anthropic")["messages"][1]
    assert sent_turn["content"][0] == THINKING_BLOCK


async def test_openai_callers_read_the_thinking_as_reasoning_content(stack: Stack) -> None:
    client = openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)
    plain = await client.chat.completions.create(
        model="claude-sonnet-4",
        messages=HELLO,
        extra_body={"thinking": THINKING},  # type: ignore[arg-type]
    )
    assert (plain.choices[0].message.model_extra or {})["reasoning_content"] == THINKING_BLOCK[
        "thinking"
    ]
    stream = await client.chat.completions.create(
        model="claude-sonnet-4",
        messages=HELLO,
        stream=True,
        extra_body={"thinking": THINKING},  # type: ignore[arg-type]
    )
    deltas = [c.choices[0].delta for c in [chunk async for chunk in stream] if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert reasoning == THINKING_BLOCK["thinking"]
    assert not any("thinking" in (d.model_extra or {}) for d in deltas)
    assert "".join(d.content or "" for d in deltas) == TEXT


async def test_an_openai_upstream_sees_no_thinking(stack: Stack) -> None:
    history = [
        *HELLO,
        {"role": "assistant", "content": [THINKING_BLOCK, {"type": "text", "text": "Hi."}]},
        {"role": "user", "content": "And again?"},
    ]
    reply = await _claude(stack).messages.create(
        model="gpt-4o",
        max_tokens=2048,
        thinking=THINKING,
        messages=history,  # type: ignore[arg-type]
    )
    assert reply.content[0].type == "text"
    sent = json.dumps(_sent(stack, "openai"))
    assert "thinking" not in sent and "sig-fake" not in sent
