"""OpenAI's Responses API ↔ the gateway's chat completions, caller side.

A Responses request (`input` as text or items, `instructions`, function tools, `text.format`)
becomes the internal OpenAI-shaped chat request (`responses_to_chat`); the internal completion
becomes a `response` object (`chat_to_response`), and a stream of internal chunks becomes the
Responses event sequence (`ResponsesEventEncoder`): `response.created`, `response.in_progress`,
then per output item `response.output_item.added`, its content or arguments deltas and its
`…done` events, and `response.completed` (or `response.incomplete`) with the usage.

Only function tools translate (the hosted tools — web search, file search, computer use — are
OpenAI's own services), and input images must be URLs or data URLs (not uploaded file ids).
"""

from __future__ import annotations

import time
from typing import Any

from router.errors import InvalidRequest
from router.openai_responses_schemas import ResponsesRequest
from router.schemas import ChatCompletionRequest, Usage
from router.tokens import text_of

Event = tuple[str, dict[str, Any]]


def responses_to_chat(request: ResponsesRequest) -> ChatCompletionRequest:
    """A Responses request as the gateway's OpenAI-shaped chat request."""
    if request.previous_response_id or (request.model_extra or {}).get("conversation"):
        raise InvalidRequest(
            "tollway keeps no responses (zero data retention): send the whole conversation "
            "in `input` instead of previous_response_id or conversation",
            details={"param": "previous_response_id"},
        )
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    if isinstance(request.input, str):
        messages.append({"role": "user", "content": request.input})
    else:
        for item in request.input:
            _add_item(messages, item)
    payload: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.stream:
        payload |= {"stream": True, "stream_options": {"include_usage": True}}
    if request.max_output_tokens:
        payload["max_tokens"] = request.max_output_tokens
    for name in ("temperature", "top_p", "parallel_tool_calls"):
        value = getattr(request, name)
        if value is not None:
            payload[name] = value
    if request.tools:
        payload["tools"] = [_tool(tool) for tool in request.tools]
    if request.tool_choice is not None:
        payload["tool_choice"] = _tool_choice(request.tool_choice)
    response_format = _response_format((request.text or {}).get("format"))
    if response_format:
        payload["response_format"] = response_format
    user = request.safety_identifier or request.user
    if user:
        payload["user"] = user
    reasoning = (request.model_extra or {}).get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        payload["reasoning_effort"] = reasoning["effort"]  # router/translate/reasoning.py
    return ChatCompletionRequest.model_validate(payload)


def _add_item(messages: list[dict[str, Any]], item: dict[str, Any]) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "system", "developer", "assistant"):
            raise InvalidRequest(
                f"input message role {role!r} is not one of user, system, developer, assistant"
            )
        content = item.get("content")
        if role == "assistant":
            messages.append({"role": "assistant", "content": _text(content)})
        else:
            messages.append({"role": role, "content": _parts(content)})
    elif kind == "function_call":
        call = {
            "id": str(item.get("call_id") or item.get("id") or ""),
            "type": "function",
            "function": {"name": item.get("name", ""), "arguments": item.get("arguments") or "{}"},
        }
        last = messages[-1] if messages else None
        if last and last["role"] == "assistant" and last.get("tool_calls") is not None:
            last["tool_calls"].append(call)  # parallel calls: one assistant turn
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else _text(output)
        messages.append(
            {"role": "tool", "tool_call_id": str(item.get("call_id", "")), "content": text}
        )
    elif kind == "reasoning":
        return  # the model's own reasoning of an earlier turn: not part of a chat request
    else:
        raise InvalidRequest(f"input item type {kind!r} is not supported")


def _parts(content: Any) -> str | list[dict[str, Any]]:
    """Message content as chat content: a string, or text and image parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest("message content must be a string or a list of parts")
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image = {"url": part["image_url"], "detail": part.get("detail") or "auto"}
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise InvalidRequest(
                f"content part {kind!r} is not supported (text, and images by URL, are)"
            )
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _text(content: Any) -> str:
    parts = _parts(content) if content is not None else ""
    return parts if isinstance(parts, str) else text_of(parts)


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function" or not tool.get("name"):
        raise InvalidRequest(
            f"tool type {tool.get('type')!r} is not supported: only function tools with a name"
        )
    function = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object"}}
    for key in ("description", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name", "")}}
    if choice in ("auto", "none", "required"):
        return choice
    raise InvalidRequest(f"tool_choice {choice!r} is not supported")


def _response_format(format_: Any) -> dict[str, Any] | None:
    kind = format_.get("type") if isinstance(format_, dict) else None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = {k: format_[k] for k in ("name", "schema", "strict", "description") if k in format_}
        return {"type": "json_schema", "json_schema": spec}
    return None


# --- out: the response object and its stream -----------------------------------------------


def responses_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def response_object(
    request: ResponsesRequest, response_id: str, model: str, created_at: int
) -> dict[str, Any]:
    """A `response` with the request's settings, in progress and without output yet."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "model": model,
        "output": [],
        "usage": None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "tool_choice": request.tool_choice or "auto",
        "tools": request.tools or [],
        "text": request.text or {"format": {"type": "text"}},
        "previous_response_id": None,
        "store": False,  # tollway keeps no responses
        "metadata": request.metadata or {},
        "truncation": request.truncation or "disabled",
        "user": request.user,
    }


