"""The pure translations (router/translate) and the token estimator, without any engine."""

from __future__ import annotations

import json

import httpx
import pytest

from router.anthropic_schemas import MessagesRequest
from router.errors import InvalidRequest
from router.providers.base import error_message, redact, sse_data
from router.schemas import ChatCompletionRequest, Usage
from router.tokens import estimate_prompt_tokens, estimate_text_tokens
from router.translate.anthropic import (
    chat_to_message,
    finish_reason,
    messages_to_chat,
    stop_reason,
    usage_from_anthropic,
)
from router.translate.anthropic_stream import AnthropicEventEncoder, AnthropicStreamDecoder
from router.translate.anthropic_upstream import chat_to_anthropic_request
from router.translate.gemini import GeminiStreamDecoder, chat_to_gemini_request, usage_from_gemini
from tollway.config.schema import ModelConfig

MODEL = ModelConfig(name="claude", provider="p", upstream_name="claude-x", max_output_tokens=999)


def test_stop_reasons_map_both_ways() -> None:
    pairs = [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use")]
    for openai_reason, anthropic_reason in pairs:
        assert stop_reason(openai_reason) == anthropic_reason
        assert finish_reason(anthropic_reason) == openai_reason
    assert finish_reason("stop_sequence") == "stop"
    assert stop_reason(None) == "end_turn"


def test_anthropic_request_becomes_the_internal_shape() -> None:
    request = MessagesRequest.model_validate(
        {
            "model": "m",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Two."}],
            "stop_sequences": ["END"],
            "tools": [{"name": "t", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "t"},
            "stream": True,
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "s"},
                        {"type": "text", "text": "calling"},
                        {"type": "tool_use", "id": "tu1", "name": "t", "input": {"a": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "tu1", "content": "42"},
                        {"type": "text", "text": "and?"},
                    ],
                },
            ],
        }
    )
    chat = messages_to_chat(request)
    dumped = [m.model_dump(exclude_none=True) for m in chat.messages]
    assert dumped[0] == {"role": "system", "content": "Rule one.\n\nTwo."}
    assert dumped[1] == {"role": "user", "content": "hi"}
    assert dumped[2]["content"] == "calling"
    assert dumped[2]["tool_calls"][0]["function"] == {"name": "t", "arguments": '{"a": 1}'}
    assert dumped[3] == {"role": "tool", "tool_call_id": "tu1", "content": "42"}
    assert dumped[4] == {"role": "user", "content": "and?"}
    assert chat.stop == ["END"] and chat.max_tokens == 10
    assert chat.tool_choice == {"type": "function", "function": {"name": "t"}}
    assert chat.include_usage  # a stream always asks for usage


def test_unsupported_blocks_are_a_clear_400() -> None:
    request = MessagesRequest.model_validate(
        {
            "model": "m",
            "max_tokens": 1,
            "messages": [{"role": "user", "content": [{"type": "hologram"}]}],
        }
    )
    with pytest.raises(InvalidRequest, match="hologram"):
        messages_to_chat(request)


def test_internal_request_becomes_an_anthropic_request() -> None:
    chat = ChatCompletionRequest.model_validate(
        {
            "model": "claude",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "g", "arguments": "{}"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "r1"},
                {"role": "tool", "tool_call_id": "c2", "content": "r2"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                    ],
                },
            ],
            "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "f"}}],
        }
    )
    body = chat_to_anthropic_request(chat, MODEL)
    assert body["model"] == "claude-x" and body["max_tokens"] == 999 and body["system"] == "sys"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    results = body["messages"][2]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result", "text", "image"]
    assert results[3]["source"] == {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}
    assert body["tool_choice"] == {"type": "any"}
    assert body["tools"][0]["input_schema"] == {"type": "object", "properties": {}}


def test_usage_semantics() -> None:
    anthropic = usage_from_anthropic(
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 5,
            "output_tokens": 7,
        }
    )
    assert (anthropic.input_tokens, anthropic.cached_input_tokens) == (45, 30)
    gemini = usage_from_gemini(
        {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 60,
            "candidatesTokenCount": 20,
            "thoughtsTokenCount": 12,
        }
    )
    assert (gemini.input_tokens, gemini.cached_input_tokens) == (100, 60)
    assert (gemini.output_tokens, gemini.reasoning_tokens) == (32, 12)
    message = chat_to_message(
        {"choices": [{"message": {"content": "hi"}, "finish_reason": "length"}]},
        Usage(input_tokens=45, cached_input_tokens=30, output_tokens=7),
        "m",
        "msg_1",
    )
    assert message["usage"]["input_tokens"] == 15
    assert message["usage"]["cache_read_input_tokens"] == 30
    assert message["stop_reason"] == "max_tokens"


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_encoder_emits_the_anthropic_event_sequence() -> None:
    encoder = AnthropicEventEncoder("msg_1", "m", estimated_input_tokens=11)
    events = encoder.start()
    events += encoder.feed(_chunk({"role": "assistant", "content": ""}))
    events += encoder.feed(_chunk({"content": "Hel"}))
    events += encoder.feed(_chunk({"content": "lo"}))
    call = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}
    events += encoder.feed(_chunk({"tool_calls": [call]}))
    events += encoder.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))
    events += encoder.feed(_chunk({}, "tool_calls"))
    events += encoder.finish(Usage(input_tokens=12, output_tokens=3))
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0][1]["message"]["usage"]["input_tokens"] == 11
    assert events[6][1]["content_block"] == {
        "type": "tool_use",
        "id": "c1",
        "name": "f",
        "input": {},
    }
    assert events[7][1]["delta"] == {"type": "input_json_delta", "partial_json": "{}"}
    assert events[9][1]["delta"]["stop_reason"] == "tool_use"
    assert events[9][1]["usage"]["output_tokens"] == 3
    assert events[9][1]["usage"]["input_tokens"] == 12


