"""Gemini `generateContent` ↔ OpenAI chat completions, provider side only.

Gemini names things differently — `contents` with `user`/`model` roles and `parts`, a
`systemInstruction`, `functionDeclarations`, `finishReason` in capitals — and counts tokens
differently: `promptTokenCount` includes `cachedContentTokenCount`, while `thoughtsTokenCount`
is NOT part of `candidatesTokenCount`. tollway's output tokens are therefore candidates +
thoughts, with the thoughts as reasoning tokens (both billed as output).
"""

from __future__ import annotations

import json
import time
from typing import Any

from router.errors import InvalidRequest
from router.schemas import ChatCompletionRequest, Usage
from router.tokens import text_of
from router.translate.anthropic import parse_arguments
from router.upstream import ChatChunk

FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


def finish_reason(reason: str | None, called_tools: bool) -> str:
    if called_tools and reason in (None, "STOP"):
        return "tool_calls"
    return FINISH.get(reason or "STOP", "stop")


def usage_from_gemini(metadata: dict[str, Any] | None) -> Usage:
    if not metadata:
        return Usage(estimated=True)
    thoughts = int(metadata.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(metadata.get("promptTokenCount") or 0)
        + int(metadata.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(metadata.get("candidatesTokenCount") or 0) + thoughts,
        cached_input_tokens=int(metadata.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def chat_to_gemini_request(request: ChatCompletionRequest) -> dict[str, Any]:
    """The gateway's request as a `generateContent` body (the model goes in the URL)."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}  # tool_call id → function name, for functionResponse

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        elif parts:
            contents.append({"role": role, "parts": parts})

    for message in request.messages:
        if message.role in ("system", "developer"):
            system.append(text_of(message.content))
        elif message.role == "user":
            add("user", _parts(message.content))
        elif message.role == "assistant":
            parts = _parts(message.content)
            for call in message.tool_calls or []:
                function = call.get("function") or {}
                tool_names[str(call.get("id", ""))] = function.get("name", "")
                parts.append(
                    {
                        "functionCall": {
                            "name": function.get("name", ""),
                            "args": parse_arguments(function.get("arguments")),
                        }
                    }
                )
            add("model", parts)
        elif message.role in ("tool", "function"):
            name = tool_names.get(message.tool_call_id or "", message.name or "")
            output = text_of(message.content)
            try:
                response = json.loads(output)
            except json.JSONDecodeError:
                response = None
            if not isinstance(response, dict):
                response = {"content": output}
            add("user", [{"functionResponse": {"name": name, "response": response}}])
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    config: dict[str, Any] = {}
    if request.output_limit:
        config["maxOutputTokens"] = request.output_limit
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop_sequences:
        config["stopSequences"] = request.stop_sequences
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
        tool_config = _tool_config(request.tool_choice)
        if tool_config:
            body["toolConfig"] = tool_config
    return body


def _parts(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "text":
            parts.append({"text": part.get("text", "")})
        elif part.get("type") == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            if not url.startswith("data:"):
                raise InvalidRequest("Gemini takes images inline: send a data: URL")
            header, _, data = url.partition(",")
            mime = header.removeprefix("data:").split(";")[0] or "image/png"
            parts.append({"inlineData": {"mimeType": mime, "data": data}})
        else:
            raise InvalidRequest(f"content part type {part.get('type')!r} cannot go to Gemini")
    return parts


def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    if tool.get("type") != "function" or not function.get("name"):
        raise InvalidRequest("only function tools with a name can go to Gemini")
    declaration: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        declaration["description"] = function["description"]
    if function.get("parameters"):
        declaration["parameters"] = function["parameters"]
    return declaration


def _tool_config(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if choice == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return None


def _candidate(body: dict[str, Any]) -> dict[str, Any]:
    candidates = body.get("candidates") or [{}]
    return candidates[0] if isinstance(candidates[0], dict) else {}


def _split_parts(candidate: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The candidate's visible text and its function calls (thought parts are skipped)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if part.get("thought"):
            continue
        if "text" in part:
            texts.append(str(part["text"]))
        elif "functionCall" in part:
            calls.append(part["functionCall"])
    return "".join(texts), calls


def _tool_call(call: dict[str, Any], index: int, response_id: str) -> dict[str, Any]:
    return {
        "id": str(call.get("id") or f"call_{response_id}_{index}"),
        "type": "function",
        "function": {"name": call.get("name", ""), "arguments": json.dumps(call.get("args") or {})},
    }


def gemini_to_chat(body: dict[str, Any], model: str) -> tuple[dict[str, Any], Usage]:
    """A `generateContent` response as an OpenAI `chat.completion` body, with its usage."""
    response_id = str(body.get("responseId") or "")
    candidate = _candidate(body)
    text, calls = _split_parts(candidate)
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [_tool_call(c, i, response_id) for i, c in enumerate(calls)]
    usage = usage_from_gemini(body.get("usageMetadata"))
    completion = {
        "id": response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
                "logprobs": None,
            }
        ],
        "usage": usage.openai(),
    }
    return completion, usage


class GeminiStreamDecoder:
    """`streamGenerateContent?alt=sse` payloads → OpenAI chunks (and usage).

    Every payload is a partial `GenerateContentResponse`; its `usageMetadata` is cumulative,
    so the latest one is the usage so far, and the one with a `finishReason` is final.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.created = int(time.time())
        self._started = False
        self._tool_calls = 0

    def feed(self, payload: dict[str, Any]) -> list[ChatChunk]:
        response_id = str(payload.get("responseId") or "")
        items: list[ChatChunk] = []
        if not self._started:
            self._started = True
            items.append(self._chunk(response_id, {"role": "assistant", "content": ""}))
        candidate = _candidate(payload)
        text, calls = _split_parts(candidate)
        if text:
            items.append(self._chunk(response_id, {"content": text}))
        for call in calls:
            index = self._tool_calls
            self._tool_calls += 1
            items.append(
                self._chunk(
                    response_id,
                    {"tool_calls": [{"index": index, **_tool_call(call, index, response_id)}]},
                )
            )
        reason = candidate.get("finishReason")
        if reason:
            finish = finish_reason(reason, self._tool_calls > 0)
            items.append(self._chunk(response_id, {}, finish))
        if payload.get("usageMetadata"):
            usage = usage_from_gemini(payload["usageMetadata"])
            items.append(ChatChunk(usage=usage, final=bool(reason)))
        return items

    def _chunk(
        self, response_id: str, delta: dict[str, Any], finish: str | None = None
    ) -> ChatChunk:
        return ChatChunk(
            data={
                "id": response_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )
