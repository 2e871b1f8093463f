"""The OpenAI-compatible endpoints: `/v1/chat/completions` (plain and streamed),
`/v1/embeddings` and `/v1/models`.

A stream answers in OpenAI's SSE framing: `data: {chat.completion.chunk}` frames, the usage
chunk (empty `choices`) only when the caller set `stream_options.include_usage`, then
`data: [DONE]`. tollway asks every upstream for usage regardless, to bill the call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from router.anthropic_betas import HEADER as BETA_HEADER
from router.anthropic_betas import requested_betas
from router.attribution import attribute
from router.errors import GatewayError, ModelNotFound, openai_error_body
from router.gateway import Gateway
from router.headers import call_headers
from router.policy import ensure_allowed
from router.responses import JSONBytes, body_schema, parse_body
from router.schemas import ChatCompletionRequest, EmbeddingsRequest
from router.sse import EventStreamResponse, data_frame
from router.streaming import ChatStream
from router.translate.reasoning import REASONING_FIELDS
from tollway.auth import Principal, authenticate, principal_of

router = APIRouter(tags=["openai"])


async def gateway_of(request: Request) -> Gateway:
    """FastAPI dependency: the process's `Gateway` (a coroutine, so no worker-thread hop)."""
    return _gateway(request)


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


@router.post("/v1/chat/completions", openapi_extra=body_schema(ChatCompletionRequest))
async def chat_completions(request: Request) -> Response:
    # no FastAPI dependencies or body parameter: this is the hot path (router/responses.py)
    principal = principal_of(request)
    body = await parse_body(request, ChatCompletionRequest)
    if BETA_HEADER in request.headers:  # for an Anthropic upstream (router/anthropic_betas.py)
        body.ask_betas(requested_betas(request.headers))
    gateway = _gateway(request)
    ensure_allowed(principal, body.model)
    who = attribute(principal, request.headers, body.user)
    cache = gateway.cache.mode(request.headers)
    if body.stream:
        stream = await gateway.open_stream(body, who, cache=cache)
        return stream_response(stream, openai_frames(stream, include_usage=body.include_usage))
    outcome = await gateway.call_chat(body, who, cache=cache)
    return JSONBytes(outcome.body, headers=call_headers(outcome.event))


@router.post("/v1/embeddings", openapi_extra=body_schema(EmbeddingsRequest))
async def embeddings(request: Request) -> Response:
    principal = principal_of(request)
    body = await parse_body(request, EmbeddingsRequest)
    ensure_allowed(principal, body.model)
    who = attribute(principal, request.headers, body.user)
    gateway = _gateway(request)
    outcome = await gateway.embed(body, who, cache=gateway.cache.mode(request.headers))
    return JSONBytes(outcome.body, headers=call_headers(outcome.event))


def stream_response(stream: ChatStream, frames: AsyncGenerator[bytes, None]) -> Response:
    """A streamed answer in any protocol's `frames`; however it ends, the frames are closed
    and then the call is settled (billed and published, router/streaming.py)."""

    async def settle() -> None:
        await frames.aclose()
        await stream.aclose()

    return EventStreamResponse(frames, on_close=settle, headers=stream_headers(stream))


def stream_headers(stream: ChatStream) -> dict[str, str]:
    """The x-tollway-* headers a stream can carry up front (its cost is only in the event)."""
    return call_headers(stream.event, cost=False)


async def openai_frames(stream: ChatStream, *, include_usage: bool) -> AsyncGenerator[bytes, None]:
    # only a call that asked for reasoning (either protocol's words) can carry thinking
    thinks = not REASONING_FIELDS.isdisjoint(stream.request.model_extra or {})
    try:
        async for chunk in stream.chunks():
            yield data_frame(_openai_chunk(chunk) if thinks else chunk)
    except GatewayError as exc:
        yield data_frame(openai_error_body(exc))  # the OpenAI SDKs raise on an error frame
        return
    if include_usage:
        yield data_frame(
            {
                "id": stream.id,
                "object": "chat.completion.chunk",
                "created": stream.created,
                "model": stream.model,
                "choices": [],
                "usage": stream.usage.openai(),
            }
        )
    yield data_frame("[DONE]")


def _openai_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """A chunk as OpenAI-protocol callers read it: thinking (router/translate/anthropic.py)
    as `reasoning_content` text, the name OpenAI-compatible reasoning servers use; the
    signatures only an Anthropic conversation needs are left out."""
    public = []
    for choice in chunk.get("choices") or ():
        delta = dict(choice.get("delta") or {})
        thinking = delta.pop("thinking", None) or {}
        if thinking.get("thinking"):
            delta["reasoning_content"] = thinking["thinking"]
        public.append({**choice, "delta": delta})
    return {**chunk, "choices": public}


@router.get("/v1/models")
async def list_models(
    principal: Principal = Depends(authenticate), gateway: Gateway = Depends(gateway_of)
) -> dict[str, object]:
    """The catalogue models and routes this key may call."""
    created = int(time.time())
    return {
        "object": "list",
        "data": [_model_object(n, created) for n in _names(gateway) if principal.may_use(n)],
    }


@router.get("/v1/models/{model:path}")
async def retrieve_model(
    model: str, principal: Principal = Depends(authenticate), gateway: Gateway = Depends(gateway_of)
) -> dict[str, object]:
    if model not in _names(gateway) or not principal.may_use(model):
        raise ModelNotFound(f"the model {model!r} does not exist or this key may not use it")
    return _model_object(model, int(time.time()))


def _names(gateway: Gateway) -> list[str]:
    return [m.name for m in gateway.config.models] + [r.name for r in gateway.config.routes]


def _model_object(name: str, created: int) -> dict[str, object]:
    return {"id": name, "object": "model", "created": created, "owned_by": "tollway"}
