"""Prompt caching survives tollway: Anthropic's `cache_control` marks (on system blocks, content
blocks, tool results and tools) reach an Anthropic upstream where the caller put them, from the
Anthropic SDK and from the OpenAI SDK (marks on content parts); an OpenAI upstream gets none."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from .conftest import Stack

pytestmark = pytest.mark.integration

MARK = {"type": "ephemeral"}
TOOL = {
    "name": "lookup",
    "description": "Look a policy up",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    "cache_control": MARK,
}
SYSTEM = [
    {"type": "text", "text": "You answer questions about the travel policy."},
    {"type": "text", "text": "The policy: " + "rule " * 400, "cache_control": MARK},
]
MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "Can I fly business class?"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "business"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Over 6 hours only.", "cache_control": MARK},
        {"type": "text", "text": "And on a 4 hour flight?", "cache_control": MARK},
    ]},
]  # fmt: skip


def _claude(stack: Stack) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=stack.base_url, api_key=stack.key, max_retries=0)


def _last_sent(stack: Stack, fake: str) -> dict[str, Any]:
    return stack.fakes[fake].state.requests[-1]["body"]  # type: ignore[no-any-return]


async def _ask_with_marks(stack: Stack, model: str) -> None:
    await _claude(stack).messages.create(
        model=model,
        max_tokens=64,
        system=SYSTEM,  # type: ignore[arg-type]
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=[TOOL],  # type: ignore[list-item]
    )


async def test_marks_reach_an_anthropic_upstream_where_the_caller_put_them(stack: Stack) -> None:
    await _ask_with_marks(stack, "claude-sonnet-4")
    sent = _last_sent(stack, "anthropic")
    assert sent["system"] == SYSTEM
    assert sent["tools"][0]["cache_control"] == MARK
    result, question = sent["messages"][-1]["content"]
    assert (result["type"], result["cache_control"]) == ("tool_result", MARK)
    assert question == {"type": "text", "text": "And on a 4 hour flight?", "cache_control": MARK}
    assert "cache_control" not in json.dumps(sent["messages"][:-1])  # only where they were


async def test_an_openai_upstream_gets_no_marks(stack: Stack) -> None:
    await _ask_with_marks(stack, "gpt-4o")
    sent = _last_sent(stack, "openai")
    assert "cache_control" not in json.dumps(sent)
    assert sent["messages"][0]["content"][1]["text"].startswith("The policy:")


async def test_marks_on_openai_content_parts_reach_anthropic(stack: Stack) -> None:
    client = openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)
    await client.chat.completions.create(
        model="claude-sonnet-4",
        messages=[
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long rules", "cache_control": MARK}],
            },  # type: ignore[list-item,typeddict-unknown-key]
            {"role": "user", "content": "Hi"},
        ],
    )
    assert _last_sent(stack, "anthropic")["system"] == [
        {"type": "text", "text": "Long rules", "cache_control": MARK}
    ]


async def test_without_marks_the_system_prompt_stays_a_string(stack: Stack) -> None:
    await _claude(stack).messages.create(
        model="claude-sonnet-4",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert _last_sent(stack, "anthropic")["system"] == "Be brief.\n\nBe kind."
