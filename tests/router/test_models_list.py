"""`GET /v1/models` and `GET /v1/models/{id}` with the OpenAI SDK: the catalogue models and
routes the calling key may use, and nothing it may not."""

from __future__ import annotations

import httpx
import openai
import pytest

from .conftest import Stack

pytestmark = pytest.mark.integration


def _client(stack: Stack, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=key, max_retries=0)


async def test_an_unrestricted_key_sees_every_model_and_route(stack: Stack) -> None:
    listed = [m.id async for m in _client(stack, stack.key).models.list()]
    expected = [m.name for m in stack.config.models] + [r.name for r in stack.config.routes]
    assert listed == expected
    model = await _client(stack, stack.key).models.retrieve("gpt-4o")
    assert (model.id, model.object, model.owned_by) == ("gpt-4o", "model", "tollway")


async def test_a_restricted_key_sees_only_what_it_may_use(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        created = await http.post(
            "/v1/admin/keys",
            headers={"authorization": "Bearer tw-router-admin"},
            json={"business_line": "eng", "allowed_models": ["gpt-4o-mini", "embed"]},
        )
    assert created.status_code == 201, created.text
    client = _client(stack, created.json()["key"])
    assert [m.id async for m in client.models.list()] == ["gpt-4o-mini", "embed"]
    assert (await client.models.retrieve("embed")).id == "embed"
    with pytest.raises(openai.NotFoundError) as hidden:
        await client.models.retrieve("gpt-4o")  # exists, but not for this key
    assert hidden.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("no-such-model")
    with pytest.raises(openai.AuthenticationError):
        await _client(stack, "tw-wrong").models.list()
