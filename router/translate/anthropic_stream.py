"""Anthropic stream events ↔ OpenAI stream chunks, as two small state machines.

- `AnthropicEventEncoder` (caller side): the gateway's OpenAI-shaped chunks → the real
  Anthropic event sequence: `message_start`, `content_block_start`, `ping`,
  `content_block_delta` (`text_delta` / `input_json_delta`), `content_block_stop`,
  `message_delta` (stop_reason, usage), `message_stop`.
- `AnthropicStreamDecoder` (provider side): an Anthropic upstream's events → OpenAI chunks
  plus the usage from `message_start` (input, partial) and `message_delta` (output, final);
  the JSON tool's input (JSON mode, see anthropic_upstream.py) streams as the text.

OpenAI reports usage after the finish chunk, so the encoder holds `message_delta` until
`finish` is called with the stream's usage.
"""

from __future__ import annotations

import time
from typing import Any

from router.schemas import Usage
from router.translate.anthropic import (
    THINKING_DELTA,
    anthropic_usage,
    finish_reason,
    stop_reason,
    usage_from_anthropic,
)
from router.translate.anthropic_upstream import JSON_TOOL
from router.upstream import ChatChunk, ProviderError

Event = tuple[str, dict[str, Any]]


class AnthropicEventEncoder:
    """OpenAI chunks → Anthropic stream events for one message."""

    def __init__(self, message_id: str, model: str, estimated_input_tokens: int) -> None:
        self.message_id = message_id
        self.model = model
        self.estimated_input_tokens = estimated_input_tokens
        self._index = -1  # index of the open content block
        self._open: str | None = None  # "thinking" | "text" | "tool_use" | None
        self._tool_index: int | None = None  # OpenAI tool_calls index of the open tool block
        self._thinking_index: int | None = None  # upstream block of the open thinking block
        self._pinged = False
        self._stop_reason = "end_turn"

    def start(self) -> list[Event]:
        """`message_start` with the estimated prompt size (the real one comes in
        `message_delta`, which Anthropic SDKs read as the cumulative usage)."""
        usage = {
            "input_tokens": self.estimated_input_tokens,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            thinking = delta.get(THINKING_DELTA)
            if thinking:
                events += self._thinking(thinking)
            content = delta.get("content")
            if content:
                if self._open != "text":
                    events += self._open_block({"type": "text", "text": ""}, "text")
                events.append(
                    self._delta({"type": "text_delta", "text": content}),
                )
            for call in delta.get("tool_calls") or []:
                index = call.get("index", 0)
                function = call.get("function") or {}
                if self._open != "tool_use" or index != self._tool_index:
                    block = {
                        "type": "tool_use",
                        "id": call.get("id") or f"toolu_{self.message_id}_{index}",
                        "name": function.get("name", ""),
                        "input": {},
                    }
                    events += self._open_block(block, "tool_use")
                    self._tool_index = index
                arguments = function.get("arguments")
                if arguments:
                    events.append(
                        self._delta({"type": "input_json_delta", "partial_json": arguments})
                    )
            if choice.get("finish_reason"):
                self._stop_reason = stop_reason(choice["finish_reason"])
        return events

    def _thinking(self, part: dict[str, Any]) -> list[Event]:
        """A thinking delta: text and signature go into the open thinking block (a new one
        for a new upstream block), a redacted block is a whole block of its own."""
        events: list[Event] = []
        if "redacted" in part:
            block = {"type": "redacted_thinking", "data": part["redacted"]}
            return self._open_block(block, "redacted_thinking")
        if self._open != "thinking" or part.get("index") != self._thinking_index:
            events += self._open_block({"type": "thinking", "thinking": ""}, "thinking")
            self._thinking_index = part.get("index")
        if part.get("thinking"):
            events.append(self._delta({"type": "thinking_delta", "thinking": part["thinking"]}))
        if part.get("signature"):
            events.append(self._delta({"type": "signature_delta", "signature": part["signature"]}))
        return events

    def finish(self, usage: Usage) -> list[Event]:
        """Close the open block, then `message_delta` (stop reason, usage) and `message_stop`."""
        events = self._close_block()
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop_reason, "stop_sequence": None},
                    "usage": anthropic_usage(usage),
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def _open_block(self, block: dict[str, Any], kind: str) -> list[Event]:
        events = self._close_block()
        self._index += 1
        self._open = kind
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": self._index, "content_block": block},
            )
        )
        if not self._pinged:
            self._pinged = True
            events.append(("ping", {"type": "ping"}))
        return events

    def _close_block(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        self._tool_index = None
        self._thinking_index = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self._index})]

    def _delta(self, delta: dict[str, Any]) -> Event:
        return (
            "content_block_delta",
            {"type": "content_block_delta", "index": self._index, "delta": delta},
        )


