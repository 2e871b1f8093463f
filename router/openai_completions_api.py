"""OpenAI's legacy completions API: `POST /v1/completions`, plain and streamed.

For the clients that still speak it (LangChain's `OpenAI` LLM class, older SDK code, simple
scripts): the prompt is answered by whichever model the name or route resolves to, through
the chat path (router/translate/openai_completions.py has what is refused, and why). Each call
is one event with `endpoint = 'completions'`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from router.errors import GatewayError, openai_error_body
from router.gateway import CallOutcome
from router.openai_completions_schemas import CompletionRequest
from router.responses import body_schema
from router.sse import data_frame
from router.streaming import ChatStream
from router.translate.openai_completions import (
    chat_to_completion,
    chunk_to_completion,
    completion_to_chat,
)
from router.translated_api import serve_translated
from tollway.events import CallEvent

router = APIRouter(tags=["openai"])


@router.post("/v1/completions", openapi_extra=body_schema(CompletionRequest))
async def completions(request: Request) -> Response:
    return await serve_translated(
        request, CompletionRequest, "completions", completion_to_chat, completion_frames, _answer
    )


def _answer(body: CompletionRequest, outcome: CallOutcome) -> dict[str, Any]:
    return chat_to_completion(outcome.body, _completion_id(outcome.event))


async def completion_frames(
    stream: ChatStream, body: CompletionRequest
) -> AsyncGenerator[bytes, None]:
    include_usage = bool((body.stream_options or {}).get("include_usage"))
    completion_id = _completion_id(stream.event)
    try:
        async for chunk in stream.chunks():
            frame = chunk_to_completion(chunk, completion_id)
            if frame is not None:
                yield data_frame(frame)
    except GatewayError as exc:
        yield data_frame(openai_error_body(exc))
        return
    if include_usage:
        yield data_frame(
            {
                "id": completion_id,
                "object": "text_completion",
                "created": stream.created,
                "model": stream.model,
                "choices": [],
                "usage": stream.usage.openai(),
            }
        )
    yield data_frame("[DONE]")


def _completion_id(event: CallEvent) -> str:
    return f"cmpl-{event.event_id.hex}"
