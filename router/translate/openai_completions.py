"""OpenAI's legacy completions API on the gateway's chat shape.

A completions request becomes a chat request with the prompt as its one user message, so any
model or route answers it, whatever its provider; the answer's choices come back as
`text_completion` choices, plain or streamed. What has no chat equivalent is refused with a
400 that says so rather than answered differently: several prompts in one request, prompts as
token ids, `suffix` (fill-in-the-middle), `echo`, `logprobs` and `best_of` above 1.
"""

from __future__ import annotations

from typing import Any

from router.errors import InvalidRequest
from router.openai_completions_schemas import CompletionRequest
from router.schemas import ChatCompletionRequest

#: fields passed as they are to the chat request
_SAME = ("max_tokens", "temperature", "top_p", "n", "stop", "user", "seed",
         "presence_penalty", "frequency_penalty", "stream_options")  # fmt: skip


def completion_to_chat(request: CompletionRequest) -> ChatCompletionRequest:
    prompt = request.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise InvalidRequest(
                "prompt: send one text prompt per request (several prompts, or token ids, "
                "cannot be answered by every provider)",
                details={"param": "prompt"},
            )
        prompt = prompt[0]
    for name, unsupported in (
        ("suffix", request.suffix is not None),
        ("echo", request.echo),
        ("logprobs", request.logprobs is not None),
        ("best_of", (request.best_of or 1) > 1),
    ):
        if unsupported:
            raise InvalidRequest(
                f"{name} is not supported: tollway answers completions through chat models",
                details={"param": name},
            )
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": "user", "content": prompt}],
    }
    for name in _SAME:
        value = getattr(request, name)
        if value is not None:
            payload[name] = value
    if request.stream:
        payload["stream"] = True
        payload["stream_options"] = {**(request.stream_options or {}), "include_usage": True}
    return ChatCompletionRequest.model_validate(payload)


def chat_to_completion(chat: dict[str, Any], completion_id: str) -> dict[str, Any]:
    """A chat completion as a `text_completion`."""
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": chat.get("created", 0),
        "model": chat.get("model", ""),
        "choices": [
            {
                "text": (choice.get("message") or {}).get("content") or "",
                "index": choice.get("index", i),
                "logprobs": None,
                "finish_reason": choice.get("finish_reason"),
            }
            for i, choice in enumerate(chat.get("choices") or [])
        ],
        "usage": chat.get("usage"),
    }


def chunk_to_completion(chunk: dict[str, Any], completion_id: str) -> dict[str, Any] | None:
    """A streamed chat chunk as a `text_completion` chunk; None for one with nothing to say
    (the role, tool-call or thinking deltas a completion has no place for)."""
    choices = []
    for i, choice in enumerate(chunk.get("choices") or []):
        text = (choice.get("delta") or {}).get("content") or ""
        finish = choice.get("finish_reason")
        if text or finish:
            choices.append(
                {"text": text, "index": choice.get("index", i), "logprobs": None,
                 "finish_reason": finish}
            )  # fmt: skip
    if not choices:
        return None
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": chunk.get("created", 0),
        "model": chunk.get("model", ""),
        "choices": choices,
    }
