"""Extended thinking through tollway with the Anthropic SDK, the way coding tools use it: the
`thinking` setting reaches an Anthropic upstream, the thinking comes back (plain and streamed,
with its signature), and a conversation with tools sends the signed thinking back unchanged,
which Anthropic insists on; an OpenAI upstream sees none of it."""

from __future__ import annotations

import json
from typing import Any

import anthropic
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
