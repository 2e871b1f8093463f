"""JSON mode (`response_format`) through the OpenAI SDK to every provider: OpenAI-compatible
upstreams get it as sent, Gemini as `responseMimeType` / `responseJsonSchema`, and Anthropic,
which has no such field, through a forced tool whose input is the answer (plain and streamed)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from router.translate.anthropic_upstream import JSON_TOOL

from .conftest import Stack
from .fakes import TOOL_ARGS

pytestmark = pytest.mark.integration

PROMPT = [{"role": "user", "content": "Which city? Answer in JSON."}]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "city", "schema": SCHEMA, "strict": True},
}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


def _client(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)


def _sent(stack: Stack, fake: str, seen: int) -> list[dict[str, Any]]:
    return [r["body"] for r in stack.fakes[fake].state.requests[seen:]]


@pytest.mark.parametrize("response_format", [{"type": "json_object"}, JSON_SCHEMA])
async def test_anthropic_answers_json_through_a_forced_tool(
    stack: Stack, response_format: dict[str, Any]
) -> None:
    seen = len(stack.fakes["anthropic"].state.requests)
    client = _client(stack)
    reply = await client.chat.completions.create(
        model="claude-sonnet-4", messages=PROMPT, response_format=response_format
    )
    choice = reply.choices[0]
    assert json.loads(choice.message.content or "") == TOOL_ARGS
    assert (choice.finish_reason, choice.message.tool_calls) == ("stop", None)

    stream = await client.chat.completions.create(
        model="claude-sonnet-4", messages=PROMPT, response_format=response_format, stream=True
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == TOOL_ARGS
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"

    for sent in _sent(stack, "anthropic", seen):
        (tool,) = sent["tools"]
        assert tool["name"] == JSON_TOOL
        assert tool["input_schema"] == (
            SCHEMA if response_format is JSON_SCHEMA else {"type": "object"}
        )
        assert sent["tool_choice"] == {"type": "tool", "name": JSON_TOOL}


async def test_anthropic_with_tools_of_its_own_may_call_them_or_answer_in_json(
    stack: Stack,
) -> None:
    seen = len(stack.fakes["anthropic"].state.requests)
    reply = await _client(stack).chat.completions.create(
        model="claude-sonnet-4", messages=PROMPT, tools=[WEATHER], response_format=JSON_SCHEMA
    )
    (sent,) = _sent(stack, "anthropic", seen)
    assert [t["name"] for t in sent["tools"]] == ["get_weather", JSON_TOOL]
    assert sent["tool_choice"] == {"type": "any"}
    calls = reply.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather"]  # the fake calls the first tool


async def test_anthropic_refuses_a_schema_that_is_not_an_object(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await _client(stack).chat.completions.create(
            model="claude-sonnet-4",
            messages=PROMPT,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "n", "schema": {"type": "array"}},
            },
        )
    assert "root is an object" in refused.value.message


async def test_gemini_and_openai_get_json_mode_in_their_own_fields(stack: Stack) -> None:
    seen_gemini = len(stack.fakes["gemini"].state.requests)
    seen_openai = len(stack.fakes["openai"].state.requests)
    client = _client(stack)
    await client.chat.completions.create(
        model="gemini-2.0-flash", messages=PROMPT, response_format=JSON_SCHEMA
    )
    await client.chat.completions.create(
        model="gemini-2.0-flash", messages=PROMPT, response_format={"type": "json_object"}
    )
    await client.chat.completions.create(
        model="gpt-4o", messages=PROMPT, response_format=JSON_SCHEMA
    )
    schema_call, object_call = _sent(stack, "gemini", seen_gemini)
    assert schema_call["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": SCHEMA,
    }
    assert object_call["generationConfig"] == {"responseMimeType": "application/json"}
    (openai_call,) = _sent(stack, "openai", seen_openai)
    assert openai_call["response_format"] == JSON_SCHEMA
