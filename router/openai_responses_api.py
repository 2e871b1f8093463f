"""OpenAI's Responses API: `POST /v1/responses`, plain and streamed.

The request is translated into the gateway's internal (chat) shape and served by whichever
model the name or route resolves to — GPT, Claude, Gemini or the simulator — then translated
back (router/translate/openai_responses.py): the clients built on this API (the OpenAI Agents
SDK, Codex CLI) work by changing the base URL. Each call is one event with
`endpoint = 'responses'`. Nothing is stored: a `previous_response_id` is a 400.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from router.errors import GatewayError
from router.gateway import CallOutcome
from router.openai_responses_schemas import ResponsesRequest
from router.responses import body_schema
from router.sse import event_frame
from router.streaming import ChatStream
from router.translate.openai_responses import (
    ResponsesEventEncoder,
    chat_to_response,
    responses_to_chat,
)
from router.translated_api import serve_translated
from tollway.events import CallEvent

router = APIRouter(tags=["openai"])


@router.post("/v1/responses", openapi_extra=body_schema(ResponsesRequest))
async def responses(request: Request) -> Response:
    return await serve_translated(
        request, ResponsesRequest, "responses", responses_to_chat, response_events, _answer
    )


def _answer(body: ResponsesRequest, outcome: CallOutcome) -> dict[str, Any]:
    event = outcome.event
    return chat_to_response(body, outcome.body, outcome.usage, event.model, _response_id(event))


async def response_events(
    stream: ChatStream, body: ResponsesRequest
) -> AsyncGenerator[bytes, None]:
    encoder = ResponsesEventEncoder(body, _response_id(stream.event), stream.model)
    for name, payload in encoder.start():
        yield event_frame(name, payload)
    try:
        async for chunk in stream.chunks():
            for name, payload in encoder.feed(chunk):
                yield event_frame(name, payload)
    except GatewayError as exc:  # the SDKs raise on an error event
        error = {"type": "error", "code": exc.type, "message": exc.message, "param": None}
        yield event_frame("error", {**error, "sequence_number": encoder.sequence})
        return
    for name, payload in encoder.finish(stream.usage):
        yield event_frame(name, payload)


def _response_id(event: CallEvent) -> str:
    """A Responses-style id derived from the event id, so the two can be matched."""
    return "resp_" + event.event_id.hex
