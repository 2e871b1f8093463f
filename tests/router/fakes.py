"""Fake upstreams speaking each provider's real wire format, for tests without a network.

Each fake is a small Starlette app shaped after the provider's published API reference:
- OpenAI `POST /v1/chat/completions` — `chat.completion` bodies and SSE `chat.completion.chunk`
  frames ending in `data: [DONE]`, the usage chunk (empty `choices`) only with
  `stream_options.include_usage`; `Authorization: Bearer`. `POST /v1/embeddings` — a `list` of
  `embedding` objects, floats or (`encoding_format: base64`) little-endian float32 in base64.
- Anthropic `POST /v1/messages` — `message` bodies and the SSE event sequence message_start,
  content_block_start, ping, content_block_delta, content_block_stop, message_delta,
  message_stop; `POST /v1/messages/count_tokens` — `{"input_tokens": n}`; `x-api-key` plus
  `anthropic-version: 2023-06-01`.
- Gemini `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`
  (`data:` frames of `GenerateContentResponse`, running `usageMetadata`), `:batchEmbedContents`
  (`{"embeddings": [{"values": [...]}]}`, no token counts); `x-goog-api-key`.

A wrong key is refused the way each provider does it, with the presented key echoed in the
message (worse than the real services, on purpose: tollway must redact it). Every request is
recorded on `app.state.requests` (headers and JSON body) for assertions.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

WORDS = ["fake", "upstream", "answers", "in", "its", "own", "wire", "format"]
TEXT = " ".join(WORDS)
TOOL_ARGS = {"city": "Paris"}
BREAK_MID_STREAM = "please fail after two words"

OPENAI_USAGE = {"prompt": 21, "cached": 5, "reasoning": 2}
ANTHROPIC_USAGE = {"input": 12, "cache_read": 8, "cache_write": 3}
ANTHROPIC_COUNT = 1234  # what the fake's count_tokens answers
#: what the Anthropic fake thinks before it answers, when the request enables thinking
THINKING_BLOCK = {
    "type": "thinking",
    "thinking": "The user wants a short answer.",
    "signature": "sig-fake-1",
}


def _thinking_kept(messages: list[dict[str, Any]]) -> bool:
    """With thinking on, an assistant turn that used a tool must start with its thinking
    block, as Anthropic's API insists."""
    for message in messages:
        content = message.get("content")
        if message.get("role") != "assistant" or not isinstance(content, list):
            continue
        if any(b.get("type") == "tool_use" for b in content) and (
            content[0].get("type") not in ("thinking", "redacted_thinking")
        ):
            return False
    return True


GEMINI_USAGE = {"prompt": 30, "cached": 10, "thoughts": 4}
OPENAI_EMBEDDING_TOKENS = 7  # per input
EMBEDDING_DIMENSIONS = 8


