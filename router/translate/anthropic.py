"""Anthropic Messages ↔ OpenAI chat completions, caller side, and what both sides share.

Caller side (`/v1/messages`): an Anthropic request becomes the internal OpenAI-shaped request
(`messages_to_chat`), and the internal completion becomes an Anthropic message
(`chat_to_message`). The provider side (the `anthropic` adapter) is in `anthropic_upstream.py`;
stop reasons, usage and tool arguments are converted the same way for both, here.

Extended thinking survives it too: the request's `thinking` rides along as an extra field,
and the model's thinking blocks (with their signatures, which Anthropic checks when a
conversation with tools comes back) ride on assistant messages as `thinking_blocks` (the name
LiteLLM's callers use) and, streamed, as `thinking` deltas of the internal chunks
(`THINKING_DELTA`); other providers never see them.

Prompt caching survives the trip: `cache_control` marks on system blocks, content blocks,
tool results and tools ride on the internal request's content parts and tools (the convention
LiteLLM's callers use too), and the provider side puts them back; the OpenAI-compatible adapter
drops them (router/providers/openai_compatible.py).

Token semantics differ: Anthropic's `input_tokens` excludes cache reads and cache writes,
tollway's `input_tokens` is the whole prompt. `usage_from_anthropic` and `anthropic_usage`
convert between the two; cache writes are billed at the model's `cache_write_per_mtok`
(its input price when the catalogue gives none).
"""

from __future__ import annotations

import json
from typing import Any

from router.anthropic_schemas import MessagesRequest
from router.errors import InvalidRequest
from router.schemas import ChatCompletionRequest, Usage
from router.tokens import text_of

DEFAULT_MAX_TOKENS = 4096

#: the key of a streamed chunk's delta that carries thinking: `{"index": block, "thinking": text}`,
#: `{"index": block, "signature": sig}` or `{"index": block, "redacted": data}`
THINKING_DELTA = "thinking"
THINKING_BLOCKS = ("thinking", "redacted_thinking")

FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def stop_reason(finish_reason: str | None) -> str:
    """OpenAI `finish_reason` → Anthropic `stop_reason` (stop↔end_turn, length↔max_tokens,
    tool_calls↔tool_use)."""
    return FINISH_TO_STOP.get(finish_reason or "stop", "end_turn")


def finish_reason(stop: str | None) -> str:
    """Anthropic `stop_reason` → OpenAI `finish_reason`."""
    return STOP_TO_FINISH.get(stop or "end_turn", "stop")


# --- usage ---------------------------------------------------------------------------------


def usage_from_anthropic(usage: dict[str, Any] | None) -> Usage:
    """Anthropic usage → tollway usage (the prompt total includes cache reads and writes)."""
    if not usage:
        return Usage(estimated=True)
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def anthropic_usage(usage: Usage) -> dict[str, int]:
    """tollway usage → Anthropic usage (input apart from cache reads and writes)."""
    return {
        "input_tokens": usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
    }


# --- caller side: Anthropic request → internal, internal completion → Anthropic message -----


def system_text(system: str | list[dict[str, Any]] | None) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    return "\n\n".join(
        str(block.get("text", "")) for block in system if block.get("type") == "text"
    )


def messages_to_chat(request: MessagesRequest) -> ChatCompletionRequest:
    """An Anthropic Messages request as the gateway's OpenAI-shaped request."""
    messages: list[dict[str, Any]] = []
    if isinstance(request.system, list) and _marked(request.system):
        parts = [_text_part(b) for b in request.system if b.get("type") == "text"]
        messages.append({"role": "system", "content": parts})
    elif system := system_text(request.system):
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        if message.role == "user":
            messages.extend(_user_to_openai(message.content))
        else:
            messages.append(_assistant_to_openai(message.content))
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "max_tokens": request.max_tokens,
        "stream": request.stream,
    }
    if request.stream:
        payload["stream_options"] = {"include_usage": True}
    if request.temperature is not None:
        payload["temperature"] = request.temperature
    if request.top_p is not None:
        payload["top_p"] = request.top_p
    if request.stop_sequences:
        payload["stop"] = request.stop_sequences
    if request.tools:
        payload["tools"] = [_tool_to_openai(tool) for tool in request.tools]
    if request.tool_choice:
        choice = _tool_choice_to_openai(request.tool_choice)
        if choice is not None:
            payload["tool_choice"] = choice
    user = (request.metadata or {}).get("user_id")
    if user:
        payload["user"] = str(user)
    thinking = (request.model_extra or {}).get("thinking")
    if thinking is not None:
        payload["thinking"] = thinking
    return ChatCompletionRequest.model_validate(payload)


