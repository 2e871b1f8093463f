"""Anthropic Messages ↔ OpenAI chat completions, provider side (the `anthropic` adapter).

The internal OpenAI-shaped request becomes an Anthropic Messages request
(`chat_to_anthropic_request`), and the upstream's message becomes an internal completion
(`message_to_chat`). Pure functions; the caller side is in `anthropic.py`.

JSON mode: Anthropic has no `response_format`, but a tool's input always follows the tool's
schema. So a request with `response_format` (`json_object`, or `json_schema` with an object at
its root) gets one more tool, `JSON_TOOL`, whose schema is the answer's, and the model is made
to call it (or, when the caller has tools of its own, to call one tool or the other); the
call's input comes back as the message's text, with finish reason `stop`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from router.errors import InvalidRequest
from router.schemas import ChatCompletionRequest, Usage
from router.tokens import text_of
from router.translate.anthropic import (
    DEFAULT_MAX_TOKENS,
    THINKING_BLOCKS,
    finish_reason,
    parse_arguments,
    usage_from_anthropic,
)
from router.translate.reasoning import anthropic_thinking
from tollway.config.schema import ModelConfig


def chat_to_anthropic_request(request: ChatCompletionRequest, model: ModelConfig) -> dict:
    """The gateway's request as an Anthropic Messages request for `model`."""
    system: list[dict[str, Any]] = []  # text blocks, with their prompt-caching marks
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        # Anthropic wants alternating turns: merge a turn into the previous one of its role.
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        elif blocks:
            messages.append({"role": role, "content": blocks})

    for message in request.messages:
        if message.role in ("system", "developer"):
            system += _system_blocks(message.content)
        elif message.role == "user":
            add("user", _openai_content_blocks(message.content))
        elif message.role == "assistant":
            # thinking first, as the model wrote it (its signature covers it)
            blocks = list((message.model_extra or {}).get("thinking_blocks") or [])
            blocks += _openai_content_blocks(message.content)
            for call in message.tool_calls or []:
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": parse_arguments(function.get("arguments")),
                    }
                )
            add("assistant", blocks)
        elif message.role in ("tool", "function"):
            result = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id or message.name or "",
                "content": text_of(message.content),
            }
            add("user", [_carry_mark(result, message.content)])
    payload: dict[str, Any] = {
        "model": model.upstream_name or model.name,
        "messages": messages,
        "max_tokens": request.output_limit or model.max_output_tokens or DEFAULT_MAX_TOKENS,
    }
    if any("cache_control" in block for block in system):
        payload["system"] = system
    elif system:
        payload["system"] = "\n\n".join(b["text"] for b in system if b["text"])
    if request.temperature is not None:
        payload["temperature"] = min(request.temperature, 1.0)
    if request.top_p is not None:
        payload["top_p"] = request.top_p
    if request.stop_sequences:
        payload["stop_sequences"] = request.stop_sequences
    if request.tools:
        payload["tools"] = [_tool_to_anthropic(tool) for tool in request.tools]
        choice = _tool_choice_to_anthropic(request.tool_choice)
        if choice:
            payload["tool_choice"] = choice
    json_tool = json_answer_tool(request)
    if json_tool is not None:
        payload["tools"] = [*payload.get("tools", []), json_tool]
        choice = payload.get("tool_choice")
        if not request.tools or choice == {"type": "none"}:
            payload["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
        elif choice is None:  # auto: the caller's tools, or the answer through the JSON tool
            payload["tool_choice"] = {"type": "any"}
    if request.user:
        payload["metadata"] = {"user_id": request.user}
    thinking = (request.model_extra or {}).get("thinking")
    if thinking is None:  # OpenAI's reasoning_effort, converted
        thinking, payload["max_tokens"] = anthropic_thinking(request, model, payload["max_tokens"])
    if thinking is not None:
        payload["thinking"] = thinking
    return payload


#: the tool an Anthropic model answers through in JSON mode (see the module's docstring)
JSON_TOOL = "tollway_json_answer"


def json_answer_tool(request: ChatCompletionRequest) -> dict[str, Any] | None:
    """The JSON tool for the request's `response_format`, or None without one."""
    response_format = (request.model_extra or {}).get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        schema: Any = {"type": "object"}
        description = "Give your whole answer as one JSON object, through this tool."
    elif kind == "json_schema":
        spec = response_format.get("json_schema") or {}  # type: ignore[union-attr]
        schema = spec.get("schema") or {"type": "object"}
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise InvalidRequest(
                "an Anthropic model answers a json_schema response_format only when the "
                "schema's root is an object",
                details={"param": "response_format"},
            )
        description = spec.get("description") or (
            "Give your whole answer through this tool, as JSON matching its schema."
        )
    else:
        return None
    return {"name": JSON_TOOL, "description": description, "input_schema": schema}


def _openai_content_blocks(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "text":
            block: dict[str, Any] = {"type": "text", "text": part.get("text", "")}
        elif part.get("type") == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            block = {"type": "image", "source": _image_source(url)}
        else:
            raise InvalidRequest(f"content part type {part.get('type')!r} cannot go to Anthropic")
        if "cache_control" in part:
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _system_blocks(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A system message as Anthropic system text blocks."""
    if isinstance(content, list):
        return [b for b in _openai_content_blocks(content) if b["type"] == "text"]
    return [{"type": "text", "text": text_of(content)}]


def _carry_mark(block: dict[str, Any], content: str | list[dict[str, Any]] | None) -> dict:
    """`block` with the prompt-caching mark of any of the message's parts."""
    if isinstance(content, list):
        for part in content:
            if "cache_control" in part:
                block["cache_control"] = part["cache_control"]
    return block


def _image_source(url: str) -> dict[str, str]:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header.removeprefix("data:").split(";")[0] or "image/png"
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


def _tool_to_anthropic(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    if tool.get("type") != "function" or not function.get("name"):
        raise InvalidRequest("only function tools with a name can go to Anthropic")
    result: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        result["description"] = function["description"]
    if "cache_control" in tool:
        result["cache_control"] = tool["cache_control"]
    return result


def _tool_choice_to_anthropic(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return None
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            return {"type": "tool", "name": name}
    return None


def message_to_chat(body: dict[str, Any], model: str) -> tuple[dict[str, Any], Usage]:
    """An Anthropic `message` as an OpenAI `chat.completion` body, with its usage."""
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    answered_in_json = False
    for block in body.get("content") or []:
        if block.get("type") in THINKING_BLOCKS:
            thinking.append(block)
        elif block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use" and block.get("name") == JSON_TOOL:
            answered_in_json = True
            texts = [json.dumps(block.get("input") or {})]  # the answer, without any preamble
        elif block.get("type") == "tool_use":
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
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking:
        message["thinking_blocks"] = thinking
        message["reasoning_content"] = "".join(b.get("thinking", "") for b in thinking)
    finish = finish_reason(body.get("stop_reason"))
    if answered_in_json and not tool_calls and finish == "tool_calls":
        finish = "stop"
    usage = usage_from_anthropic(body.get("usage"))
    completion = {
        "id": str(body.get("id") or ""),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": usage.openai(),
    }
    return completion, usage