def fake_vector(index: int, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The vector a fake upstream returns for its `index`-th input (exact in float32)."""
    return [index + d / 8 for d in range(dimensions)]


async def _record(request: Request) -> dict[str, Any]:
    body = await request.json()
    request.app.state.requests.append(
        {"path": request.url.path, "headers": dict(request.headers), "body": body}
    )
    return body  # type: ignore[no-any-return]


def _sse(frames: AsyncIterator[bytes] | list[bytes]) -> StreamingResponse:
    async def iterate() -> AsyncIterator[bytes]:
        if isinstance(frames, list):
            for frame in frames:
                yield frame
        else:
            async for frame in frames:
                yield frame

    return StreamingResponse(iterate(), media_type="text/event-stream")


# --- OpenAI ----------------------------------------------------------------------------------


def openai_app(secret: str) -> Starlette:
    async def chat_completions(request: Request) -> Response:
        presented = request.headers.get("authorization", "").removeprefix("Bearer ")
        if presented != secret:
            return JSONResponse(
                {
                    "error": {
                        "message": f"Incorrect API key provided: {presented}.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status_code=401,
            )
        body = await _record(request)
        model = body["model"]
        use_tool = bool(body.get("tools"))
        usage = {
            "prompt_tokens": OPENAI_USAGE["prompt"],
            "completion_tokens": len(WORDS),
            "total_tokens": OPENAI_USAGE["prompt"] + len(WORDS),
            "prompt_tokens_details": {"cached_tokens": OPENAI_USAGE["cached"], "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": OPENAI_USAGE["reasoning"],
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        tool_call: dict[str, Any] = {
            "id": "call_fake_1",
            "type": "function",
            "function": {
                "name": body["tools"][0]["function"]["name"] if use_tool else "",
                "arguments": json.dumps(TOOL_ARGS),
            },
        }
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if use_tool else TEXT}
            if use_tool:
                message["tool_calls"] = [tool_call]
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 1700000000,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "logprobs": None,
                            "finish_reason": "tool_calls" if use_tool else "stop",
                        }
                    ],
                    "usage": usage,
                }
            )

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if (body.get("stream_options") or {}).get("include_usage"):
                data["usage"] = None
            return f"data: {json.dumps(data)}\n\n".encode()

        frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if body["messages"][-1].get("content") == BREAK_MID_STREAM:
            frames += [chunk({"content": WORDS[0]}), chunk({"content": " " + WORDS[1]})]
            error = {"error": {"message": "The server is overloaded", "type": "server_error"}}
            frames.append(f"data: {json.dumps(error)}\n\n".encode())
            return _sse(frames)
        if use_tool:
            name = body["tools"][0]["function"]["name"]
            first = {
                "index": 0,
                "id": "call_fake_1",
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            frames.append(chunk({"tool_calls": [first]}))
            arguments = json.dumps(TOOL_ARGS)
            for part in (arguments[:5], arguments[5:]):
                frames.append(
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                )
            frames.append(chunk({}, "tool_calls"))
        else:
            for i, word in enumerate(WORDS):
                frames.append(chunk({"content": word if i == 0 else " " + word}))
            frames.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            final = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            frames.append(f"data: {json.dumps(final)}\n\n".encode())
        frames.append(b"data: [DONE]\n\n")
        return _sse(frames)

    async def embeddings(request: Request) -> Response:
        presented = request.headers.get("authorization", "").removeprefix("Bearer ")
        if presented != secret:
            return JSONResponse(
                {"error": {"message": f"Incorrect API key provided: {presented}.",
                           "type": "invalid_request_error", "code": "invalid_api_key"}},
                status_code=401,
            )  # fmt: skip
        body = await _record(request)
        given = body["input"]
        count = 1 if isinstance(given, str) or isinstance(given[0], int) else len(given)
        data = []
        for i in range(count):
            vector = fake_vector(i, body.get("dimensions") or EMBEDDING_DIMENSIONS)
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = OPENAI_EMBEDDING_TOKENS * count
        return JSONResponse(
            {"object": "list", "data": data, "model": body["model"],
             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        )  # fmt: skip

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
        ]
    )
    app.state.requests = []
    return app


# --- Anthropic -------------------------------------------------------------------------------


def anthropic_app(secret: str) -> Starlette:
    async def messages(request: Request) -> Response:
        if request.headers.get("x-api-key") != secret:
            presented = request.headers.get("x-api-key")
            return JSONResponse(
                {
                    "type": "error",
                    "error": {
                        "type": "authentication_error",
                        "message": f"invalid x-api-key {presented}",
                    },
                },
                status_code=401,
            )
        if request.headers.get("anthropic-version") != "2023-06-01":
            return JSONResponse(
                {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "bad version"},
                },
                status_code=400,
            )
        body = await _record(request)
        tools = body.get("tools") or []
        model = body["model"]
        thinks = (body.get("thinking") or {}).get("type") == "enabled"
        budget = (body.get("thinking") or {}).get("budget_tokens", 0)
        if thinks and not 1024 <= budget < body["max_tokens"]:
            return JSONResponse(
                {"type": "error", "error": {"type": "invalid_request_error", "message":
                 "thinking.budget_tokens: must be at least 1024 and less than max_tokens"}},
                status_code=400,
            )  # fmt: skip
        if thinks and not _thinking_kept(body["messages"]):
            return JSONResponse(
                {"type": "error", "error": {"type": "invalid_request_error", "message":
                 "messages: Expected `thinking` or `redacted_thinking`, but found `tool_use`"}},
                status_code=400,
            )  # fmt: skip
        content: list[dict[str, Any]] = []
        if tools:
            choice = body.get("tool_choice") or {}
            called = choice.get("name") if choice.get("type") == "tool" else tools[0]["name"]
            content.append(
                {"type": "tool_use", "id": "toolu_fake", "name": called, "input": TOOL_ARGS}
            )
        else:
            content.append({"type": "text", "text": TEXT})
        stop = "tool_use" if tools else "end_turn"
        usage = {
            "input_tokens": ANTHROPIC_USAGE["input"],
            "cache_creation_input_tokens": ANTHROPIC_USAGE["cache_write"],
            "cache_read_input_tokens": ANTHROPIC_USAGE["cache_read"],
            "output_tokens": len(WORDS),
        }
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": ([THINKING_BLOCK] if thinks else []) + content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                }
            )

        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

        start = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        frames = [event("message_start", {"type": "message_start", "message": start})]
        main = 0  # the index of the answer's block: 1 after a thinking block
        if thinks:
            main = 1
            start_block = {"type": "content_block_start", "index": 0,
                           "content_block": {"type": "thinking", "thinking": ""}}  # fmt: skip
            frames.append(event("content_block_start", start_block))
            half = len(THINKING_BLOCK["thinking"]) // 2
            for text in (THINKING_BLOCK["thinking"][:half], THINKING_BLOCK["thinking"][half:]):
                delta = {"type": "thinking_delta", "thinking": text}
                frames.append(event("content_block_delta",
                                    {"type": "content_block_delta", "index": 0, "delta": delta}))  # fmt: skip
            delta = {"type": "signature_delta", "signature": THINKING_BLOCK["signature"]}
            frames.append(event("content_block_delta",
                                {"type": "content_block_delta", "index": 0, "delta": delta}))  # fmt: skip
            frames.append(event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        if tools:
            block = {**content[0], "input": {}}
            frames.append(
                event(
                    "content_block_start",
                    {"type": "content_block_start", "index": main, "content_block": block},
                )
            )
            frames.append(event("ping", {"type": "ping"}))
            arguments = json.dumps(TOOL_ARGS)
            for part in (arguments[:4], arguments[4:]):
                frames.append(
                    event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": main,
                            "delta": {"type": "input_json_delta", "partial_json": part},
                        },
                    )
                )
        else:
            frames.append(
                event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": main,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            frames.append(event("ping", {"type": "ping"}))
            for i, word in enumerate(WORDS):
                frames.append(
                    event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": main,
                            "delta": {"type": "text_delta", "text": word if i == 0 else " " + word},
                        },
                    )
                )
        frames.append(event("content_block_stop", {"type": "content_block_stop", "index": main}))
        frames.append(
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": len(WORDS)},
                },
            )
        )
        frames.append(event("message_stop", {"type": "message_stop"}))
        return _sse(frames)

    async def count_tokens(request: Request) -> Response:
        if request.headers.get("x-api-key") != secret:
            return JSONResponse({"type": "error", "error": {"type": "authentication_error",
                                 "message": "invalid x-api-key"}}, status_code=401)  # fmt: skip
        body = await _record(request)
        if "max_tokens" in body or "stream" in body:
            message = "max_tokens: Extra inputs are not permitted"
            error = {"type": "invalid_request_error", "message": message}
            return JSONResponse({"type": "error", "error": error}, status_code=400)
        return JSONResponse({"input_tokens": ANTHROPIC_COUNT})

    app = Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        ]
    )
    app.state.requests = []
    return app


# --- Gemini ----------------------------------------------------------------------------------


def gemini_app(secret: str) -> Starlette:
    def usage(words: int) -> dict[str, Any]:
        return {
            "promptTokenCount": GEMINI_USAGE["prompt"],
            "candidatesTokenCount": words,
            "cachedContentTokenCount": GEMINI_USAGE["cached"],
            "thoughtsTokenCount": GEMINI_USAGE["thoughts"],
            "totalTokenCount": GEMINI_USAGE["prompt"] + words + GEMINI_USAGE["thoughts"],
        }

    async def model_action(request: Request) -> Response:
        presented = request.headers.get("x-goog-api-key")
        if presented != secret or "key" in request.query_params:
            return JSONResponse(
                {
                    "error": {
                        "code": 400,
                        "message": f"API key not valid ({presented}). Please pass a valid API key.",
                        "status": "INVALID_ARGUMENT",
                    }
                },
                status_code=400,
            )
        model, _, action = request.path_params["model_action"].partition(":")
        body = await _record(request)
        declarations = [
            d for t in body.get("tools") or [] for d in t.get("functionDeclarations", [])
        ]
        count = int((body.get("generationConfig") or {}).get("candidateCount") or 1)
        if action == "generateContent":
            parts: list[dict[str, Any]] = (
                [{"functionCall": {"name": declarations[0]["name"], "args": TOOL_ARGS}}]
                if declarations
                else [{"text": TEXT}]
            )
            return JSONResponse(
                {
                    "candidates": [
                        {
                            "content": {"role": "model", "parts": parts},
                            "finishReason": "STOP",
                            "index": index,
                        }
                        for index in range(count)
                    ],
                    "usageMetadata": usage(len(WORDS) * count),
                    "modelVersion": model,
                    "responseId": "gem-fake",
                }
            )
        if action == "batchEmbedContents":
            requests = body["requests"]
            if any(r.get("model") != f"models/{model}" for r in requests):
                return JSONResponse({"error": {"code": 400, "message": "model mismatch"}}, 400)
            return JSONResponse(
                {
                    "embeddings": [
                        {"values": fake_vector(i, r.get("outputDimensionality") or 8)}
                        for i, r in enumerate(requests)
                    ]
                }
            )
        if action != "streamGenerateContent" or request.query_params.get("alt") != "sse":
            return JSONResponse({"error": {"code": 404, "message": "not found"}}, status_code=404)

        frames: list[bytes] = []
        for i in range(0, len(WORDS), 2):
            pair = WORDS[i : i + 2]
            text = " ".join(pair) if i == 0 else " " + " ".join(pair)
            last = i + 2 >= len(WORDS)
            candidates = []
            for index in range(count):
                candidate: dict[str, Any] = {
                    "content": {"role": "model", "parts": [{"text": text}]},
                    "index": index,
                }
                if last:
                    candidate["finishReason"] = "STOP"
                candidates.append(candidate)
            payload = {
                "candidates": candidates,
                "usageMetadata": usage(min(i + 2, len(WORDS)) * count),
                "modelVersion": model,
                "responseId": "gem-fake",
            }
            frames.append(f"data: {json.dumps(payload)}\r\n\r\n".encode())
        return _sse(frames)

    app = Starlette(routes=[Route("/v1beta/models/{model_action}", model_action, methods=["POST"])])
    app.state.requests = []
    return app