def _user_to_openai(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One Anthropic user turn → OpenAI messages: tool results become `tool` messages (first,
    as OpenAI wants them right after the assistant's tool calls), the rest one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            parts.append(_text_part(block))
        elif kind == "image":
            image = {"type": "image_url", "image_url": {"url": _image_url(block)}}
            parts.append(_with_mark(image, block))
        elif kind == "tool_result":
            result_text = _tool_result_text(block)
            result: str | list[dict[str, Any]] = result_text
            if "cache_control" in block:
                result = [_with_mark({"type": "text", "text": result_text}, block)]
            tool_messages.append(
                {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": result}
            )
        else:
            raise InvalidRequest(f"content block type {kind!r} is not supported in user turns")
    messages = tool_messages
    if parts:
        only_text = all(p["type"] == "text" for p in parts) and not _marked(parts)
        text = "\n".join(p["text"] for p in parts) if only_text else None
        messages.append({"role": "user", "content": text if only_text else parts})
    return messages


def _marked(blocks: list[dict[str, Any]]) -> bool:
    """Whether any block carries a prompt-caching mark."""
    return any("cache_control" in block for block in blocks)


def _with_mark(part: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    """`part` with `block`'s prompt-caching mark, if it has one."""
    if "cache_control" in block:
        part["cache_control"] = block["cache_control"]
    return part


def _text_part(block: dict[str, Any]) -> dict[str, Any]:
    return _with_mark({"type": "text", "text": block.get("text", "")}, block)


def _image_url(block: dict[str, Any]) -> str:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    if source.get("type") == "url":
        return str(source.get("url", ""))
    raise InvalidRequest(f"image source type {source.get('type')!r} is not supported")


def _tool_result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    text = text_of(content) if content is not None else ""
    return f"[error] {text}" if block.get("is_error") else text


def _assistant_to_openai(content: str | list[dict[str, Any]]) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(_text_part(block))
        elif kind == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": json.dumps(block.get("input") or {}),
                    },
                }
            )
        elif kind in THINKING_BLOCKS:
            thinking.append(block)  # signed: back to Anthropic exactly as it came
        else:
            raise InvalidRequest(f"content block type {kind!r} is not supported in assistant turns")
    joined = "".join(t["text"] for t in texts) or None
    message: dict[str, Any] = {"role": "assistant", "content": texts if _marked(texts) else joined}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking:
        message["thinking_blocks"] = thinking
    return message


def _tool_to_openai(tool: dict[str, Any]) -> dict[str, Any]:
    if "name" not in tool:
        raise InvalidRequest("every tool needs a name")
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return _with_mark({"type": "function", "function": function}, tool)


def _tool_choice_to_openai(choice: dict[str, Any]) -> str | dict[str, Any] | None:
    kind = choice.get("type")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name", "")}}
    return None


def chat_to_message(body: dict[str, Any], usage: Usage, model: str, message_id: str) -> dict:
    """The gateway's completion body as an Anthropic `message`."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = list(message.get("thinking_blocks") or [])
    text = text_of(message.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name", ""),
                "input": parse_arguments(function.get("arguments")),
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }


def parse_arguments(arguments: object) -> dict[str, Any]:
    """OpenAI tool-call arguments (a JSON string) as Anthropic's `input` object."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except json.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


# --- provider side: internal request → Anthropic request, Anthropic message → internal ------