def _finished(response: dict[str, Any], finish_reason: str | None, usage: Usage) -> None:
    incomplete = finish_reason == "length"
    response["status"] = "incomplete" if incomplete else "completed"
    response["incomplete_details"] = {"reason": "max_output_tokens"} if incomplete else None
    response["usage"] = responses_usage(usage)


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": content if status == "completed" else []}  # fmt: skip


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}  # fmt: skip


def chat_to_response(
    request: ResponsesRequest, body: dict[str, Any], usage: Usage, model: str, response_id: str
) -> dict[str, Any]:
    """The gateway's completion as a finished `response`."""
    response = response_object(request, response_id, model, int(time.time()))
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    suffix = response_id.removeprefix("resp_")
    text = text_of(message.get("content"))
    if text:
        response["output"].append(_message_item(f"msg_{suffix}", text, "completed"))
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        item = _call_item(f"fc_{suffix}_{i}", str(call.get("id") or f"call_{suffix}_{i}"),
                          function.get("name", ""), function.get("arguments") or "", "completed")  # fmt: skip
        response["output"].append(item)
    _finished(response, choice.get("finish_reason"), usage)
    return response


class ResponsesEventEncoder:
    """Internal chunks → the Responses event sequence, for one response."""

    def __init__(self, request: ResponsesRequest, response_id: str, model: str) -> None:
        self.response = response_object(request, response_id, model, int(time.time()))
        self._suffix = response_id.removeprefix("resp_")
        self._sequence = 0
        self._text: tuple[int, str] | None = None  # open message item: output index, text
        self._calls: dict[int, int] = {}  # chunk tool-call index → output index
        self._finish: str | None = None

    def start(self) -> list[Event]:
        return [self._event("response.created", response=self._snapshot()),
                self._event("response.in_progress", response=self._snapshot())]  # fmt: skip

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events += self._text_delta(delta["content"])
            for call in delta.get("tool_calls") or []:
                events += self._call_delta(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def finish(self, usage: Usage) -> list[Event]:
        events = self._close_text()
        for output_index in self._calls.values():
            item = self.response["output"][output_index]
            item["status"] = "completed"
            events.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                      output_index=output_index, arguments=item["arguments"]))  # fmt: skip
            events.append(
                self._event("response.output_item.done", output_index=output_index, item=dict(item))
            )
        _finished(self.response, self._finish, usage)
        kind = (
            "response.incomplete"
            if self.response["status"] == "incomplete"
            else "response.completed"
        )
        events.append(self._event(kind, response=self._snapshot()))
        return events

    def _text_delta(self, text: str) -> list[Event]:
        events: list[Event] = []
        if self._text is None:
            output_index = len(self.response["output"])
            item = _message_item(f"msg_{self._suffix}_{output_index}", "", "in_progress")
            self.response["output"].append(item)
            self._text = (output_index, "")
            events.append(
                self._event(
                    "response.output_item.added", output_index=output_index, item=dict(item)
                )
            )
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(self._event("response.content_part.added", item_id=item["id"],
                                      output_index=output_index, content_index=0, part=part))  # fmt: skip
        output_index, so_far = self._text
        self._text = (output_index, so_far + text)
        item_id = self.response["output"][output_index]["id"]
        events.append(self._event("response.output_text.delta", item_id=item_id, output_index=output_index,
                                  content_index=0, delta=text, logprobs=[]))  # fmt: skip
        return events

    def _close_text(self) -> list[Event]:
        if self._text is None:
            return []
        output_index, text = self._text
        self._text = None
        item = _message_item(self.response["output"][output_index]["id"], text, "completed")
        self.response["output"][output_index] = item
        part = item["content"][0]
        return [
            self._event("response.output_text.done", item_id=item["id"], output_index=output_index,
                        content_index=0, text=text, logprobs=[]),
            self._event("response.content_part.done", item_id=item["id"], output_index=output_index,
                        content_index=0, part=part),
            self._event("response.output_item.done", output_index=output_index, item=item),
        ]  # fmt: skip

    def _call_delta(self, call: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        if index not in self._calls:
            events += self._close_text()  # the text before the calls is complete
            output_index = len(self.response["output"])
            call_id = str(call.get("id") or f"call_{self._suffix}_{index}")
            item = _call_item(f"fc_{self._suffix}_{index}", call_id, function.get("name", ""), "",
                              "in_progress")  # fmt: skip
            self.response["output"].append(item)
            self._calls[index] = output_index
            events.append(
                self._event(
                    "response.output_item.added", output_index=output_index, item=dict(item)
                )
            )
        output_index = self._calls[index]
        item = self.response["output"][output_index]
        if function.get("arguments"):
            item["arguments"] += function["arguments"]
            events.append(self._event("response.function_call_arguments.delta", item_id=item["id"],
                                      output_index=output_index, delta=function["arguments"]))  # fmt: skip
        return events

    @property
    def sequence(self) -> int:
        """The next event's sequence number."""
        return self._sequence

    def _snapshot(self) -> dict[str, Any]:
        return {**self.response, "output": [dict(item) for item in self.response["output"]]}

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return kind, event
