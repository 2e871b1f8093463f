"""Streaming `/v1/chat/completions` with the official OpenAI SDK (sync and async) on the
simulator, checked against the ledger rows that real Kafka and chDB produce."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import openai
import pytest

from .conftest import Stack

pytestmark = pytest.mark.integration


def _async_client(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)


async def test_async_stream_with_usage_costs_the_same_as_the_plain_call(stack: Stack) -> None:
    client = _async_client(stack)
    messages = [{"role": "user", "content": "Stream me the ledger story, twice as long please."}]

    plain = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages
    )
    completion = plain.parse()

    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-tollway-model"] == "gpt-4o-mini"
    assert raw.headers["x-tollway-provider"] == "sim"
    stream_event_id = raw.headers["x-tollway-event-id"]
    texts: list[str] = []
    usage = None
    chunks = 0
    async for chunk in raw.parse():
        chunks += 1
        assert chunk.model == "gpt-4o-mini"
        if chunk.usage is not None:
            assert chunk.choices == []  # the usage chunk has empty choices
            usage = chunk.usage
        for choice in chunk.choices:
            texts.append(choice.delta.content or "")
    # chunked per word: role chunk, one per token, finish chunk, usage chunk
    assert chunks == completion.usage.completion_tokens + 3
    assert "".join(texts) == completion.choices[0].message.content
    assert usage is not None
    assert usage.prompt_tokens == completion.usage.prompt_tokens
    assert usage.completion_tokens == completion.usage.completion_tokens

    plain_row = await stack.row(plain.headers["x-tollway-event-id"])
    stream_row = await stack.row(stream_event_id)
    assert plain_row["stream"] is False or plain_row["stream"] == 0
    assert bool(stream_row["stream"]) is True
    assert stream_row["ttft_ms"] is not None and stream_row["ttft_ms"] >= 0
    assert plain_row["ttft_ms"] is None
    assert bool(stream_row["usage_estimated"]) is False
    assert stream_row["status"] == "ok" and int(stream_row["http_status"]) == 200
    assert int(stream_row["input_tokens"]) == usage.prompt_tokens
    assert int(stream_row["output_tokens"]) == usage.completion_tokens
    expected = stack.expected_cost("gpt-4o-mini", usage.prompt_tokens, usage.completion_tokens)
    assert Decimal(stream_row["cost"]) == expected
    assert Decimal(plain_row["cost"]) == Decimal(plain.headers["x-tollway-cost-usd"])
    # the same request streamed and not streamed costs the same (within 0.1 %)
    difference = abs(Decimal(stream_row["cost"]) - Decimal(plain_row["cost"]))
    assert difference <= Decimal("0.001") * Decimal(plain_row["cost"])


async def test_sync_stream_without_include_usage_hides_the_usage_chunk(stack: Stack) -> None:
    def run() -> tuple[list[object], str]:
        client = openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="claude-3-5-haiku",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Count to three."},
            ],
            stream=True,
        )
        return list(raw.parse()), raw.headers["x-tollway-event-id"]

    chunks, event_id = await asyncio.to_thread(run)
    assert chunks
    assert all(chunk.usage is None for chunk in chunks)  # type: ignore[attr-defined]
    assert all(chunk.choices for chunk in chunks)  # type: ignore[attr-defined]
    assert chunks[-1].choices[0].finish_reason == "stop"  # type: ignore[attr-defined]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)  # type: ignore[attr-defined]

    # the caller did not ask for usage, but tollway did: the ledger has the real counts
    row = await stack.row(event_id)
    assert bool(row["stream"]) and not bool(row["usage_estimated"])
    assert int(row["output_tokens"]) == len(text.split())
    assert row["endpoint"] == "chat.completions"


async def test_sync_client_plain_and_streamed(stack: Stack) -> None:
    def run() -> tuple[str, str]:
        client = openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)
        messages = [{"role": "user", "content": "sync hello"}]
        plain = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        streamed = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in client.chat.completions.create(
                model="gpt-4o-mini",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            if chunk.choices
        )
        return plain.choices[0].message.content or "", streamed

    plain, streamed = await asyncio.to_thread(run)
    assert plain and plain == streamed


async def test_abandoned_stream_is_billed_for_what_was_generated(stack: Stack) -> None:
    client = _async_client(stack)
    raw = await client.chat.completions.with_raw_response.create(
        model="slow-mini",  # 60 tokens, 25 ms each: the stream outlives the caller's patience
        messages=[{"role": "user", "content": "Tell me a very long story."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    event_id = raw.headers["x-tollway-event-id"]
    stream = raw.parse()
    received = []
    async for chunk in stream:
        received.append(chunk)
        if len(received) == 2:
            break
    await stream.close()

    row = await stack.row(event_id)
    assert bool(row["stream"])
    assert bool(row["usage_estimated"])  # usage never arrived: counted from the streamed text
    assert row["status"] == "ok"  # billed and counted by budgets
    assert int(row["http_status"]) == 499 and row["error_code"] == "client_disconnected"
    assert 0 < int(row["output_tokens"]) < 60
    assert int(row["input_tokens"]) > 0
    assert Decimal(row["cost"]) == stack.expected_cost(
        "slow-mini", int(row["input_tokens"]), int(row["output_tokens"])
    )
    assert int(row["duration_ms"]) < 60 * 25


async def test_stream_falls_back_before_the_first_byte(stack: Stack) -> None:
    client = _async_client(stack)
    raw = await client.chat.completions.with_raw_response.create(
        model="resilient",
        messages=[{"role": "user", "content": "fallback please"}],
        stream=True,
    )
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text
    assert raw.headers["x-tollway-model"] == "gpt-4o-mini"
    row = await stack.row(raw.headers["x-tollway-event-id"])
    assert bool(row["fallback_used"]) and row["route"] == "resilient"
    assert row["model"] == "gpt-4o-mini"


async def test_stream_that_cannot_start_is_a_json_error(stack: Stack) -> None:
    client = _async_client(stack)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model="down-mini", messages=[{"role": "user", "content": "x"}], stream=True
        )
    assert caught.value.status_code == 502
    assert caught.value.body["type"] == "upstream_error"  # type: ignore[index]


async def test_raw_sse_framing(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        response = await http.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {stack.key}"},
            json={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "frames"}],
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
    frames = [f for f in response.text.split("\n\n") if f]
    assert all(f.startswith("data: ") for f in frames)
    assert frames[-1] == "data: [DONE]"
    assert '"choices":[]' in frames[-2] and '"usage"' in frames[-2]
