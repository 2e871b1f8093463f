"""The provider adapters against fake upstreams that speak each real wire format, through the
whole stack: OpenAI SDK → tollway → OpenAI / Anthropic / Gemini fake → ledger row."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncGenerator
from decimal import Decimal

import anthropic
import openai
import pytest

from .conftest import PROVIDER_HEADERS, SECRETS, Stack
from .fakes import (
    ANTHROPIC_USAGE,
    BREAK_MID_STREAM,
    GEMINI_USAGE,
    OPENAI_USAGE,
    TEXT,
    TOOL_ARGS,
    WORDS,
)

pytestmark = pytest.mark.integration

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _client(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)


async def _stream(stack: Stack, model: str, **extra: object) -> tuple[str, object, str, list]:
    raw = await _client(stack).chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": "Hello upstream"}],
        stream=True,
        stream_options={"include_usage": True},
        **extra,  # type: ignore[arg-type]
    )
    chunks = [chunk async for chunk in raw.parse()]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = next(c.usage for c in chunks if c.usage is not None)
    return text, usage, raw.headers["x-tollway-event-id"], chunks


@pytest.mark.parametrize(("model", "fake", "credential"), [
    ("gpt-4o", "openai", ("authorization", f"Bearer {SECRETS['FAKE_OPENAI_KEY']}")),
    ("claude-sonnet-4", "anthropic", ("x-api-key", SECRETS["FAKE_ANTHROPIC_KEY"])),
])  # fmt: skip
async def test_a_providers_own_headers_go_with_its_credentials(
    stack: Stack, model: str, fake: str, credential: tuple[str, str]
) -> None:
    requests = stack.fakes[fake].state.requests
    seen = len(requests)
    await _client(stack).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello upstream"}]
    )
    await _stream(stack, model)
    for sent in requests[seen:]:
        headers = sent["headers"]
        for name, value in PROVIDER_HEADERS[fake].items():
            assert headers[name.lower()] == value
        assert headers[credential[0]] == credential[1]


async def test_the_callers_anthropic_betas_reach_an_anthropic_upstream_only(stack: Stack) -> None:
    """Claude Code and `client.beta.messages` switch features on with `anthropic-beta`: they
    reach an Anthropic upstream after the provider's own betas, whatever the caller's protocol,
    and never another provider."""
    hello = [{"role": "user", "content": "Hello upstream"}]
    asked = "interleaved-thinking-2025-05-14"
    both = f"{PROVIDER_HEADERS['anthropic']['anthropic-beta']},{asked}"
    requests = stack.fakes["anthropic"].state.requests
    seen = len(requests)
    claude = anthropic.AsyncAnthropic(base_url=stack.base_url, api_key=stack.key, max_retries=0)
    await claude.beta.messages.create(
        model="claude-sonnet-4",
        max_tokens=100,
        messages=hello,
        betas=[asked],  # type: ignore[arg-type]
    )
    streamed = await claude.beta.messages.create(
        model="claude-sonnet-4",
        max_tokens=100,
        messages=hello,
        betas=[asked],
        stream=True,  # type: ignore[arg-type]
    )
    assert [event.type async for event in streamed][-1] == "message_stop"
    await claude.messages.count_tokens(
        model="claude-sonnet-4",
        messages=hello,
        extra_headers={"anthropic-beta": asked},  # type: ignore[arg-type]
    )
    await _client(stack).chat.completions.create(
        model="claude-sonnet-4",
        messages=hello,
        extra_headers={"anthropic-beta": asked},  # type: ignore[arg-type]
    )
    sent = requests[seen:]
    assert [r["path"] for r in sent] == ["/v1/messages"] * 2 + ["/v1/messages/count_tokens"] + [
        "/v1/messages"
    ]
    assert [r["headers"]["anthropic-beta"] for r in sent] == [both] * 4

    openai_requests = stack.fakes["openai"].state.requests
    seen = len(openai_requests)
    await _client(stack).chat.completions.create(
        model="gpt-4o",
        messages=hello,
        extra_headers={"anthropic-beta": asked},  # type: ignore[arg-type]
    )
    assert "anthropic-beta" not in openai_requests[seen]["headers"]

    with pytest.raises(anthropic.BadRequestError) as garbled:
        await claude.messages.create(
            model="claude-sonnet-4", max_tokens=100, messages=hello,  # type: ignore[arg-type]
            extra_headers={"anthropic-beta": "one, two words"},
        )  # fmt: skip
    assert "not a beta name" in str(garbled.value)


async def test_openai_upstream_plain_and_streamed(stack: Stack) -> None:
    client = _client(stack)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hello upstream"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == TEXT
    assert completion.model == "gpt-4o"
    sent = stack.fakes["openai"].state.requests[-1]
    assert sent["body"]["model"] == "gpt-4o-2024-08-06"
    assert "stream_options" not in sent["body"]

    text, usage, event_id, _ = await _stream(stack, "gpt-4o")
    assert text == TEXT
    sent = stack.fakes["openai"].state.requests[-1]["body"]
    assert sent["stream"] is True and sent["stream_options"]["include_usage"] is True
    assert usage.prompt_tokens == OPENAI_USAGE["prompt"]  # type: ignore[attr-defined]
    assert usage.prompt_tokens_details.cached_tokens == OPENAI_USAGE["cached"]  # type: ignore[attr-defined]
    assert usage.completion_tokens_details.reasoning_tokens == OPENAI_USAGE["reasoning"]  # type: ignore[attr-defined]

    for event in (raw.headers["x-tollway-event-id"], event_id):
        row = await stack.row(event)
        assert row["provider"] == "openai-fake" and row["model"] == "gpt-4o"
        assert int(row["input_tokens"]) == OPENAI_USAGE["prompt"]
        assert int(row["cached_input_tokens"]) == OPENAI_USAGE["cached"]
        assert int(row["reasoning_tokens"]) == OPENAI_USAGE["reasoning"]
        assert int(row["output_tokens"]) == len(WORDS)
        assert Decimal(row["cost"]) == stack.expected_cost(
            "gpt-4o", OPENAI_USAGE["prompt"], len(WORDS), OPENAI_USAGE["cached"]
        )
    # a streamed tool call keeps its pieces
    _, _, _, chunks = await _stream(stack, "gpt-4o", tools=[WEATHER])
    arguments = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert json.loads(arguments) == TOOL_ARGS


async def test_openai_sdk_to_anthropic_served_model(stack: Stack) -> None:
    client = _client(stack)
    completion = await client.chat.completions.create(
        model="claude-sonnet-4",
        messages=[
            {"role": "system", "content": "Be helpful."},
            {"role": "user", "content": "Hello upstream"},
        ],
        max_tokens=50,
        temperature=1.5,
        stop=["END"],
    )
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].finish_reason == "stop"
    prompt = (
        ANTHROPIC_USAGE["input"] + ANTHROPIC_USAGE["cache_read"] + ANTHROPIC_USAGE["cache_write"]
    )
    assert completion.usage is not None and completion.usage.prompt_tokens == prompt
    assert completion.usage.prompt_tokens_details.cached_tokens == ANTHROPIC_USAGE["cache_read"]  # type: ignore[union-attr]
    sent = stack.fakes["anthropic"].state.requests[-1]
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["headers"]["x-api-key"] == SECRETS["FAKE_ANTHROPIC_KEY"]
    body = sent["body"]
    assert body["model"] == "claude-sonnet-4-20250514"
    assert body["system"] == "Be helpful."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hello upstream"}]}
    ]
    assert body["max_tokens"] == 50 and body["temperature"] == 1.0
    assert body["stop_sequences"] == ["END"]

    # tools: OpenAI function → Anthropic tool, tool_use → tool_calls
    completion = await client.chat.completions.create(
        model="claude-sonnet-4",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == TOOL_ARGS  # type: ignore[union-attr]
    body = stack.fakes["anthropic"].state.requests[-1]["body"]
    assert body["tools"][0]["input_schema"] == WEATHER["function"]["parameters"]  # type: ignore[index]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}

    # streamed: usage from message_start (input) + message_delta (output)
    text, usage, event_id, _ = await _stream(stack, "claude-sonnet-4")
    assert text == TEXT
    assert usage.prompt_tokens == prompt  # type: ignore[attr-defined]
    assert usage.completion_tokens == len(WORDS)  # type: ignore[attr-defined]
    row = await stack.row(event_id)
    assert row["provider"] == "anthropic-fake" and bool(row["stream"])
    assert int(row["input_tokens"]) == prompt
    assert int(row["cached_input_tokens"]) == ANTHROPIC_USAGE["cache_read"]
    assert int(row["cache_write_tokens"]) == ANTHROPIC_USAGE["cache_write"]
    assert not bool(row["usage_estimated"]) and row["ttft_ms"] is not None
    # cache writes at the model's cache-write price (1.25x its input price)
    assert Decimal(row["cost"]) == stack.expected_cost(
        "claude-sonnet-4",
        prompt,
        len(WORDS),
        cached=ANTHROPIC_USAGE["cache_read"],
        writes=ANTHROPIC_USAGE["cache_write"],
    )

    # streamed tool call, rebuilt from content_block_start + input_json_delta
    _, _, _, chunks = await _stream(stack, "claude-sonnet-4", tools=[WEATHER])
    calls = [
        c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls
    ]
    assert calls[0][0].id == "toolu_fake" and calls[0][0].function.name == "get_weather"  # type: ignore[index,union-attr]
    arguments = "".join(c[0].function.arguments or "" for c in calls)  # type: ignore[index,union-attr]
    assert json.loads(arguments) == TOOL_ARGS
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


async def test_anthropic_sdk_to_anthropic_served_model(stack: Stack) -> None:
    client = anthropic.AsyncAnthropic(base_url=stack.base_url, api_key=stack.key, max_retries=0)
    async with client.messages.stream(
        model="claude-sonnet-4",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hello upstream"}],
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == TEXT  # type: ignore[union-attr]
    # the upstream's usage as it reported it: uncached input, cache reads, cache writes
    assert (
        final.usage.input_tokens,
        final.usage.cache_read_input_tokens,
        final.usage.cache_creation_input_tokens,
    ) == (ANTHROPIC_USAGE["input"], ANTHROPIC_USAGE["cache_read"], ANTHROPIC_USAGE["cache_write"])
    assert final.usage.output_tokens == len(WORDS)
    plain = await client.messages.create(
        model="claude-sonnet-4",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hello upstream"}],
    )
    assert plain.usage == final.usage


async def test_gemini_upstream_plain_and_streamed(stack: Stack) -> None:
    client = _client(stack)
    completion = await client.chat.completions.create(
        model="gemini-2.0-flash",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello upstream"},
        ],
        max_tokens=64,
    )
    assert completion.choices[0].message.content == TEXT
    sent = stack.fakes["gemini"].state.requests[-1]
    assert sent["path"] == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert sent["headers"]["x-goog-api-key"] == SECRETS["FAKE_GEMINI_KEY"]
    assert sent["body"]["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["body"]["contents"] == [{"role": "user", "parts": [{"text": "Hello upstream"}]}]
    assert sent["body"]["generationConfig"] == {"maxOutputTokens": 64}
    output = len(WORDS) + GEMINI_USAGE["thoughts"]  # thoughts are billed as output
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == GEMINI_USAGE["prompt"]
    assert completion.usage.completion_tokens == output
    assert completion.usage.completion_tokens_details.reasoning_tokens == GEMINI_USAGE["thoughts"]  # type: ignore[union-attr]

    text, usage, event_id, _ = await _stream(stack, "gemini-2.0-flash")
    assert text == TEXT
    assert stack.fakes["gemini"].state.requests[-1]["path"].endswith(":streamGenerateContent")
    assert usage.completion_tokens == output  # type: ignore[attr-defined]
    row = await stack.row(event_id)
    assert row["provider"] == "gemini-fake" and bool(row["stream"])
    assert int(row["input_tokens"]) == GEMINI_USAGE["prompt"]
    assert int(row["cached_input_tokens"]) == GEMINI_USAGE["cached"]
    assert int(row["reasoning_tokens"]) == GEMINI_USAGE["thoughts"]
    assert int(row["output_tokens"]) == output
    assert Decimal(row["cost"]) == stack.expected_cost(
        "gemini-2.0-flash", GEMINI_USAGE["prompt"], output, GEMINI_USAGE["cached"]
    )

    completion = await client.chat.completions.create(
        model="gemini-2.0-flash",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert json.loads(call.function.arguments) == TOOL_ARGS  # type: ignore[union-attr]
    declarations = stack.fakes["gemini"].state.requests[-1]["body"]["tools"][0]
    assert declarations["functionDeclarations"][0]["name"] == "get_weather"


@pytest.mark.parametrize("model", ["gpt-4o-badkey", "claude-badkey"])
async def test_secrets_stay_out_of_errors_and_events(stack: Stack, model: str) -> None:
    wrong = SECRETS["WRONG_KEY"]
    client = _client(stack)
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "leak?"}], stream=stream
            )
        error = caught.value
        assert error.status_code == 502
        assert wrong not in error.response.text
        assert "***" in error.response.text  # the upstream echoed it; tollway redacted it
    messages_client = anthropic.AsyncAnthropic(
        base_url=stack.base_url, api_key=stack.key, max_retries=0
    )
    with pytest.raises(anthropic.APIStatusError) as failed:
        await messages_client.messages.create(
            model=model, max_tokens=10, messages=[{"role": "user", "content": "leak?"}]
        )
    assert failed.value.body["type"] == "error"  # type: ignore[index]
    assert wrong not in failed.value.response.text

    rows = await stack.rows_where(f"model = '' AND requested_model = '{model}'", 3)
    assert len(rows) >= 3
    for row in rows:
        assert row["status"] == "error"
        assert wrong not in json.dumps(row, default=str)
    for secret in SECRETS.values():
        everything = await stack.store.query("SELECT * FROM calls")
        assert secret not in json.dumps(everything.rows, default=str)


async def test_upstream_failing_mid_stream(stack: Stack) -> None:
    """After the first byte there is no fallback: the caller gets an error frame (the SDKs
    raise it) and the event records the failure with the partial usage."""
    raw = await _client(stack).chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": BREAK_MID_STREAM}],
        stream=True,
    )
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        async for chunk in raw.parse():
            seen.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(seen) == " ".join(WORDS[:2])
    assert "overloaded" in str(caught.value)
    row = await stack.row(raw.headers["x-tollway-event-id"])
    assert row["status"] == "error" and row["error_code"] == "upstream_error"
    assert bool(row["usage_estimated"]) and int(row["output_tokens"]) > 0
    assert Decimal(row["cost"]) > 0


@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet-4", "gemini-2.0-flash"])
async def test_streamed_call_closes_the_generators_it_reads_with(stack: Stack, model: str) -> None:
    """The adapters stop reading at the stream's end marker and close what they read with
    (`contextlib.aclosing`): nothing of router/providers is left to the event loop's async
    generator finalizer, which costs a self-pipe wake-up and a task per generator."""
    left: list[str] = []
    firstiter, finalizer = sys.get_asyncgen_hooks()

    def spy(generator: AsyncGenerator[object, None]) -> None:
        if "/router/providers/" in generator.ag_code.co_filename:
            left.append(generator.ag_code.co_name)
        if finalizer is not None:
            finalizer(generator)

    sys.set_asyncgen_hooks(firstiter, spy)
    try:
        text, _, _, _ = await _stream(stack, model)
    finally:
        sys.set_asyncgen_hooks(firstiter, finalizer)
    assert text == TEXT
    assert left == []
