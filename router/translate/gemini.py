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
from router.translate.reasoning import gemini_thinking
from router.upstream import ChatChunk
from tollway.config.schema import ModelConfig

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


def chat_to_gemini_request(
    request: ChatCompletionRequest, model: ModelConfig | None = None
) -> dict[str, Any]:
    """The gateway's request as a `generateContent` body for `model` (whose name goes in the
    URL; its capabilities decide whether reasoning settings are sent)."""
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
    if request.n and request.n > 1:
        config["candidateCount"] = request.n
    config.update(_json_mode(request))
    thinking = gemini_thinking(request, model) if model is not None else None
    if thinking is not None:
        config["thinkingConfig"] = thinking
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
        tool_config = _tool_config(request.tool_choice)
        if tool_config:
            body["toolConfig"] = tool_config
    return body


def _json_mode(request: ChatCompletionRequest) -> dict[str, Any]:
    """OpenAI's `response_format` as Gemini's: JSON output, following the JSON schema if one
    is given (`responseJsonSchema`)."""
    response_format = (request.model_extra or {}).get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")  # type: ignore[union-attr]
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema:
            config["responseJsonSchema"] = schema
        return config
    return {}


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


def _candidates(body: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(choice index, candidate) of each candidate in a response; one empty candidate when
    there is none (a response blocked by a safety filter has no candidates)."""
    candidates = [c for c in body.get("candidates") or [] if isinstance(c, dict)] or [{}]
    return [(int(c.get("index", i)), c) for i, c in enumerate(candidates)]


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
    """A `generateContent` response as an OpenAI `chat.completion` body, with its usage: a
    choice per candidate (several when the request set `candidateCount`, OpenAI's `n`)."""
    response_id = str(body.get("responseId") or "")
    choices = []
    for index, candidate in _candidates(body):
        text, calls = _split_parts(candidate)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = [_tool_call(c, i, response_id) for i, c in enumerate(calls)]
        choices.append(
            {
                "index": index,
                "message": message,
                "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
                "logprobs": None,
            }
        )
    usage = usage_from_gemini(body.get("usageMetadata"))
    completion = {
        "id": response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage.openai(),
    }
    return completion, usage


class GeminiStreamDecoder:
    """`streamGenerateContent?alt=sse` payloads → OpenAI chunks (and usage).

    Every payload is a partial `GenerateContentResponse`; its `usageMetadata` is cumulative,
    so the latest one is the usage so far, and the final one comes once every candidate (one
    per choice with `candidateCount`) has its `finishReason`.
    """

    def __init__(self, model: str, choices: int = 1) -> None:
        self.model = model
        self.choices = choices
        self.created = int(time.time())
        self._started: set[int] = set()
        self._tool_calls: dict[int, int] = {}  # choice → function calls so far
        self._finished: set[int] = set()

    def feed(self, payload: dict[str, Any]) -> list[ChatChunk]:
        response_id = str(payload.get("responseId") or "")
        items: list[ChatChunk] = []
        for index, candidate in _candidates(payload):
            items += self._candidate_chunks(response_id, index, candidate)
        if payload.get("usageMetadata"):
            usage = usage_from_gemini(payload["usageMetadata"])
            items.append(ChatChunk(usage=usage, final=len(self._finished) >= self.choices))
        return items

    def _candidate_chunks(
        self, response_id: str, index: int, candidate: dict[str, Any]
    ) -> list[ChatChunk]:
        items: list[ChatChunk] = []
        if index not in self._started:
            self._started.add(index)
            items.append(self._chunk(response_id, index, {"role": "assistant", "content": ""}))
        text, calls = _split_parts(candidate)
        if text:
            items.append(self._chunk(response_id, index, {"content": text}))
        for call in calls:
            number = self._tool_calls.get(index, 0)
            self._tool_calls[index] = number + 1
            call_delta = {"index": number, **_tool_call(call, number, response_id)}
            items.append(self._chunk(response_id, index, {"tool_calls": [call_delta]}))
        reason = candidate.get("finishReason")
        if reason:
            self._finished.add(index)
            finish = finish_reason(reason, self._tool_calls.get(index, 0) > 0)
            items.append(self._chunk(response_id, index, {}, finish))
        return items

    def _chunk(
        self, response_id: str, index: int, delta: dict[str, Any], finish: str | None = None
    ) -> ChatChunk:
        return ChatChunk(
            data={
                "id": response_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
            }
        )
