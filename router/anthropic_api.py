"""The Anthropic-compatible endpoint: `POST /v1/messages`, plain and streamed.

The request is translated into the gateway's internal (OpenAI) shape, served by whichever
model the name or route resolves to — Claude, GPT, Gemini or the simulator — and the answer
translated back, so an Anthropic SDK can use any catalogue model. `x-api-key` authenticates
(as `Authorization: Bearer` does); `anthropic-version` is accepted and not needed. Errors
render as Anthropic's `{"type": "error", ...}` (router/app.py), including inside a stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from router.anthropic_schemas import MessagesRequest
from router.attribution import attribute
from router.errors import GatewayError, anthropic_error_body
from router.gateway import Gateway
from router.openai_api import stream_headers
from router.policy import ensure_allowed
from router.schemas import Usage
from router.sse import EventStreamResponse, event_frame
from router.streaming import ChatStream
from router.tokens import estimate_prompt_tokens
from router.translate.anthropic import chat_to_message, messages_to_chat
from router.translate.anthropic_stream import AnthropicEventEncoder
from tollway.auth import Principal, authenticate
from tollway.events import CallEvent

router = APIRouter(tags=["anthropic"])


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


@router.post("/v1/messages")
async def messages(
    body: MessagesRequest,
    request: Request,
    principal: Principal = Depends(authenticate),
    gateway: Gateway = Depends(_gateway),
) -> Response:
    chat = messages_to_chat(body)
    ensure_allowed(principal, chat.model)
    who = attribute(principal, request.headers, chat.user)
    if body.stream:
        stream = await gateway.open_stream(chat, who, endpoint="messages")
        frames = anthropic_frames(stream)

        async def settle() -> None:
            await frames.aclose()
            await stream.aclose()

        return EventStreamResponse(frames, on_close=settle, headers=stream_headers(stream))
    outcome = await gateway.call_chat(chat, who, endpoint="messages")
    event = outcome.event
    message = chat_to_message(outcome.body, event_usage(outcome.event), event.model, _msg_id(event))
    return JSONResponse(
        message,
        headers={
            "x-tollway-event-id": str(event.event_id),
            "x-tollway-model": event.model,
            "x-tollway-provider": event.provider,
            "x-tollway-cost-usd": format(event.cost_usd, "f"),
        },
    )


async def anthropic_frames(stream: ChatStream) -> AsyncGenerator[bytes, None]:
    encoder = AnthropicEventEncoder(
        message_id=_msg_id(stream.event),
        model=stream.model,
        estimated_input_tokens=estimate_prompt_tokens(stream.request.messages),
    )
    for name, payload in encoder.start():
        yield event_frame(name, payload)
    try:
        async for chunk in stream.chunks():
            for name, payload in encoder.feed(chunk):
                yield event_frame(name, payload)
    except GatewayError as exc:
        yield event_frame("error", anthropic_error_body(exc))  # the SDKs raise on it
        return
    for name, payload in encoder.finish(stream.usage):
        yield event_frame(name, payload)


def event_usage(event: CallEvent) -> Usage:
    """The billed usage of a finished call, as recorded in its event."""
    return Usage(
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        cached_input_tokens=event.cached_input_tokens,
        reasoning_tokens=event.reasoning_tokens,
    )


def _msg_id(event: CallEvent) -> str:
    """Anthropic-style message id derived from the event id, so the two can be matched."""
    return "msg_" + event.event_id.hex
