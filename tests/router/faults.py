"""A fault-injecting upstream in OpenAI's wire format, scripted per model.

`app.state.script[model]` is a list of steps consumed one per request to that (upstream) model:
- `"ok"`: a normal `chat.completion` (or SSE stream when the request asks for one);
- `"500"` / `"503"`: that HTTP error with an OpenAI error body;
- `"429:S"`: a rate-limit error with `Retry-After: S`;
- `"hang:S"`: sleep S seconds before answering normally (a per-attempt timeout trips first).
An empty script answers `"ok"`. `app.state.hits[model]` counts every request, so a test can
prove a model with an open circuit was not called at all.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

WORDS = ["resilient", "answer"]
USAGE = {"prompt_tokens": 9, "completion_tokens": len(WORDS), "total_tokens": 9 + len(WORDS)}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": kind}},
        status_code=status,
        headers=headers,
    )


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-faulty",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": " ".join(WORDS)},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }


def _stream(model: str) -> StreamingResponse:
    def frame(data: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    base = {"id": "chatcmpl-faulty", "object": "chat.completion.chunk", "created": 1700000000}

    async def frames() -> AsyncIterator[bytes]:
        for i, word in enumerate(WORDS):
            delta = {"role": "assistant", "content": word} if i == 0 else {"content": " " + word}
            choice = {"index": 0, "delta": delta, "finish_reason": None}
            yield frame({**base, "model": model, "choices": [choice]})
        stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
        yield frame({**base, "model": model, "choices": [stop]})
        yield frame({**base, "model": model, "choices": [], "usage": USAGE})
        yield b"data: [DONE]\n\n"

    return StreamingResponse(frames(), media_type="text/event-stream")


def faulty_app() -> Starlette:
    async def chat_completions(request: Request) -> Response:
        body = await request.json()
        model = body["model"]
        request.app.state.hits[model] += 1
        script: list[str] = request.app.state.script.setdefault(model, [])
        step = script.pop(0) if script else "ok"
        kind, _, arg = step.partition(":")
        if kind in ("500", "502", "503"):
            return _error(int(kind), f"injected {kind}")
        if kind == "429":
            return _error(429, "injected rate limit", {"retry-after": arg or "1"})
        if kind == "hang":
            await asyncio.sleep(float(arg))
        if body.get("stream"):
            return _stream(model)
        return JSONResponse(_completion(model))

    app = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])
    app.state.script = {}
    app.state.hits = Counter()
    return app
