"""The OpenAI fake: chat completions (plain and SSE) and embeddings."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import (
    BREAK_MID_STREAM,
    EMBEDDING_DIMENSIONS,
    OPENAI_EMBEDDING_TOKENS,
    OPENAI_USAGE,
    TEXT,
    TOOL_ARGS,
    WORDS,
    fake_vector,
    record,
    sse,
)

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
        body = await record(request)
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
            return sse(frames)
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
        return sse(frames)

    async def embeddings(request: Request) -> Response:
        presented = request.headers.get("authorization", "").removeprefix("Bearer ")
        if presented != secret:
            return JSONResponse(
                {"error": {"message": f"Incorrect API key provided: {presented}.",
                           "type": "invalid_request_error", "code": "invalid_api_key"}},
                status_code=401,
            )  # fmt: skip
        body = await record(request)
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
