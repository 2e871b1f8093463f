"""LangChain's `ChatOpenAI` pointed at tollway: only the base URL and the key change.

invoke, stream and tool binding, each checked against what the fake upstream sent and against
the call's ledger row (tokens and cost from the catalogue). `include_response_headers` hands
back tollway's `x-tollway-*` headers, the event id among them.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from .conftest import Stack
from .fakes import ANTHROPIC_USAGE, OPENAI_USAGE, TEXT, TOOL_ARGS, WORDS

pytestmark = pytest.mark.integration


def _chat(stack: Stack, model: str, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=f"{stack.base_url}/v1",
        api_key=SecretStr(stack.key),
        model=model,
        max_retries=0,
        include_response_headers=True,
        **options,
    )


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


def _joined(chunks: list[Any]) -> AIMessageChunk:
    """A stream's chunks added up into one message, as LangChain does it."""
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert isinstance(whole, AIMessageChunk)
    return whole


async def _billed(stack: Stack, headers: dict[str, str], model: str) -> dict[str, Any]:
    """The call's ledger row, checked for tokens and a cost that matches the catalogue."""
    row = await stack.row(headers["x-tollway-event-id"])
    assert row["model"] == model and row["status"] == "ok"
    assert int(row["input_tokens"]) > 0 and int(row["output_tokens"]) > 0
    cost = Decimal(row["cost"])
    assert cost > 0
    assert cost == stack.expected_cost(
        model,
        int(row["input_tokens"]),
        int(row["output_tokens"]),
        int(row["cached_input_tokens"]),
        int(row["cache_write_tokens"]),
    )
    return row


async def test_invoke(stack: Stack) -> None:
    reply = await _chat(stack, "gpt-4o").ainvoke("Hello from LangChain")
    assert reply.content == TEXT
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == OPENAI_USAGE["prompt"]
    assert reply.usage_metadata["output_tokens"] == len(WORDS)
    headers = reply.response_metadata["headers"]
    assert headers["x-tollway-model"] == "gpt-4o"
    assert Decimal(headers["x-tollway-cost-usd"]) > 0
    sent = stack.fakes["openai"].state.requests[-1]["body"]
    assert sent["model"] == "gpt-4o-2024-08-06"
    assert sent["messages"][-1]["content"] == "Hello from LangChain"

    row = await _billed(stack, headers, "gpt-4o")
    assert int(row["input_tokens"]) == OPENAI_USAGE["prompt"]
    assert int(row["cached_input_tokens"]) == OPENAI_USAGE["cached"]
    assert Decimal(row["cost"]) == Decimal(headers["x-tollway-cost-usd"])


async def test_invoke_from_sync_code(stack: Stack) -> None:
    """The synchronous client, as most LangChain code calls it (in a thread: the stack serves
    from this test's event loop)."""
    reply = await asyncio.to_thread(_chat(stack, "gpt-4o-mini").invoke, "Summarise the ledger")
    assert isinstance(reply.content, str) and reply.content
    assert reply.response_metadata["headers"]["x-tollway-provider"] == "sim"
    await _billed(stack, reply.response_metadata["headers"], "gpt-4o-mini")


async def test_stream(stack: Stack) -> None:
    chunks = [
        chunk
        async for chunk in _chat(stack, "gpt-4o", stream_usage=True).astream("Stream it, please")
    ]
    assert len(chunks) > len(WORDS)  # word by word, not one block
    whole = _joined(chunks)
    assert whole.content == TEXT
    assert whole.usage_metadata is not None
    assert whole.usage_metadata["input_tokens"] == OPENAI_USAGE["prompt"]
    assert whole.usage_metadata["output_tokens"] == len(WORDS)
    sent = stack.fakes["openai"].state.requests[-1]["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}

    headers = next(
        c.response_metadata["headers"] for c in chunks if "headers" in c.response_metadata
    )
    row = await _billed(stack, headers, "gpt-4o")
    assert bool(row["stream"]) and not bool(row["usage_estimated"])
    assert int(row["output_tokens"]) == len(WORDS)


async def test_bound_tools_are_called(stack: Stack) -> None:
    chat = _chat(stack, "gpt-4o").bind_tools([get_weather])
    reply = await chat.ainvoke("What is the weather in Paris?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("get_weather", TOOL_ARGS)]
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    sent = stack.fakes["openai"].state.requests[-1]["body"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}
    await _billed(stack, reply.response_metadata["headers"], "gpt-4o")


async def test_bound_tools_reach_an_anthropic_model(stack: Stack) -> None:
    """Across protocols: the OpenAI function becomes an Anthropic tool, tool_use comes back
    as tool_calls, streamed and not."""
    chat = _chat(stack, "claude-sonnet-4", stream_usage=True).bind_tools(
        [get_weather], tool_choice="get_weather"
    )
    reply = await chat.ainvoke("What is the weather in Paris?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("get_weather", TOOL_ARGS)]
    sent = stack.fakes["anthropic"].state.requests[-1]["body"]
    assert sent["tools"][0]["name"] == "get_weather"
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    row = await _billed(stack, reply.response_metadata["headers"], "claude-sonnet-4")
    assert int(row["cached_input_tokens"]) == ANTHROPIC_USAGE["cache_read"]

    chunks = [chunk async for chunk in chat.astream("And streamed?")]
    whole = _joined(chunks)
    assert [(c["name"], c["args"]) for c in whole.tool_calls] == [("get_weather", TOOL_ARGS)]
