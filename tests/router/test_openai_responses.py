"""OpenAI's Responses API through tollway with the official SDK (`client.responses`): plain and
streamed, function tools across providers, the request's settings echoed, one ledger row per
call, and clear 400s for what tollway does not keep or cannot translate."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import openai
import pytest

from .conftest import Stack
from .fakes import TEXT, TOOL_ARGS

pytestmark = pytest.mark.integration

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _client(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)


async def test_plain_and_streamed_answers_are_the_same_and_billed(stack: Stack) -> None:
    client = _client(stack)
    raw = await client.responses.with_raw_response.create(
        model="gpt-4o-mini", instructions="Be brief.", input="Hello there", max_output_tokens=400
    )
    plain = raw.parse()
    assert plain.status == "completed" and plain.output_text
    assert plain.id == "resp_" + raw.headers["x-tollway-event-id"].replace("-", "")
    assert plain.usage is not None and plain.usage.output_tokens == len(plain.output_text.split())

    async with client.responses.stream(
        model="gpt-4o-mini", instructions="Be brief.", input="Hello there", max_output_tokens=400
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert final.output_text == plain.output_text
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed" and "response.output_text.delta" in kinds
    assert final.usage is not None and final.usage.output_tokens == plain.usage.output_tokens

    row = await stack.row(raw.headers["x-tollway-event-id"])
    assert (row["endpoint"], row["model"], row["status"]) == ("responses", "gpt-4o-mini", "ok")
    assert Decimal(row["cost"]) == stack.expected_cost(
        "gpt-4o-mini", plain.usage.input_tokens, plain.usage.output_tokens
    )


async def test_a_capped_answer_is_incomplete(stack: Stack) -> None:
    reply = await _client(stack).responses.create(
        model="gpt-4o-mini", input="Hi", max_output_tokens=3
    )
    assert reply.status == "incomplete"
    assert (
        reply.incomplete_details is not None
        and reply.incomplete_details.reason == "max_output_tokens"
    )


async def test_function_tools_round_trip_to_an_anthropic_model(stack: Stack) -> None:
    client = _client(stack)
    first = await client.responses.create(
        model="claude-sonnet-4",
        input="Weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
    )
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == TOOL_ARGS
    history: list[Any] = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "type": "function_call",
            "call_id": call.call_id,
            "name": call.name,
            "arguments": call.arguments,
        },
        {"type": "function_call_output", "call_id": call.call_id, "output": "18 C, sunny"},
    ]
    await client.responses.create(model="claude-sonnet-4", input=history, tools=[WEATHER])  # type: ignore[list-item]
    sent = stack.fakes["anthropic"].state.requests[-1]["body"]["messages"]
    assert (
        sent[1]["content"][0]["type"] == "tool_use" and sent[1]["content"][0]["id"] == call.call_id
    )
    assert sent[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": call.call_id,
        "content": "18 C, sunny",
    }


async def test_a_streamed_function_call_arrives_whole(stack: Stack) -> None:
    async with _client(stack).responses.stream(
        model="gpt-4o",
        input="Weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert json.loads(call.arguments) == TOOL_ARGS
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-1] == "response.completed"


async def test_text_from_an_upstream_reaches_the_output(stack: Stack) -> None:
    reply = await _client(stack).responses.create(
        model="gemini-2.0-flash",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Hello upstream"}]}],
    )
    assert reply.output_text == TEXT
    sent = stack.fakes["gemini"].state.requests[-1]["body"]
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "Hello upstream"}]}]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"previous_response_id": "resp_123"}, "keeps no responses"),
        ({"tools": [{"type": "web_search"}]}, "only function tools"),
        ({"input": [{"type": "input_file", "file_id": "file_1"}]}, "not supported"),
    ],
)
async def test_what_tollway_cannot_do_is_a_clear_400(
    stack: Stack, extra: dict[str, Any], message: str
) -> None:
    request = {"model": "gpt-4o-mini", "input": "Hi", **extra}
    with pytest.raises(openai.BadRequestError) as refused:
        await _client(stack).responses.create(**request)
    assert message in refused.value.message
