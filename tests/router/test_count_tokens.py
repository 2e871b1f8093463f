"""`POST /v1/messages/count_tokens` with the Anthropic SDK: counted by Anthropic for a model it
serves (the request as tollway would send it), estimated for any other, never billed."""

from __future__ import annotations

import anthropic
import pytest

from .conftest import SECRETS, Stack
from .fakes import ANTHROPIC_COUNT

pytestmark = pytest.mark.integration

TOOL = {"name": "lookup", "description": "Look up", "input_schema": {"type": "object"}}


def _claude(stack: Stack) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=stack.base_url, api_key=stack.key, max_retries=0)


async def test_an_anthropic_model_is_counted_by_anthropic(stack: Stack) -> None:
    counted = await _claude(stack).messages.count_tokens(
        model="claude-sonnet-4",
        system="Be brief.",
        messages=[{"role": "user", "content": "How long is this prompt?"}],
        tools=[TOOL],  # type: ignore[list-item]
    )
    assert counted.input_tokens == ANTHROPIC_COUNT
    sent = stack.fakes["anthropic"].state.requests[-1]
    assert sent["path"] == "/v1/messages/count_tokens"
    assert sent["headers"]["x-api-key"] == SECRETS["FAKE_ANTHROPIC_KEY"]
    assert sent["body"]["model"] == "claude-sonnet-4-20250514"
    assert sent["body"]["system"] == "Be brief." and sent["body"]["tools"][0]["name"] == "lookup"


async def test_other_models_are_estimated_and_nothing_is_billed(stack: Stack) -> None:
    client = _claude(stack)
    short = await client.messages.count_tokens(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    raw = await client.messages.with_raw_response.count_tokens(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "word " * 400}]
    )
    long = await raw.parse()
    assert 0 < short.input_tokens < long.input_tokens
    assert long.input_tokens >= 500  # about four characters a token
    assert "x-tollway-event-id" not in raw.headers  # no call was made: no event, no cost


async def test_unknown_models_and_bad_keys_are_anthropic_errors(stack: Stack) -> None:
    with pytest.raises(anthropic.NotFoundError):
        await _claude(stack).messages.count_tokens(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    wrong = anthropic.AsyncAnthropic(base_url=stack.base_url, api_key="tw-nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        await wrong.messages.count_tokens(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
