"""Streams and the response cache (router/response_cache.py): a streamed call's answer is
collected whole for the cache, and a cached answer is replayed as a stream's chunks — so a
question asked once plainly and once streamed (or twice streamed) is paid for once.

An answer with extended thinking is neither kept from a stream nor replayed into one: its
signed thinking blocks must reach the caller exactly as the model wrote them, chunk by chunk.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from router.response_cache import Cached
from router.schemas import Usage
from router.upstream import ChatChunk


def replay(cached: Cached) -> list[ChatChunk] | None:
    """The cached answer as stream chunks — per choice its role, text, tool calls and finish
    reason, then the usage — or None for one a stream cannot carry (thinking)."""
    body = cached.answer()
    base = {
        "id": body.get("id", ""),
        "object": "chat.completion.chunk",
        "created": body.get("created") or int(time.time()),
        "model": cached.model,
    }

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> ChatChunk:
        choice = {"index": index, "delta": delta, "finish_reason": finish}
        return ChatChunk(data={**base, "choices": [choice]})

    chunks: list[ChatChunk] = []
    for choice in body.get("choices") or []:
        message = choice.get("message") or {}
        if message.get("thinking_blocks") or message.get("reasoning_content"):
            return None
        index = choice.get("index", 0)
        chunks.append(chunk(index, {"role": "assistant", "content": ""}))
        if message.get("content"):
            chunks.append(chunk(index, {"content": message["content"]}))
        for i, call in enumerate(message.get("tool_calls") or []):
            chunks.append(chunk(index, {"tool_calls": [{**call, "index": i}]}))
        chunks.append(chunk(index, {}, choice.get("finish_reason") or "stop"))
    if not chunks:
        return None
    return [*chunks, ChatChunk(usage=cached.usage, final=True)]


async def replayed(chunks: list[ChatChunk]) -> AsyncIterator[ChatChunk]:
    for item in chunks:
        yield item


class Collector:
    """The whole answer of a stream, built from its chunks as they pass."""

    def __init__(self) -> None:
        self._choices: dict[int, dict[str, Any]] = {}
        self._head: dict[str, Any] = {}
        self.replayable = True  # False once the stream carried thinking

    def take(self, data: dict[str, Any]) -> None:
        if not self._head:
            self._head = {"id": data.get("id", ""), "created": data.get("created", 0)}
        for choice in data.get("choices") or []:
            into = self._choices.setdefault(
                choice.get("index", 0), {"content": [], "calls": {}, "finish_reason": None}
            )
            delta = choice.get("delta") or {}
            if delta.get("thinking"):
                self.replayable = False
            if isinstance(delta.get("content"), str):
                into["content"].append(delta["content"])
            for call in delta.get("tool_calls") or []:
                kept = into["calls"].setdefault(
                    call.get("index", 0),
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                kept["id"] = call.get("id") or kept["id"]
                function = call.get("function") or {}
                kept["function"]["name"] += function.get("name") or ""
                kept["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                into["finish_reason"] = choice["finish_reason"]

    def messages(self) -> list[dict[str, Any]]:
        """The message of each choice, as much of it as has streamed."""
        messages = []
        for _, kept in sorted(self._choices.items()):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(kept["content"])}
            if kept["calls"]:
                message["tool_calls"] = [kept["calls"][i] for i in sorted(kept["calls"])]
            messages.append(message)
        return messages

    def answer(self, model: str, usage: Usage) -> dict[str, Any] | None:
        """The chat completion the stream amounted to, or None if it cannot be replayed."""
        if not self.replayable or not self._choices:
            return None
        choices = [
            {"index": index, "message": message, "finish_reason": kept["finish_reason"]}
            for (index, kept), message in zip(
                sorted(self._choices.items()), self.messages(), strict=True
            )
        ]
        return {
            **self._head,
            "object": "chat.completion",
            "model": model,
            "choices": choices,
            "usage": usage.openai(),
        }
