"""The Gemini fake: generateContent, streamGenerateContent (SSE) and batchEmbedContents."""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import GEMINI_USAGE, TEXT, TOOL_ARGS, WORDS, fake_vector, record, sse

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
        body = await record(request)
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
        return sse(frames)

    app = Starlette(routes=[Route("/v1beta/models/{model_action}", model_action, methods=["POST"])])
    app.state.requests = []
    return app
