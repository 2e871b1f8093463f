"""The Anthropic fake: messages (plain and the SSE event sequence) and count_tokens."""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import (
    ANTHROPIC_COUNT,
    ANTHROPIC_USAGE,
    TEXT,
    THINKING_BLOCK,
    TOOL_ARGS,
    WORDS,
    record,
    sse,
)


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
        body = await record(request)
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
        return sse(frames)

    async def count_tokens(request: Request) -> Response:
        if request.headers.get("x-api-key") != secret:
            return JSONResponse({"type": "error", "error": {"type": "authentication_error",
                                 "message": "invalid x-api-key"}}, status_code=401)  # fmt: skip
        body = await record(request)
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
