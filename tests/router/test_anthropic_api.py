"""`POST /v1/messages` with the official Anthropic SDK, on the simulator and across protocols
(Anthropic SDK → OpenAI-served model), checked against the ledger."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import httpx
import pytest

from .conftest import Stack
from .fakes import TEXT, TOOL_ARGS

pytestmark = pytest.mark.integration

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _client(stack: Stack) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=stack.base_url, api_key=stack.key, max_retries=0)


async def test_messages_plain_on_the_simulator(stack: Stack) -> None:
    raw = await _client(stack).messages.with_raw_response.create(
        model="claude-3-5-haiku",
        max_tokens=200,
        system="You are terse.",
        messages=[{"role": "user", "content": "Say something about ledgers."}],
        metadata={"user_id": "u-42"},
    )
    message = await raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "claude-3-5-haiku"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.id.startswith("msg_")
    row = await stack.row(raw.headers["x-tollway-event-id"])
    assert row["endpoint"] == "messages" and not bool(row["stream"])
    assert row["user"] == "u-42"
    assert int(row["input_tokens"]) == message.usage.input_tokens
    assert int(row["output_tokens"]) == message.usage.output_tokens
    assert Decimal(row["cost"]) == Decimal(raw.headers["x-tollway-cost-usd"])


async def test_messages_max_tokens_maps_to_stop_reason(stack: Stack) -> None:
    message = await _client(stack).messages.create(
        model="claude-3-5-haiku",
        max_tokens=3,
        messages=[{"role": "user", "content": "A long answer please"}],
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


async def test_stream_helper_and_ledger(stack: Stack) -> None:
    client = _client(stack)
    request = {
        "model": "claude-3-5-haiku",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "Stream it please, Claude."}],
    }
    plain = await client.messages.create(**request)  # type: ignore[arg-type]
    async with client.messages.stream(**request) as stream:  # type: ignore[arg-type]
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == plain.content[0].text  # type: ignore[union-attr]
    assert final.content[0].text == plain.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens

    rows = await stack.rows_where(
        "endpoint = 'messages' AND stream AND model = 'claude-3-5-haiku'", 1
    )
    assert rows
    row = rows[-1]
    assert row["ttft_ms"] is not None and not bool(row["usage_estimated"])
    assert int(row["output_tokens"]) == plain.usage.output_tokens
    assert Decimal(row["cost"]) == stack.expected_cost(
        "claude-3-5-haiku", int(row["input_tokens"]), int(row["output_tokens"])
    )


async def test_stream_event_sequence(stack: Stack) -> None:
    """The exact wire sequence (the SDK hides `ping`, so read the raw SSE)."""
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        response = await http.post(
            "/v1/messages",
            headers={"x-api-key": stack.key, "anthropic-version": "2023-06-01"},
            json={
                "model": "claude-3-5-haiku",
                "max_tokens": 100,
                "messages": [{"role": "user", "content": "events"}],
                "stream": True,
            },
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [f.split("\n") for f in response.text.split("\n\n") if f]
    kinds = [lines[0].removeprefix("event: ") for lines in frames]
    payloads = [json.loads(lines[1].removeprefix("data: ")) for lines in frames]
    assert [p["type"] for p in payloads] == kinds
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[3:-3]) == {"content_block_delta"}
    deltas = payloads[3:-3]
    assert all(d["delta"]["type"] == "text_delta" for d in deltas)
    message_delta = payloads[-2]
    assert message_delta["delta"]["stop_reason"] == "end_turn"
    assert message_delta["usage"]["output_tokens"] == len(deltas)  # the sim: a word a token
    row = await stack.row(response.headers["x-tollway-event-id"])
    assert bool(row["stream"]) and row["endpoint"] == "messages"
    assert int(row["output_tokens"]) == len(deltas)


async def test_anthropic_sdk_to_openai_served_model_with_tools(stack: Stack) -> None:
    client = _client(stack)
    message = await client.messages.create(
        model="gpt-4o",  # served by the fake OpenAI upstream
        max_tokens=100,
        system="Use tools.",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == TOOL_ARGS
    sent = stack.fakes["openai"].state.requests[-1]["body"]
    assert sent["model"] == "gpt-4o-2024-08-06"
    assert sent["messages"][0] == {"role": "system", "content": "Use tools."}
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]
    assert sent["tool_choice"] == "required"
    # OpenAI usage → Anthropic usage: uncached input apart from cache reads
    assert message.usage.input_tokens == 21 - 5
    assert message.usage.cache_read_input_tokens == 5

    # the tool result goes back as an OpenAI tool message
    follow_up = await client.messages.create(
        model="gpt-4o",
        max_tokens=100,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [block.model_dump()]},  # type: ignore[union-attr]
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": block.id, "content": "18°C, sunny"}  # type: ignore[union-attr]
                ],
            },
        ],
    )
    assert follow_up.content[0].text == TEXT  # type: ignore[union-attr]
    sent = stack.fakes["openai"].state.requests[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == block.id  # type: ignore[union-attr]
    assert sent[2] == {"role": "tool", "tool_call_id": block.id, "content": "18°C, sunny"}  # type: ignore[union-attr]


async def test_anthropic_stream_from_openai_served_model(stack: Stack) -> None:
    client = _client(stack)
    async with client.messages.stream(
        model="gpt-4o", max_tokens=100, messages=[{"role": "user", "content": "stream across"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == TEXT
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 8
    assert final.usage.input_tokens == 21 - 5  # from message_delta's cumulative usage
    sent = stack.fakes["openai"].state.requests[-1]["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}

    async with client.messages.stream(
        model="gpt-4o",
        max_tokens=100,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == TOOL_ARGS


async def test_anthropic_errors_are_anthropic_shaped(stack: Stack) -> None:
    client = _client(stack)
    with pytest.raises(anthropic.NotFoundError) as not_found:
        await client.messages.create(
            model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert not_found.value.body["type"] == "error"  # type: ignore[index]
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        response = await http.post(
            "/v1/messages",
            headers={"x-api-key": stack.key, "anthropic-version": "2023-06-01"},
            json={"model": "claude-3-5-haiku", "messages": [{"role": "user", "content": "x"}]},
        )
        assert response.status_code == 400  # max_tokens is required, as on Anthropic
        assert response.json()["type"] == "error"
        assert "max_tokens" in response.json()["error"]["message"]
        response = await http.post(
            "/v1/messages",
            headers={"x-api-key": "wrong", "anthropic-version": "2023-06-01"},
            json={"model": "x", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]},
        )
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