class AnthropicStreamDecoder:
    """Anthropic stream events → OpenAI chunks (and usage) for the gateway."""

    def __init__(self, model: str, provider: str) -> None:
        self.model = model
        self.provider = provider
        self.id = ""
        self.created = int(time.time())
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # Anthropic block index → OpenAI tool_calls index
        self._json_blocks: set[int] = set()  # blocks of the JSON tool: their input is the text
        self.done = False

    def feed(self, event: str, data: dict[str, Any]) -> list[ChatChunk]:
        kind = data.get("type", event)
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = str(message.get("id") or "")
            self._usage = dict(message.get("usage") or {})
            return [
                self._chunk({"role": "assistant", "content": ""}),
                ChatChunk(usage=usage_from_anthropic(self._usage)),
            ]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            index = data.get("index", 0)
            if block.get("type") == "thinking":
                return [self._thinking({"index": index, "thinking": block.get("thinking", "")})]
            if block.get("type") == "redacted_thinking":
                return [self._thinking({"index": index, "redacted": block.get("data", "")})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            if block.get("type") == "tool_use" and block.get("name") == JSON_TOOL:
                self._json_blocks.add(data.get("index", 0))
                return []
            if block.get("type") == "tool_use":
                index = self._tools[data.get("index", 0)] = len(self._tools)
                call = {
                    "index": index,
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") in ("thinking_delta", "signature_delta"):
                part = {"index": data.get("index", 0)}
                for key in ("thinking", "signature"):
                    if delta.get(key):
                        part[key] = delta[key]
                return [self._thinking(part)]
            if (
                delta.get("type") == "input_json_delta"
                and data.get("index", 0) in self._json_blocks
            ):
                return [self._chunk({"content": delta.get("partial_json", "")})]
            if delta.get("type") == "input_json_delta":
                index = self._tools.get(data.get("index", 0), 0)
                call = {"index": index, "function": {"arguments": delta.get("partial_json", "")}}
                return [self._chunk({"tool_calls": [call]})]
            return []  # future delta types
        if kind == "message_delta":
            self._usage.update(
                {k: v for k, v in (data.get("usage") or {}).items() if v is not None}
            )
            reason = finish_reason((data.get("delta") or {}).get("stop_reason"))
            if reason == "tool_calls" and self._json_blocks and not self._tools:
                reason = "stop"  # it answered through the JSON tool
            return [
                self._chunk({}, reason),
                ChatChunk(usage=usage_from_anthropic(self._usage), final=True),
            ]
        if kind == "message_stop":
            self.done = True
            return []
        if kind == "error":
            error = data.get("error") or {}
            raise ProviderError(
                f"{self.provider} failed mid-stream: {error.get('type', 'error')}: "
                f"{str(error.get('message', ''))[:300]}",
                status=502,
            )
        return []  # ping and future event types

    def _thinking(self, part: dict[str, Any]) -> ChatChunk:
        return self._chunk({THINKING_DELTA: part})

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> ChatChunk:
        return ChatChunk(
            data={
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )
