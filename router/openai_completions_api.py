"""OpenAI's legacy completions API: `POST /v1/completions`, plain and streamed.

For the clients that still speak it (LangChain's `OpenAI` LLM class, older SDK code, simple
scripts): the prompt is answered by whichever model the name or route resolves to, through
the chat path (router/translate/openai_completions.py has what is refused, and why). Each call
is one event with `endpoint = 'completions'`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request
from fastapi.responses import Response

from router.attribution import attribute
from router.errors import GatewayError, openai_error_body
from router.gateway import Gateway
from router.headers import call_headers
from router.openai_api import stream_response
from router.openai_completions_schemas import CompletionRequest
from router.policy import ensure_allowed
from router.responses import JSONBytes, body_schema, parse_body
from router.sse import data_frame
from router.streaming import ChatStream
from router.translate import to_internal
from router.translate.openai_completions import (
    chat_to_completion,
    chunk_to_completion,
    completion_to_chat,
)
from tollway.auth import principal_of
from tollway.events import CallEvent

router = APIRouter(tags=["openai"])


@router.post("/v1/completions", openapi_extra=body_schema(CompletionRequest))
async def completions(request: Request) -> Response:
    principal = principal_of(request)
    body = await parse_body(request, CompletionRequest)
    chat = to_internal(completion_to_chat, body)
    ensure_allowed(principal, chat.model)
    who = attribute(principal, request.headers, chat.user)
    gateway: Gateway = request.app.state.gateway
    cache = gateway.cache.mode(request.headers)
    if body.stream:
        stream = await gateway.open_stream(chat, who, endpoint="completions", cache=cache)
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        return stream_response(stream, completion_frames(stream, include_usage))
    outcome = await gateway.call_chat(chat, who, endpoint="completions", cache=cache)
    answer = chat_to_completion(outcome.body, _completion_id(outcome.event))
    return JSONBytes(answer, headers=call_headers(outcome.event))


async def completion_frames(stream: ChatStream, include_usage: bool) -> AsyncGenerator[bytes, None]:
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
