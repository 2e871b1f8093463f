"""The skeleton of an endpoint whose protocol is translated to the gateway's chat shape and
back (the Responses API, the legacy completions API): authenticate, parse, translate, admit,
then stream or answer whole — each endpoint gives only its translations."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from router.attribution import attribute
from router.gateway import CallOutcome, Gateway
from router.headers import call_headers
from router.openai_api import stream_response
from router.policy import ensure_allowed
from router.responses import JSONBytes, parse_body
from router.schemas import ChatCompletionRequest
from router.streaming import ChatStream
from router.translate import to_internal
from tollway.auth import principal_of
from tollway.events import Endpoint

B = TypeVar("B", bound=BaseModel)


async def serve_translated(
    request: Request,
    schema: type[B],
    endpoint: Endpoint,
    to_chat: Callable[[B], ChatCompletionRequest],
    frames: Callable[[ChatStream, B], AsyncGenerator[bytes, None]],
    answer: Callable[[B, CallOutcome], dict[str, Any]],
) -> Response:
    """`to_chat` turns the caller's body into a chat request; a streamed call's frames come
    from `frames`, a whole answer from `answer`."""
    principal = principal_of(request)
    body = await parse_body(request, schema)
    chat = to_internal(to_chat, body)
    ensure_allowed(principal, chat.model)
    who = attribute(principal, request.headers, chat.user)
    gateway: Gateway = request.app.state.gateway
    cache = gateway.cache.mode(request.headers)
    if chat.stream:
        stream = await gateway.open_stream(chat, who, endpoint=endpoint, cache=cache)
        return stream_response(stream, frames(stream, body))
    outcome = await gateway.call_chat(chat, who, endpoint=endpoint, cache=cache)
    return JSONBytes(answer(body, outcome), headers=call_headers(outcome.event))
