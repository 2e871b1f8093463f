"""The fast lane in front of FastAPI's stack answers like the routed path would: the body limit,
errors in the caller's protocol, a logged generic 500 for a surprise; everything else is
FastAPI's. Pure ASGI, no broker: the lane's endpoints here are small stand-ins."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from router.app import FastLane, GatewayApp, install_error_handlers
from router.errors import InvalidRequest

LIMIT = 64


async def echo(request: Request) -> Response:
    return JSONResponse({"echo": (await request.json())["say"], "app": request.app.title})


async def refuse(request: Request) -> Response:
    raise InvalidRequest("messages: field required")


async def crash(request: Request) -> Response:
    raise RuntimeError("upstream answered with secret sk-live-1234")


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = GatewayApp(title="lane-test")
    install_error_handlers(app)

    @app.get("/v1/chat/completions")
    async def routed() -> dict[str, str]:
        return {"path": "routed"}

    app.fast_lane = FastLane(
        {"/v1/chat/completions": echo, "/v1/messages": refuse, "/v1/chat/crash": crash},
        handlers=lambda: app.exception_handlers,
        body_limit=lambda: LIMIT,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lane")


async def test_a_post_reaches_its_endpoint_with_the_app(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/chat/completions", json={"say": "hi"})
    assert answer.status_code == 200
    assert answer.json() == {"echo": "hi", "app": "lane-test"}


async def test_other_methods_and_paths_take_the_routed_path(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/chat/completions")).json() == {"path": "routed"}
    assert (await client.post("/v1/other", json={})).status_code == 404


async def test_a_body_over_the_limit_is_refused_in_the_protocol(
    client: httpx.AsyncClient,
) -> None:
    openai = await client.post("/v1/chat/completions", json={"say": "x" * LIMIT})
    assert openai.status_code == 413
    assert openai.json()["error"]["type"] == "invalid_request_error"
    anthropic = await client.post("/v1/messages", json={"say": "x" * LIMIT})
    assert anthropic.status_code == 413
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "request_too_large"


async def test_an_error_is_answered_by_the_apps_handler(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/messages", json={})
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "type": "invalid_request_error",
        "message": "messages: field required",
    }


async def test_a_surprise_is_a_logged_generic_500_without_details(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="router.app"):
        answer = await client.post("/v1/chat/crash", json={})
    assert answer.status_code == 500
    assert answer.json()["error"]["message"] == "internal error (logged on the server)"
    assert "sk-live" not in answer.text
    assert any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in caplog.records)
