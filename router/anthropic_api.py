"""The Anthropic-compatible endpoints: `POST /v1/messages`, plain and streamed, and
`POST /v1/messages/count_tokens`.

The request is translated into the gateway's internal (OpenAI) shape, served by whichever
model the name or route resolves to — Claude, GPT, Gemini or the simulator — and the answer
translated back, so an Anthropic SDK can use any catalogue model. `x-api-key` authenticates
(as `Authorization: Bearer` does); `anthropic-version` is optional, but a malformed one is refused
with a 400, as Anthropic's API does, rather than silently ignored. Errors
render as Anthropic's `{"type": "error", ...}` (router/app.py), including inside a stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from router.anthropic_betas import requested_betas
from router.anthropic_schemas import CountTokensRequest, MessagesRequest
from router.attribution import attribute
from router.errors import GatewayError, InvalidRequest, anthropic_error_body
from router.gateway import Gateway
from router.headers import call_headers
from router.openai_api import stream_response
from router.policy import ensure_allowed
from router.responses import JSONBytes, body_schema, parse_body
from router.sse import event_frame
from router.streaming import ChatStream
from router.token_count import prompt_tokens
from router.tokens import estimate_prompt_tokens
from router.translate import to_internal
from router.translate.anthropic import chat_to_message, messages_to_chat
from router.translate.anthropic_stream import AnthropicEventEncoder
from tollway.auth import principal_of
from tollway.events import CallEvent

router = APIRouter(tags=["anthropic"])

#: the body, plus the optional `anthropic-version` header, in the OpenAPI document
_VERSIONED_BODY = {
    **body_schema(MessagesRequest),
    "parameters": [
        {
            "name": "anthropic-version",
            "in": "header",
            "required": False,
            "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        }
    ],
}


#: the first `anthropic-version` Anthropic's API defined; later ones are dates too, and SDKs
#: send newer ones than tollway knows, so any valid date from then on is accepted
FIRST_ANTHROPIC_VERSION = date(2023, 1, 1)


def _version(anthropic_version: str | None) -> str | None:
    """`anthropic-version` is optional; when sent it must be a version date (YYYY-MM-DD, from
    2023-01-01), as Anthropic's API insists, so a garbled header is not silently ignored."""
    if anthropic_version is None:
        return None
    try:
        when = date.fromisoformat(anthropic_version) if len(anthropic_version) == 10 else None
    except ValueError:
        when = None
    if when is None or when < FIRST_ANTHROPIC_VERSION:
        raise InvalidRequest(
            f"anthropic-version: {anthropic_version[:40]!r} is not a valid version "
            "(a date such as 2023-06-01)"
        )
    return anthropic_version


@router.post("/v1/messages", openapi_extra=_VERSIONED_BODY)
async def messages(request: Request) -> Response:
    # no FastAPI dependencies or body parameter: this is the hot path (router/responses.py)
    principal = principal_of(request)
    _version(request.headers.get("anthropic-version"))
    body = await parse_body(request, MessagesRequest)
    gateway: Gateway = request.app.state.gateway
    chat = to_internal(messages_to_chat, body).ask_betas(requested_betas(request.headers))
    ensure_allowed(principal, chat.model)
    who = attribute(principal, request.headers, chat.user)
    cache = gateway.cache.mode(request.headers)
    if body.stream:
        stream = await gateway.open_stream(chat, who, endpoint="messages", cache=cache)
        return stream_response(stream, anthropic_frames(stream))
    outcome = await gateway.call_chat(chat, who, endpoint="messages", cache=cache)
    event = outcome.event
    message = chat_to_message(outcome.body, outcome.usage, event.model, _msg_id(event))
    return JSONBytes(message, headers=call_headers(event))


@router.post(
    "/v1/messages/count_tokens",
    openapi_extra={**_VERSIONED_BODY, **body_schema(CountTokensRequest)},
)
async def count_tokens(request: Request) -> Response:
    """How many input tokens the request's prompt is, as Anthropic's API answers it (coding
    tools ask before they send): counted by Anthropic for a model it serves, estimated for any
    other. Nothing is billed. The guardrails screen the prompt first, as Anthropic sees it."""
    principal = principal_of(request)
    _version(request.headers.get("anthropic-version"))
    body = await parse_body(request, CountTokensRequest)
    chat = to_internal(messages_to_chat, body).ask_betas(requested_betas(request.headers))
    ensure_allowed(principal, chat.model)
    gateway: Gateway = request.app.state.gateway
    who = attribute(principal, request.headers)
    return JSONBytes({"input_tokens": await prompt_tokens(gateway, chat, who)})


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


def _msg_id(event: CallEvent) -> str:
    """Anthropic-style message id derived from the event id, so the two can be matched."""
    return "msg_" + event.event_id.hex