def test_decoder_reads_anthropic_events() -> None:
    decoder = AnthropicStreamDecoder("m", "anthropic")
    items = decoder.feed(
        "message_start",
        {
            "type": "message_start",
            "message": {"id": "msg_9", "usage": {"input_tokens": 4, "output_tokens": 1}},
        },
    )
    assert items[1].usage == Usage(input_tokens=4, output_tokens=1) and not items[1].final
    items = decoder.feed(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
    )
    assert items[0].data["choices"][0]["delta"] == {"content": "x"}  # type: ignore[index]
    items = decoder.feed(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"output_tokens": 9},
        },
    )
    assert items[0].data["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
    assert items[1].final and items[1].usage == Usage(input_tokens=4, output_tokens=9)
    decoder.feed("message_stop", {"type": "message_stop"})
    assert decoder.done
    with pytest.raises(Exception, match="overloaded_error"):
        decoder.feed("error", {"type": "error", "error": {"type": "overloaded_error"}})


def test_gemini_request_and_stream() -> None:
    chat = ChatCompletionRequest.model_validate(
        {
            "model": "g",
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a":1}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": '{"ok": true}'},
            ],
            "max_completion_tokens": 5,
            "stop": "X",
        }
    )
    body = chat_to_gemini_request(chat)
    assert body["systemInstruction"] == {"parts": [{"text": "s"}]}
    assert body["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}],
    }
    assert body["contents"][2]["parts"][0]["functionResponse"] == {
        "name": "f",
        "response": {"ok": True},
    }
    assert body["generationConfig"] == {"maxOutputTokens": 5, "stopSequences": ["X"]}

    decoder = GeminiStreamDecoder("g")
    first = decoder.feed(
        {
            "candidates": [{"content": {"parts": [{"text": "a"}]}}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1},
        }
    )
    assert [i.data is not None for i in first] == [True, True, False]
    assert not first[-1].final
    last = decoder.feed(
        {
            "candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
        }
    )
    assert last[-2].data["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
    assert last[-1].final and last[-1].usage == Usage(input_tokens=3, output_tokens=2)


def test_gemini_candidates_are_choices_and_the_usage_is_final_once_all_finished() -> None:
    chat = ChatCompletionRequest(model="g", messages=[{"role": "user", "content": "hi"}], n=2)
    assert chat_to_gemini_request(chat)["generationConfig"] == {"candidateCount": 2}

    def candidate(index: int, text: str, finish: str | None = None) -> dict[str, object]:
        out: dict[str, object] = {"index": index, "content": {"parts": [{"text": text}]}}
        return {**out, "finishReason": finish} if finish else out

    decoder = GeminiStreamDecoder("g", choices=2)
    usage = {"promptTokenCount": 3, "candidatesTokenCount": 2}
    one_done = decoder.feed(
        {"candidates": [candidate(0, "a", "STOP"), candidate(1, "b")], "usageMetadata": usage}
    )
    chunks = [i.data["choices"][0] for i in one_done if i.data]
    assert [(c["index"], c["delta"].get("content"), c["finish_reason"]) for c in chunks] == [
        (0, "", None), (0, "a", None), (0, None, "stop"), (1, "", None), (1, "b", None),
    ]  # fmt: skip
    assert not one_done[-1].final  # choice 1 is still being generated
    both_done = decoder.feed({"candidates": [candidate(1, "c", "STOP")], "usageMetadata": usage})
    assert both_done[-1].final


async def test_sse_parser_and_error_redaction() -> None:
    body = (
        b': keep-alive\n\nevent: a\ndata: {"x": 1}\n\ndata: line1\ndata: line2\r\n\r\n'
        b"data: [DONE]\n\n"
    )
    response = httpx.Response(200, content=body)
    frames = [frame async for frame in sse_data(response)]
    assert frames == [("a", '{"x": 1}'), ("message", "line1\nline2"), ("message", "[DONE]")]
    assert error_message(json.dumps({"error": {"message": "bad key sk-1"}}).encode()) == (
        "bad key sk-1"
    )
    assert redact("bad key sk-1", "sk-1") == "bad key ***"
    assert redact("text", None) == "text"


def test_token_estimates() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("abcde") == 2
    chat = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "12345678"}]}
    )
    assert estimate_prompt_tokens(chat.messages) == 3 + 4 + 2
