"""The OpenAI-compatible endpoints: `/v1/chat/completions` and `/v1/models`."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from router.attribution import attribute
from router.errors import InvalidRequest
from router.gateway import Gateway
from router.schemas import ChatCompletionRequest
from tollway.auth import Principal, authenticate

router = APIRouter(tags=["openai"])


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


@router.post("/v1/chat/completions")
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    principal: Principal = Depends(authenticate),
    gateway: Gateway = Depends(_gateway),
) -> JSONResponse:
    if body.stream:
        raise InvalidRequest("streaming responses are not supported by this tollway build yet")
    who = attribute(principal, request.headers, body.user)
    outcome = await gateway.call_chat(body, who)
    event = outcome.event
    return JSONResponse(
        outcome.body,
        headers={
            "x-tollway-event-id": str(event.event_id),
            "x-tollway-model": event.model,
            "x-tollway-provider": event.provider,
            "x-tollway-cost-usd": format(event.cost_usd, "f"),
        },
    )


@router.get("/v1/models")
async def list_models(
    principal: Principal = Depends(authenticate), gateway: Gateway = Depends(_gateway)
) -> dict[str, object]:
    created = int(time.time())
    names = [m.name for m in gateway.config.models] + [r.name for r in gateway.config.routes]
    return {
        "object": "list",
        "data": [
            {"id": n, "object": "model", "created": created, "owned_by": "tollway"} for n in names
        ],
    }
