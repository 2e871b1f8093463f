"""A minimal OpenAI-compatible upstream: the baseline every proxy measurement is compared to.

Run as `python -m benchmarks.upstream PORT`. It answers `/v1/chat/completions` at once with a
fixed completion and usage, so what a benchmark sees beyond it is the proxy's own cost.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 0,
    "model": "bench-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok " * 40},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
}


async def chat(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse(COMPLETION)


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error", access_log=False)
